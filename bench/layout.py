"""Memory of other store layouts, for the same documents: what a redesign would save.

Not dedup's logic: each layout is written in its final state, with plain pipelines, from the
same synthetic analyses the growth runs use, and measured as ``used_memory`` per document
(the current layout also with real text through the pipeline, which checks the synthetic
documents):

- ``current``: :meth:`dedup.store.Store.index` as it is;
- ``current, listpack hashes``: the same, on a server with ``hash-max-ziplist-value 1024``
  (``hash-max-listpack-value`` since Redis 7; no code change: document hashes stop being
  hash tables);
- ``compact``: every document gets a serial number; one string per document holds its
  packed record (URL, time, signature, fingerprints, the report only when it has repeats);
  band digests, paragraph fingerprints and content hashes become fields of bucketed hashes
  (small listpacks of a few hundred fields: ``<prefix>:<high bits>`` → low bytes → serial),
  and only paragraphs found in several documents keep a set of their documents; the serials
  give the newest-first order, so no sorted set of all documents;
- ``compact, 16-bit signatures``: the same, keeping 16 bits of each MinHash value (b-bit
  minwise hashing; the similarity estimate is corrected for chance collisions, 1/65536);
- ``compact, 16-bit signatures, 128 permutations``: the same with half the permutations
  (25 bands of 5 rows instead of 42 of 6 at the 0.5 threshold).
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import redis

from bench import corpus as corpus_
from bench import memory, synthetic, throughput
from bench.redisproc import redis_server
from dedup import signature
from dedup.analysis import Analysis, analyse
from dedup.document import from_payload
from dedup.report import stored_report
from dedup.settings import Settings
from dedup.store import Store, connect

REAL_TEXT_DOCS = 10_000
"""Real-text documents analysed for the check of the synthetic ones (analysis is slow)."""
BUCKET_FILL = 256
"""Fields per bucket hash the compact layout aims at (listpacks stay small and fast)."""


def _bits(entries: int) -> int:
    return max(1, math.ceil(math.log2(max(2, entries / BUCKET_FILL))))


def _write_compact(
    client: redis.Redis, analyses: list[Analysis], settings: Settings, sig_bits: int
) -> None:
    bands, rows = signature.lsh_parameters(settings.lsh_threshold, settings.num_perm)
    count = len(analyses)
    band_bits = _bits(count)
    para_bits = _bits(sum(len(a.fingerprints) for a in analyses))
    content_bits = _bits(count)
    shared = Counter(fp for a in analyses for fp in set(a.fingerprints))
    pipe = client.pipeline(transaction=False)
    for serial, analysis in enumerate(analyses):
        sig = analysis.document_signature()
        assert sig is not None
        for band, digest in enumerate(signature.band_hashes(sig, bands, rows)):
            value = int(digest, 16)
            bucket = value >> (64 - band_bits)
            pipe.hset(f"c:l:{band}:{bucket:x}", value.to_bytes(8, "big")[2:], serial)
        for fp in dict.fromkeys(analysis.fingerprints):
            bucket = fp >> (64 - para_bits)
            field = fp.to_bytes(8, "big")[2:]
            if shared[fp] > 1:
                pipe.hset(f"c:p:{bucket:x}", field, "*")
                pipe.sadd(f"c:ps:{fp:016x}", serial)
            else:
                pipe.hset(f"c:p:{bucket:x}", field, serial)
        content = int(analysis.content_hash, 16)
        pipe.hset(f"c:c:{content >> (64 - content_bits):x}", content.to_bytes(8, "big")[2:], serial)
        packed_sig = (
            signature.pack(sig) if sig_bits == 32 else (sig & 0xFFFF).astype("<u2").tobytes()
        )
        url = (analysis.document.url or "").encode()
        report = (
            json.dumps(stored_report(analysis), separators=(",", ":")).encode()
            if analysis.repeats.runs
            else b""
        )
        fps = np.array(analysis.fingerprints, dtype="<u8").tobytes()
        header = struct.pack("<IdHHH", serial, 0.0, len(url), len(fps) // 8, len(report))
        pipe.set(f"c:d:{analysis.document.doc_id}", header + url + packed_sig + fps + report)
        pipe.hset(f"c:s:{serial >> 8:x}", serial, analysis.document.doc_id)
        if len(pipe) > 5000:
            pipe.execute()
    pipe.execute()


def _measure(url: str, write: Callable[[redis.Redis], None], documents: int) -> dict[str, Any]:
    client = connect(url)
    before = memory.used_memory(client)
    write(client)
    used = memory.used_memory(client) - before
    return {"bytes_per_doc": round(used / documents, 1), "used_memory": used}


def run(
    binary: str, corpus: corpus_.Corpus, documents: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Bytes per document of each layout for ``documents`` synthetic documents."""
    settings = Settings(namespace=throughput.NAMESPACE)
    analyses = [synthetic.analysis(corpus, i, settings) for i in range(documents)]
    small_settings = settings.replace(num_perm=128)
    small = [synthetic.analysis(corpus, i, small_settings) for i in range(documents)]

    def current(client: redis.Redis) -> None:
        store = Store(client, settings)
        for k in range(0, documents, 200):
            store.index(analyses[k : k + 200])

    results: dict[str, Any] = {"documents": documents}
    # The check of the synthetic documents: real text through the pure pipeline, same store.
    texts = min(documents, REAL_TEXT_DOCS)
    log(f"  layout 'current' with real text: analysing {texts:,} corpus documents")
    real = [
        analyse(from_payload(doc, settings.max_document_bytes), settings)
        for doc in corpus_.documents(corpus, 0, texts)
    ]

    def current_real(client: redis.Redis) -> None:
        store = Store(client, settings)
        for k in range(0, texts, 200):
            store.index(real[k : k + 200])

    with redis_server(binary) as url:
        results["current, real text"] = _measure(url, current_real, texts)
        results["current, real text"]["documents"] = texts
    log(f"    {results['current, real text']['bytes_per_doc']:,.0f} bytes/document")
    variants: list[tuple[str, list[str], Callable[[redis.Redis], None]]] = [
        ("current", [], current),
        ("current, listpack hashes", ["--hash-max-ziplist-value", "1024"], current),
        ("compact", [], lambda c: _write_compact(c, analyses, settings, 32)),
        ("compact, 16-bit signatures", [], lambda c: _write_compact(c, analyses, settings, 16)),
        (
            "compact, 16-bit signatures, 128 permutations",
            [],
            lambda c: _write_compact(c, small, small_settings, 16),
        ),
    ]
    for name, extra, write in variants:
        log(f"  layout {name!r}: {documents:,} documents")
        with redis_server(binary, extra) as url:
            results[name] = _measure(url, write, documents)
            if name.startswith("current"):
                client = connect(url)
                results[name]["families"] = memory.breakdown(client, throughput.NAMESPACE)
        log(f"    {results[name]['bytes_per_doc']:,.0f} bytes/document")
    return results

"""CPU cost of the pure pipeline (:func:`dedup.pipeline.analysis.analyse`) per document,
and where it goes.

``python -m bench.analysis_speed CORPUS``: the article bodies of the shared corpus are sent as
scrapers send them (an HTML fragment of ``<p>`` paragraphs), each also doubled (the extractor
bug the repeat detection exists for), with derived documents from :mod:`bench.corpus` (mutated
windows, boilerplate, near copies). Every document is analysed once to warm the caches, then
the whole set several times; the median is reported in ms per document, with a cProfile
breakdown of one more pass.

``--save FILE.npz`` writes every output of every document and ``--check FILE.npz`` compares
against such a file, so a change made for speed is proven not to change any result.

``--against-datasketch N``: the real article bodies N times over, analysed whole by ``analyse``
and, alternately in the same process, given to datasketch's ``MinHash(256)`` as the document's
3-word shingles alone (words and shingles made beforehand, so datasketch is timed on hashing
and permuting them only); best of ``--rounds`` passes each, in documents per second.
"""

from __future__ import annotations

import argparse
import cProfile
import html
import io
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench import corpus as corpus_
from dedup.pipeline import kernel, text
from dedup.pipeline.analysis import Analysis, analyse
from dedup.pipeline.document import Document
from dedup.pipeline.extract import extract_paragraphs
from dedup.settings import Settings

DERIVED = 400
"""Derived documents added to the real articles and their doubled copies."""
KINDS = {
    "real": "real article bodies",
    "doubled": "real bodies, doubled",
    "doc": "derived (bench.corpus)",
}


def documents(folder: Path, derived: int = DERIVED) -> list[Document]:
    """Real bodies, the same bodies doubled, and derived documents, as HTML fragments."""
    corpus = corpus_.load(folder)
    bodies = [
        "".join(f"<p>{html.escape(' '.join(words))}</p>" for words in article)
        for article in corpus.articles
    ]
    docs = [Document(f"real-{i}", body, fmt="html") for i, body in enumerate(bodies)]
    docs += [Document(f"doubled-{i}", body + body, fmt="html") for i, body in enumerate(bodies)]
    docs += [
        Document(payload["id"], payload["html"], fmt="html")
        for payload in corpus_.documents(corpus, 0, derived)
    ]
    return docs


def outputs(result: Analysis) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """Every output of one analysis: plain values, and arrays kept exact."""
    plain = {
        "paragraphs": result.paragraphs,
        "word_counts": result.word_counts,
        "fingerprints": [str(f) for f in result.fingerprints],
        "signed": result.signed,
        "content_hash": result.content_hash,
        "min_words": result.min_words,
        "repeats": {
            "runs": [[r.first, r.repeat, r.similarity] for r in result.repeats.runs],
            "duplicate_fraction": result.repeats.duplicate_fraction,
            "doubled_body": result.repeats.doubled_body,
        },
    }
    document = result.document_signature()
    without_first = result.document_signature(frozenset({0}))
    arrays = {
        "paragraph_signatures": result.paragraph_signatures,
        "shingle_signatures": result.shingle_signatures,
        "document": np.empty(0, np.uint32) if document is None else document,
        "without_first": np.empty(0, np.uint32) if without_first is None else without_first,
    }
    plain["has_document"] = document is not None
    plain["has_without_first"] = without_first is not None
    return plain, arrays


def save(path: Path, results: list[Analysis]) -> None:
    """Write all outputs to one ``.npz`` (arrays per document, the rest as one JSON string)."""
    plains = []
    arrays: dict[str, npt.NDArray[Any]] = {}
    for index, result in enumerate(results):
        plain, named = outputs(result)
        plains.append(plain)
        for name, array in named.items():
            arrays[f"{index}.{name}"] = array
    arrays["plain"] = np.array(json.dumps(plains))
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def check(path: Path, results: list[Analysis]) -> list[str]:
    """The differences between these outputs and a saved file, empty when all are equal."""
    saved = np.load(path)
    plains = json.loads(str(saved["plain"]))
    problems = []
    if len(plains) != len(results):
        return [f"{len(results)} documents, {len(plains)} saved"]
    for index, result in enumerate(results):
        plain, named = outputs(result)
        if json.dumps(plain) != json.dumps(plains[index]):
            problems.append(f"document {index} ({result.document.doc_id}): plain outputs differ")
        for name, array in named.items():
            old = saved[f"{index}.{name}"]
            if array.dtype != old.dtype or array.shape != old.shape or not (array == old).all():
                problems.append(f"document {index} ({result.document.doc_id}): {name} differs")
    return problems


def run(docs: list[Document], settings: Settings) -> list[Analysis]:
    """Analyse every document once."""
    return [analyse(doc, settings) for doc in docs]


def timed(docs: list[Document], settings: Settings, repeat: int) -> list[float]:
    """Milliseconds of CPU per document, one value per pass over all documents."""
    values = []
    for _ in range(repeat):
        start = time.process_time()
        run(docs, settings)
        values.append((time.process_time() - start) * 1000 / len(docs))
    return values


def profile(docs: list[Document], settings: Settings, top: int) -> str:
    """A cProfile breakdown of one pass, by internal and by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    run(docs, settings)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def datasketch_shingles(docs: list[Document], size: int) -> list[list[bytes]]:
    """Each document's ``size``-word shingles as datasketch is given them: words joined by
    spaces, UTF-8, from the same words dedup finds."""
    shingles = []
    for doc in docs:
        paragraphs = extract_paragraphs(doc.body, doc.fmt, Settings().max_paragraphs)
        found = []
        for words in text.document_words(paragraphs):
            width = min(size, len(words))
            found += [
                " ".join(words[i : i + width]).encode() for i in range(len(words) - width + 1)
            ]
        shingles.append(found)
    return shingles


def against_datasketch(docs: list[Document], settings: Settings, rounds: int) -> dict[str, Any]:
    """Documents per second of ``analyse`` and of datasketch's document-only MinHash, best of
    ``rounds`` passes each, the two alternated."""
    from datasketch import MinHash

    shingles = datasketch_shingles(docs, settings.shingle_words)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        start = time.process_time()
        run(docs, settings)
        ours.append(len(docs) / (time.process_time() - start))
        start = time.process_time()
        for found in shingles:
            MinHash(num_perm=settings.num_perm, seed=settings.seed).update_batch(found)
        theirs.append(len(docs) / (time.process_time() - start))
    return {
        "documents": len(docs),
        "analyse_docs_per_s": [round(v) for v in ours],
        "datasketch_docs_per_s": [round(v) for v in theirs],
        "ratio": round(max(ours) / max(theirs), 2),
    }


STAGES = (
    "extract (HTML to paragraphs)",
    "words (NFKC, case folding, cut, hashed, counted, fingerprinted)",
    "paragraph signatures",
    "document signatures",
    "internal repeats",
    "analyse, whole",
)


def _stage_pass(docs: list[Document], settings: Settings) -> list[float]:
    """Seconds spent in each of :data:`STAGES` over one pass of the documents."""
    from dedup.pipeline import analysis, repeats, signature

    spent = [0.0] * len(STAGES)
    for doc in docs:
        ticks = [time.perf_counter()]
        paragraphs = extract_paragraphs(doc.body, doc.fmt, settings.max_paragraphs)
        ticks.append(time.perf_counter())
        words = analysis.hashed_words(paragraphs, settings)
        ticks.append(time.perf_counter())
        signed = words.counts >= settings.min_paragraph_words
        (paragraph,) = signature.signatures(
            words.hashes,
            words.counts,
            [
                signature.Signing(
                    settings.paragraph_shingle_words,
                    settings.paragraph_num_perm,
                    settings.seed,
                    signed,
                )
            ],
        )
        ticks.append(time.perf_counter())
        signature.signatures(
            words.hashes,
            words.counts,
            [signature.Signing(settings.shingle_words, settings.num_perm, settings.seed)],
        )
        ticks.append(time.perf_counter())
        repeats.find_repeats(
            words.fingerprints.tolist(),
            paragraph,
            signed.tolist(),
            words.counts.tolist(),
            settings.repeat_threshold,
        )
        ticks.append(time.perf_counter())
        analyse(doc, settings)
        ticks.append(time.perf_counter())
        for stage in range(len(STAGES)):
            spent[stage] += ticks[stage + 1] - ticks[stage]
    return spent


def stages(docs: list[Document], settings: Settings, rounds: int) -> dict[str, float]:
    """Where a document's time goes: microseconds per document of each step of ``analyse``,
    timed one after the other on the same documents, and of the whole; best of ``rounds``."""
    passes = [_stage_pass(docs, settings) for _ in range(rounds)]
    return {
        name: round(min(p[stage] for p in passes) * 1e6 / len(docs), 1)
        for stage, name in enumerate(STAGES)
    }


def main(argv: list[str] | None = None) -> int:
    """Time, profile, and save or check the outputs."""
    parser = argparse.ArgumentParser(prog="python -m bench.analysis_speed", description=__doc__)
    parser.add_argument("corpus", type=Path, help="corpus folder with truth/<source>/<stem>.txt")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over all documents")
    parser.add_argument("--derived", type=int, default=DERIVED, help="derived documents")
    parser.add_argument("--save", type=Path, help="write all outputs to this .npz")
    parser.add_argument("--check", type=Path, help="compare all outputs with this .npz")
    parser.add_argument("--profile", type=int, default=25, help="profile rows (0: none)")
    parser.add_argument(
        "--against-datasketch",
        type=int,
        metavar="N",
        help="only compare with datasketch's MinHash, on the real bodies N times over",
    )
    parser.add_argument("--rounds", type=int, default=3, help="passes of each, alternated")
    parser.add_argument(
        "--stages", action="store_true", help="with --against-datasketch: time each step too"
    )
    parser.add_argument(
        "--numpy", action="store_true", help="switch the compiled kernel off: the numpy path"
    )
    args = parser.parse_args(argv)
    if args.numpy:
        kernel.compiled = None  # type: ignore[assignment]
    settings = Settings()
    if args.against_datasketch:
        real = [d for d in documents(args.corpus, 0) if d.doc_id.startswith("real-")]
        found = against_datasketch(real * args.against_datasketch, settings, args.rounds)
        if args.stages:
            found["stages_us_per_document"] = stages(real, settings, args.rounds)
        print(json.dumps(found))
        print(
            f"analyse {max(found['analyse_docs_per_s']):,} docs/s, datasketch MinHash("
            f"{settings.num_perm}) {max(found['datasketch_docs_per_s']):,} docs/s: "
            f"{found['ratio']}x (best of {args.rounds}, {found['documents']} documents)"
        )
        return 0
    docs = documents(args.corpus, args.derived)
    results = run(docs, settings)  # warms the caches; these are the outputs saved or checked
    if args.save:
        save(args.save, results)
        print(f"saved the outputs of {len(results)} documents to {args.save}")
    if args.check:
        problems = check(args.check, results)
        for problem in problems[:20]:
            print(problem)
        print(f"outputs {'DIFFER' if problems else 'equal'} ({len(problems)} differences)")
        if problems:
            return 1
    paragraphs = statistics.median(len(r.paragraphs) for r in results)
    words = statistics.median(sum(r.word_counts) for r in results)
    kinds: dict[str, list[Document]] = {}
    for doc in docs:
        kinds.setdefault(KINDS[doc.doc_id.split("-")[0]], []).append(doc)
    for kind, group in kinds.items():
        values = timed(group, settings, args.repeat)
        print(f"{kind}: {len(group)} documents, {statistics.median(values):.3f} ms/document")
    values = timed(docs, settings, args.repeat)
    print(
        f"all {len(docs)} documents (median {paragraphs:.0f} paragraphs, {words:.0f} words): "
        f"{statistics.median(values):.3f} ms/document CPU, median of {args.repeat} "
        f"(all: {', '.join(f'{v:.3f}' for v in values)})"
    )
    if args.profile:
        print(profile(docs, settings, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())

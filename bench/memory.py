"""Redis memory per document, in total and by key family.

The total is the growth of ``used_memory`` over the empty server. The split comes from
``MEMORY USAGE`` (exact, ``SAMPLES 0``) on every key of a small store, or on keys drawn with
``RANDOMKEY`` from a large one, scaled by the share of each family in the sample; keys that
exist once per namespace (the settings) are measured by name, and the few
sets of entries held by many documents one by one (found with ``SCAN``). What the split
does not explain is Redis's own bookkeeping of keys (its main hash table) and allocator slack.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import redis

from dedup.index.reads import Reads
from dedup.settings import Settings

MANY = {
    "r:": "records",
    "counters": "shard counters",
    "flag:": "flag bitmaps",
    "w": "intents",
    "b.": "LSH band entries",
    "p.": "paragraph entries",
    "c.": "content entries",
    "i.": "document id entries",
    "q.": "near-copy piece entries",
}
"""Families of many keys: record buckets and entry buckets (dedup.index.layout)."""


def documents(client: redis.Redis, namespace: str) -> int:
    """Documents the store under ``namespace`` holds (summed over its shards)."""
    keys = Reads(client, Settings(namespace=namespace)).keys
    pipe = client.pipeline(transaction=False)
    for shard in range(keys.shards.count):
        pipe.hget(keys.counters(shard), "documents")
    return sum(int(n or 0) for n in pipe.execute())


def used_memory(client: redis.Redis) -> int:
    """``used_memory`` of the server, in bytes."""
    return int(client.info("memory")["used_memory"])


def _family(key: str, namespace: str) -> str | None:
    prefix = f"{namespace}:"
    if key.startswith(prefix):
        rest = key[len(prefix) :]
        if rest.startswith("{"):  # <namespace>:{<shard tag>}:<family>...
            rest = rest[rest.index("}") + 2 :]
        for start, name in MANY.items():
            if rest.startswith(start):
                # <family>.o:<key>: an entry held by many documents, in a set of its own
                overflow = rest[len(start) :].startswith("o:")
                return f"{name}, overflow sets" if overflow else name
        return None  # one of the singletons, measured by name
    if key.startswith("rq:"):
        return "RQ jobs and registries"
    return "other"


def _sample(client: redis.Redis, count: int) -> tuple[list[str], bool]:
    """Every key when there are at most ``count``, else ``count`` random ones."""
    if int(client.dbsize()) <= count:
        return [k.decode() for k in client.scan_iter(count=10_000)], True
    pipe = client.pipeline(transaction=False)
    for _ in range(count):
        pipe.randomkey()
    return [k.decode() for k in pipe.execute() if k is not None], False


def breakdown(client: redis.Redis, namespace: str, samples: int = 20_000) -> dict[str, Any]:
    """Bytes by key family, estimated from ``samples`` keys, per indexed document."""
    keys = Reads(client, Settings(namespace=namespace)).keys
    count = documents(client, namespace) or 1
    singletons = [keys.meta]
    exact = {}
    for name in singletons:
        usage = client.memory_usage(name, samples=0)
        if usage:
            exact[name.removeprefix(f"{namespace}:")] = int(usage)
    # Entries held by many documents have sets of their own: few keys, some very large
    # (boilerplate), so a random sample would misjudge them; they are measured one by one.
    overflow = [
        k.decode() for k in client.scan_iter(match=f"{namespace}:{{*}}:?:*:*", count=10_000)
    ]
    sampled, complete = _sample(client, samples)
    apart = set(overflow)
    families = [(k, _family(k, namespace)) for k in sampled if k not in apart]
    families += [(k, _family(k, namespace)) for k in overflow]
    counted = [(k, f) for k, f in families if f is not None]
    pipe = client.pipeline(transaction=False)
    for key, _ in counted:
        pipe.memory_usage(key, samples=0)
    usages = pipe.execute()
    seen: Counter[str] = Counter()
    total: defaultdict[str, int] = defaultdict(int)
    example: dict[str, str] = {}
    for (key, family), usage in zip(counted, usages, strict=True):
        if family is None or usage is None:
            continue
        seen[family] += 1
        total[family] += int(usage)
        example.setdefault(family, key)
    scale = 1.0
    measured = {f for f in seen if f.endswith("overflow sets")}
    if not complete:
        many_keys = int(client.dbsize()) - len(exact) - len(overflow)
        scale = many_keys / max(1, sum(n for f, n in seen.items() if f not in measured))
    rows: dict[str, dict[str, Any]] = {}
    for family in sorted(seen, key=lambda f: -total[f] * (1 if f in measured else scale)):
        encoding = client.object("encoding", example[family])
        factor = 1.0 if family in measured else scale
        rows[family] = {
            "keys": round(seen[family] * factor),
            "bytes": round(total[family] * factor),
            "bytes_per_doc": round(total[family] * factor / count, 1),
            "bytes_per_key": round(total[family] / seen[family], 1),
            "encoding": encoding.decode() if isinstance(encoding, bytes) else str(encoding),
        }
    for name, usage in sorted(exact.items(), key=lambda x: -x[1]):
        rows[name] = {
            "keys": 1,
            "bytes": usage,
            "bytes_per_doc": round(usage / count, 1),
            "bytes_per_key": usage,
            "encoding": "",
        }
    return {"documents": count, "sampled_keys": len(sampled), "exact": complete, "rows": rows}

"""Duplicate groups: chains, canonical rules, the same groups whatever the indexing order,
thresholds chosen when reading, keep and drop lists, through a real Redis and real workers."""

from __future__ import annotations

import json
import os
import pty
import random
import re
import subprocess
import sys

import pytest
import redis

from dedup.index.groups import Options, group_id, read_groups
from dedup.index.layout import similarity
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.pipeline.grouping import Candidate, groups, rank, threshold_floor
from dedup.settings import Settings
from tests.helpers import article, as_html, burst, command, invoke, worker_env

BASE = article(7, 20)
CHAIN = {
    # a is like b, b is like c, c is unlike a: a naive grouping joins all three
    "a": BASE,
    "b": BASE[:17] + article(8, 3),
    "c": BASE[:14] + article(8, 3) + article(9, 3),
}
FETCHED = {"a": "2024-05-01T10:00:00Z", "b": "2024-05-01T11:00:00Z", "c": "2024-05-01T12:00:00Z"}


def _candidate(doc_id: str, **fields: object) -> Candidate:
    values: dict[str, object] = {
        "url": None,
        "fetched_at": None,
        "indexed_at": 0.0,
        "words": 100,
        **fields,
    }
    return Candidate(doc_id, **values)  # type: ignore[arg-type]


def _both_ways(pairs: dict[tuple[str, str], float]) -> dict[str, dict[str, float]]:
    similar: dict[str, dict[str, float]] = {}
    for (x, y), score in pairs.items():
        similar.setdefault(x, {})[y] = score
        similar.setdefault(y, {})[x] = score
    return similar


def test_a_chain_does_not_pull_unlike_documents_together() -> None:
    """a~b and b~c with c unlike a: a keeps b, c is left alone (in no group)."""
    docs = [_candidate(d, indexed_at=n) for n, d in enumerate("abc")]
    similar = _both_ways({("a", "b"): 0.8, ("b", "c"): 0.8, ("a", "c"): 0.5})
    assert [("a", [("a", 1.0), ("b", 0.8)])] == list(groups(docs, similar, 0.7))
    middle_first = [_candidate(d, indexed_at={"b": 0, "a": 1, "c": 2}[d]) for d in "abc"]
    assert [("b", [("b", 1.0), ("a", 0.8), ("c", 0.8)])] == list(groups(middle_first, similar, 0.7))


def test_a_near_copy_first_in_rank_takes_the_others_alike_to_it_through_the_copies() -> None:
    """A page copied many times (p with its copies) and three near copies of it, n0 first in
    rank. The near copies were compared with the page's copies, never with one another (the
    matches of a hub are read from samples of its holders): n0 takes the page, and n1 and n2,
    scored against n0 itself, join it; n3, alike to the page but not to n0, does not."""
    docs = [_candidate(d, indexed_at=n) for n, d in enumerate(["n0", "p", "n1", "n2", "n3"])]
    similar = _both_ways(
        {("n0", "p"): 0.95, ("p", "n1"): 0.95, ("p", "n2"): 0.9, ("p", "n3"): 0.85}
    )
    copies = {"p": ["p2", "p3"]}
    unknown = {("n0", "n1"): 0.9, ("n0", "n2"): 0.85, ("n0", "n3"): 0.7}

    def score(a: str, b: str) -> float | None:
        return unknown.get((a, b), unknown.get((b, a)))

    assert [
        ("n0", [("n0", 1.0), ("p", 0.95), ("p2", 0.95), ("p3", 0.95), ("n1", 0.9), ("n2", 0.85)]),
    ] == list(groups(docs, similar, 0.8, copies=copies, score=score))
    # unscored, n0's group is the page and its copies alone; n1, n2 and n3 are in none
    assert ("n0", [("n0", 1.0), ("p", 0.95), ("p2", 0.95), ("p3", 0.95)]) == next(
        iter(groups(docs, similar, 0.8, copies=copies))
    )


def test_groups_do_not_depend_on_the_order_of_their_input() -> None:
    """Shuffled candidates and similarities give the same groups."""
    rng = random.Random(3)
    docs = [_candidate(f"d{n}", fetched_at=f"2024-05-0{1 + n % 3}T00:00:00Z") for n in range(30)]
    pairs = {(f"d{rng.randrange(30)}", f"d{rng.randrange(30)}"): rng.random() for _ in range(80)}
    pairs = {tuple(sorted(k)): v for k, v in pairs.items() if k[0] != k[1]}  # type: ignore[misc]
    expected = list(groups(docs, _both_ways(pairs), 0.5))
    for _ in range(5):
        rng.shuffle(docs)
        items = list(pairs.items())
        rng.shuffle(items)
        assert expected == list(groups(docs, _both_ways(dict(items)), 0.5))
    for _, members in expected:
        assert all(score >= 0.5 for _, score in members)


def test_canonical_rules() -> None:
    """Earliest fetched then indexed; a host priority list; the longest text."""
    agg = _candidate("agg", url="https://news.aggregator.com/x", fetched_at="2024-01-01T00:00:00Z")
    pub = _candidate("pub", url="https://www.publisher.org/x", words=50, indexed_at=5.0)
    long = _candidate("long", words=900, indexed_at=1.0)
    docs = [agg, pub, long]

    def first(rule: str, hosts: tuple[str, ...] = ()) -> str:
        return min(docs, key=lambda c: rank(c, rule, hosts)).doc_id

    assert "agg" == first("earliest")  # the only one with a fetch time
    assert "pub" == first("hosts", ("publisher.org", "aggregator.com"))
    assert "long" == first("longest")
    with pytest.raises(ValueError, match="canonical rule"):
        rank(agg, "newest")


def test_threshold_floor_of_the_default_bands() -> None:
    """16 bands of 4 rows: useful down to about 0.61 (a pair at 0.5 is compared at 0.64)."""
    assert 0.61 == threshold_floor(16, 4)


def _index(store: Store, order: list[str], extra: dict[str, list[str]] | None = None) -> None:
    bodies = {**CHAIN, **(extra or {})}
    store.index(
        [
            analyse(
                Document(
                    doc, as_html(bodies[doc]), f"https://site-{doc}.com/", "html", FETCHED.get(doc)
                ),
                store.settings,
            )
            for doc in order
        ]
    )


def _chain_scores(store: Store) -> dict[str, float]:
    records = {doc: store.resolve(doc)[1] for doc in CHAIN}
    sig = {doc: r.signature for doc, r in records.items() if r is not None}
    return {pair: similarity(sig[pair[0]], sig[pair[1]], store.wide) for pair in ("ab", "bc", "ac")}


def test_index_groups_same_whatever_the_indexing_order(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Two namespaces indexed in opposite orders hold the same groups; a chain stays apart."""
    extra = {"copy-of-a": BASE, "other": article(11, 12)}
    found = []
    for namespace, order in (
        ("one", ["a", "b", "c", "copy-of-a", "other"]),
        ("two", ["other", "copy-of-a", "c", "b", "a"]),
    ):
        store = Store(redis_client, settings.replace(namespace=namespace))
        for doc in order:  # one at a time: each write sees only those before it
            _index(store, [doc], extra)
        scores = _chain_scores(store)
        assert scores["ab"] >= 0.7 and scores["bc"] >= 0.7 and scores["ac"] < 0.7, scores
        found.append(list(read_groups(store, Options(0.7))))
    assert found[0] == found[1]
    [group] = found[0]
    assert "a" == group["canonical"] and group_id("a") == group["group"]
    assert ["a", "copy-of-a", "b"] == [m["doc_id"] for m in group["members"]]
    assert 1.0 == group["members"][0]["similarity"] == group["members"][1]["similarity"]


def test_report_names_its_group_and_canonical(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """A member's report names its group and canonical; a document in none has nulls."""
    store = Store(redis_client, settings)
    _index(store, ["a", "b", "c"], {})
    b = store.report("b")
    assert (group_id("a"), "a") == (b["group"], b["canonical"])
    assert (None, None) == (store.report("c")["group"], store.report("c")["canonical"])


def test_groups_command_through_a_worker(settings: Settings) -> None:
    """Documents queued and indexed by a real worker; ``groups --json`` has the contract's
    names; ``--threshold``, ``--canonical``, ``--min-size`` and ``--flag`` change them."""
    lines = [
        json.dumps(
            {
                "id": doc,
                "url": f"https://site-{doc}.com/",
                "html": as_html(CHAIN[doc]),
                "fetched_at": FETCHED[doc],
            }
        )
        for doc in ("c", "b", "a")
    ]
    lines.append(json.dumps({"id": "a-again", "html": as_html(BASE)}))
    submitted = command(settings, "submit", "--jsonl", "-", stdin="\n".join(lines) + "\n")
    assert 0 == submitted.returncode, submitted.stderr
    burst(settings)

    result = command(settings, "groups", "--json")
    assert 0 == result.returncode, result.stderr
    [group] = [json.loads(line) for line in result.stdout.splitlines()]
    assert ["group", "canonical", "members"] == list(group)
    assert "a" == group["canonical"]
    assert {"doc_id": "a", "similarity": 1.0} == group["members"][0]
    assert {"a", "a-again", "b"} == {m["doc_id"] for m in group["members"]}
    assert all(set(m) == {"doc_id", "similarity"} for m in group["members"])

    exact = command(settings, "groups", "--json", "--flag", "exact_duplicate")
    assert [["a", "a-again"]] == [
        [m["doc_id"] for m in json.loads(line)["members"]] for line in exact.stdout.splitlines()
    ]
    assert "" == command(settings, "groups", "--json", "--min-size", "4").stdout
    hosts = command(settings, "groups", "--json", "--canonical", "hosts", "--hosts", "site-b.com")
    [by_host] = [json.loads(line) for line in hosts.stdout.splitlines()]
    assert "b" == by_host["canonical"]  # like a (and its copy) and like c
    assert {"a", "a-again", "b", "c"} == {m["doc_id"] for m in by_host["members"]}

    low = command(settings, "groups", "--json", "--threshold", "0.5")
    assert "below 0.61" in low.stderr
    assert [{"a", "a-again", "b", "c"}] == [
        {m["doc_id"] for m in json.loads(line)["members"]} for line in low.stdout.splitlines()
    ]
    strict = command(settings, "groups", "--json", "--threshold", "0.99")
    assert [["a", "a-again"]] == [
        [m["doc_id"] for m in json.loads(line)["members"]] for line in strict.stdout.splitlines()
    ]
    assert "" == strict.stderr

    shown = command(settings, "groups")
    assert (
        "canonical (keep)" in shown.stdout and "1 group(s), 2 document(s) to drop" in shown.stdout
    )


def test_report_and_list_take_a_threshold(settings: Settings, redis_client: redis.Redis) -> None:
    """``--threshold`` re-scores the stored signatures: lower finds more, higher fewer."""
    store = Store(redis_client, settings)
    _index(store, ["a", "b", "c"], {})
    plain = json.loads(invoke(settings, "report", "a", "--json").output)
    assert ["b"] == [m["doc_id"] for m in plain["near_duplicates"]]
    low = invoke(settings, "report", "a", "--json", "--threshold", "0.55")
    assert ["b", "c"] == [m["doc_id"] for m in json.loads(low.stdout)["near_duplicates"]]
    assert "warning" in low.stderr
    high = json.loads(invoke(settings, "report", "a", "--json", "--threshold", "0.95").output)
    assert [] == high["near_duplicates"] and "near_duplicate" not in high["flags"]
    listed = invoke(settings, "list", "--flag", "near_duplicate", "--json", "--threshold", "0.95")
    assert "" == listed.stdout
    listed = invoke(settings, "list", "--flag", "near_duplicate", "--json", "--threshold", "0.55")
    assert {"a", "b", "c"} == {json.loads(line)["doc_id"] for line in listed.stdout.splitlines()}


def test_export_keep_and_drop_lists(settings: Settings, redis_client: redis.Redis) -> None:
    """Drop lists name the copies with their canonical and similarity; keep lists the rest."""
    store = Store(redis_client, settings)
    _index(
        store, ["a", "b", "c", "copy-of-a", "other"], {"copy-of-a": BASE, "other": article(11, 12)}
    )
    drop = invoke(settings, "export", "--drop", "--format", "lines")
    assert ["b", "copy-of-a"] == sorted(drop.output.split())
    rows = [json.loads(line) for line in invoke(settings, "export", "--drop").output.splitlines()]
    by_id = {row["doc_id"]: row for row in rows}
    assert {"b", "copy-of-a"} == set(by_id)
    assert ("drop", "a", group_id("a")) == (
        by_id["b"]["action"],
        by_id["b"]["canonical"],
        by_id["b"]["group"],
    )
    assert 1.0 == by_id["copy-of-a"]["similarity"] and 0.7 <= by_id["b"]["similarity"] < 1
    keep = invoke(settings, "export", "--keep", "--format", "lines", "--urls")
    assert sorted(f"https://site-{d}.com/" for d in ("a", "c", "other")) == sorted(
        keep.output.split()
    )
    kept = {
        json.loads(line)["doc_id"]: json.loads(line)
        for line in invoke(settings, "export", "--keep").output.splitlines()
    }
    assert ("canonical", "a") == (kept["a"]["reason"], kept["a"]["canonical"])
    assert ("unique", None) == (kept["c"]["reason"], kept["c"]["canonical"])


def test_groups_command_shows_progress_on_a_terminal_only(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """With stderr a terminal, ``groups`` draws its progress bar there (stdout stays the
    groups); with stderr a pipe, it writes nothing there."""
    _index(Store(redis_client, settings), ["a", "b", "c", "copy-of-a"], {"copy-of-a": BASE})
    main, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "dedup", "groups", "--json"],
            env={**worker_env(settings), "TERM": "xterm", "COLUMNS": "100"},
            stdout=subprocess.PIPE,
            stderr=terminal,
        )
        os.close(terminal)
        stdout, _ = process.communicate(timeout=120)
        drawn = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal's other end is closed
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(main)
    assert 0 == process.returncode
    assert [["a", "copy-of-a", "b"]] == [
        [m["doc_id"] for m in json.loads(line)["members"]] for line in stdout.splitlines()
    ]
    assert b"grouping" in drawn and re.search(rb"\d+/\d+", drawn), drawn
    piped = command(settings, "groups", "--json")
    assert ("", stdout.decode()) == (piped.stderr, piped.stdout)

"""``dedup migrate``: an index made by an older dedup is refused until migrated, then reads
and writes on as if made by this one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from dedup.errors import SettingsMismatchError
from dedup.index import layout, splits
from dedup.index.migrate import FIXED_BEFORE, FORMAT_3_SHARDS, SIGNED_BEFORE
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.settings import Settings
from tests.helpers import article, as_html, invoke


def _as_format_4(client: redis.Redis, store: Store) -> None:
    """Lay a freshly written index's entries out as format 4 did: in fixed hashes, the
    bucket's number its key's top bits (shard included), the field the bits that follow;
    the sets of entries held by many named after their hash and field."""
    keys = store.keys
    bits = keys.shards.bits
    for family in layout.FAMILIES:
        _, field_bytes = FIXED_BEFORE[family.name]
        for name in list(client.scan_iter(match=keys.family_pattern(family))):
            tag, rest = name.decode().split("}:", 1)
            shard = keys.shards.tags.index(tag.rsplit("{", 1)[1])
            number = rest.split(".", 1)[1]
            if number.startswith("o:"):
                continue  # renamed with the entry that names it
            bucket = int(number)
            depth = bucket.bit_length() - 1
            for field, value in client.hgetall(name).items():
                past = splits.field_bits(family, bits, depth)
                prefix = (
                    (shard << (family.precision - bits))
                    | ((bucket - (1 << depth)) << past)
                    | int.from_bytes(field, "big")
                )
                old = f"{tag}}}:{family.name}:{prefix >> (8 * field_bytes)}"
                old_field = (prefix & ((1 << (8 * field_bytes)) - 1)).to_bytes(field_bytes, "big")
                client.hset(old, old_field, value)
                if value == b"":
                    key = prefix << (family.key_bits - family.precision)
                    client.rename(keys.overflow(family, key), f"{old}:{old_field.hex()}")
            client.delete(name)
        for shard in range(keys.shards.count):
            client.hdel(keys.counters(shard), *keys.depth_fields(family))
    recorded = json.loads(client.hget(keys.meta, "signature"))
    recorded["format"] = "4"
    client.hset(keys.meta, "signature", json.dumps(recorded, sort_keys=True))


def _as_format_3(client: redis.Redis, store: Store) -> None:
    """Make a freshly written index look as format 3 left it: format 4's entries, no shards
    recorded (it has 1,024), id entries with the serial alone or with a digest of another
    definition."""
    _as_format_4(client, store)
    meta = store.keys.meta
    recorded = json.loads(client.hget(meta, "signature"))
    assert str(FORMAT_3_SHARDS) == recorded.pop("groups")
    for name in SIGNED_BEFORE:  # written before these settings: as they were off
        recorded.pop(name, None)
    recorded["format"] = "3"
    client.hset(meta, "signature", json.dumps(recorded, sort_keys=True))
    old_ids = store.keys.family_pattern(layout.IDS).replace(":i.*", ":i:*")
    for n, name in enumerate(client.scan_iter(match=old_ids)):
        for field, value in client.hgetall(name).items():
            serial = value[: layout.SERIAL.size]
            client.hset(name, field, serial if n % 2 else serial + b"\x01" * 8)


def _written_then_aged(
    client: redis.Redis,
    old: Store,
    pages: list[Document],
    age: Callable[[redis.Redis, Store], None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Index ``pages``, keep their reports and the stats, then lay the index out as an
    older format (``age``): readers now refuse it, saying to migrate."""
    old.index([analyse(d, old.settings) for d in pages])
    reports = {d.doc_id: old.report(d.doc_id) for d in pages}
    stats = old.stats()
    age(client, old)
    with pytest.raises(SettingsMismatchError, match="run `dedup migrate`"):
        Store(client, old.settings).report(pages[1].doc_id)
    return reports, stats


def test_an_older_index_is_refused_until_migrated_then_reads_and_writes_on(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Readers and writers refuse a format-3 index, saying to migrate; ``dedup migrate``
    brings it to this format: its reports are as they were, pages crawled again unchanged
    are still the same version, and running it again changes nothing."""
    pages = [
        Document(
            f"p{n}",
            as_html(article(200 + n % 7, 4)),
            f"https://a.example/{n}",
            "auto",
            "2024-05-01T00:00:00Z",
        )
        for n in range(30)
    ]
    # what the index's writers set: the index was made without these rules
    settings = settings.replace(short_document_words=0, script_words=False, near_paragraphs=False)
    old = Store(redis_client, settings.replace(index_shards=FORMAT_3_SHARDS))
    reports, stats = _written_then_aged(redis_client, old, pages, _as_format_3)
    refused = invoke(settings, "report", "p1")
    assert 0 != refused.exit_code and "dedup migrate" in refused.output
    done = invoke(settings, "migrate")
    assert 0 == done.exit_code, done.output
    assert f"from format 3 to {layout.FORMAT_VERSION}: 30 id entries rewritten" in done.output
    needed = "DEDUP_SHORT_DOCUMENT_WORDS=0, DEDUP_SCRIPT_WORDS=false, DEDUP_NEAR_PARAGRAPHS=false"
    assert needed in " ".join(done.output.split())
    with pytest.raises(SettingsMismatchError, match="short_document_words=0 \\(ours 60\\)"):
        defaults = Settings()
        newer = settings.replace(
            short_document_words=defaults.short_document_words,
            script_words=defaults.script_words,
        )
        Store(redis_client, newer).index([analyse(Document("new", as_html(article(300))), newer)])
    store = Store(redis_client, settings)
    assert FORMAT_3_SHARDS == store.keys.shards.count
    assert reports == {d.doc_id: store.report(d.doc_id) for d in pages}
    again = [Document(d.doc_id, d.body, d.url, d.fmt, "2024-06-01T00:00:00Z") for d in pages]
    assert not any(r.changed for r in store.index([analyse(d, settings) for d in again]))
    assert stats == store.stats()
    assert f"in format {layout.FORMAT_VERSION} already" in invoke(settings, "migrate").output


def test_an_index_of_fixed_entry_hashes_moves_into_hashes_that_split(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Format 4's fixed entry hashes, boilerplate in overflow sets included, move into hashes
    of about ``LOAD`` fields: every report, the stats and the flags as they were, and writes
    go on (a new copy finds its original)."""
    footer = "Read more of our stories and subscribe to the newsletter for the daily digest."
    settings = settings.replace(near_paragraphs=False, index_shards=4)
    pages = [Document(f"p{n}", as_html([*article(200 + n % 11, 5), footer])) for n in range(60)]
    reports, stats = _written_then_aged(
        redis_client, Store(redis_client, settings), pages, _as_format_4
    )
    done = invoke(settings, "migrate")
    assert 0 == done.exit_code, done.output
    assert f"from format 4 to {layout.FORMAT_VERSION}: 0 id entries rewritten" in done.output
    store = Store(redis_client, settings)
    assert reports == {d.doc_id: store.report(d.doc_id) for d in pages}
    assert stats == store.stats()
    for family in layout.FAMILIES:
        names = list(redis_client.scan_iter(match=store.keys.family_pattern(family)))
        hashes = [n for n in names if redis_client.type(n) == b"hash"]
        fields = sum(redis_client.hlen(n) for n in hashes)
        counted = sum(
            int(redis_client.hget(store.keys.counters(s), f"{family.name}.fields") or 0)
            for s in range(4)
        )
        assert fields == counted
        assert len(hashes) <= max(4, 2 * fields // splits.LOAD), family.name
    [copy] = store.index([analyse(Document("copy", pages[3].body), settings)])
    assert "p3" in copy.exact
    assert f"in format {layout.FORMAT_VERSION} already" in invoke(settings, "migrate").output


def _overflow_fields_as_before(client: redis.Redis, store: Store) -> int:
    """Empty the field of every entry held in its overflow set, as formats 5 and 6 kept it
    (format 7 keeps its first holders there); returns how many."""
    emptied = 0
    for family in layout.FAMILIES:
        for name in client.scan_iter(match=store.keys.family_pattern(family)):
            if client.type(name) != b"hash":
                continue
            for field, value in client.hgetall(name).items():
                if len(value) % layout.SERIAL.size:
                    client.hset(name, field, b"")
                    emptied += 1
    return emptied


def _as_format(found: str, client: redis.Redis, store: Store) -> int:
    """Record a freshly written index as format ``found`` (5 or 6), its entries as then;
    returns how many overflow fields were emptied."""
    emptied = _overflow_fields_as_before(client, store)
    recorded = json.loads(client.hget(store.keys.meta, "signature"))
    recorded["format"] = found
    client.hset(store.keys.meta, "signature", json.dumps(recorded, sort_keys=True))
    return emptied


def _as_format_5(client: redis.Redis, store: Store) -> None:
    """Record a freshly written index (near copies of paragraphs off) as format 5: its
    records and entries are those of that format."""
    recorded = json.loads(client.hget(store.keys.meta, "signature"))
    assert "near_paragraphs" not in recorded
    _as_format("5", client, store)


def test_an_index_of_format_6_is_migrated_by_recording_its_format(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Format 6 kept nothing in the field of an entry held in its overflow set, where format
    7 keeps its first holders: this dedup reads such a field as one whose first holders are
    not known, so ``dedup migrate`` records the format, and near copies of paragraphs stay
    on. Reports read on as they were, and copies added after find the ones before."""
    on = settings.replace(near_paragraphs=True)
    page = as_html(article(500, 4))
    pages = [Document(f"c{n}", page) for n in range(12)]
    pages += [Document(f"p{n}", as_html(article(400 + n, 4))) for n in range(4)]
    emptied: list[int] = []
    reports, stats = _written_then_aged(
        redis_client,
        Store(redis_client, on),
        pages,
        lambda c, s: emptied.append(_as_format("6", c, s)),
    )
    assert emptied[0] > 0  # the page's bands, content, paragraphs and pieces
    done = invoke(on, "migrate")
    assert 0 == done.exit_code, done.output
    assert f"from format 6 to {layout.FORMAT_VERSION}" in done.output
    assert "DEDUP_NEAR_PARAGRAPHS" not in done.output
    store = Store(redis_client, on)
    assert reports == {d.doc_id: store.report(d.doc_id) for d in pages}
    assert stats == store.stats()
    [copy] = store.index([analyse(Document("c12", page), on)])
    assert {f"c{n}" for n in range(12)} <= set(copy.exact)
    assert 1 == store.delete(["c0"])
    assert 11 == store.report("c12")["exact_duplicates_total"]


def test_an_index_of_format_5_keeps_near_paragraphs_off(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Format 5 is migrated by recording the format: reports as they were, and its writers
    keep near copies of paragraphs off, which ``dedup migrate`` and a refused writer say."""
    off = settings.replace(near_paragraphs=False)
    pages = [Document(f"p{n}", as_html(article(400 + n % 5, 4))) for n in range(12)]
    reports, stats = _written_then_aged(redis_client, Store(redis_client, off), pages, _as_format_5)
    done = invoke(off, "migrate")
    assert 0 == done.exit_code, done.output
    assert (
        f"from format 5 to {layout.FORMAT_VERSION}: 0 id entries rewritten, 0 index entries moved"
        in done.output
    )
    assert "DEDUP_NEAR_PARAGRAPHS=false" in done.output
    on = settings.replace(near_paragraphs=True)
    with pytest.raises(SettingsMismatchError, match="near_paragraphs=false \\(ours true\\)"):
        Store(redis_client, on).index([analyse(Document("new", as_html(article(300))), on)])
    store = Store(redis_client, off)
    assert reports == {d.doc_id: store.report(d.doc_id) for d in pages}
    assert stats == store.stats()
    [copy] = store.index([analyse(Document("copy", pages[3].body), off)])
    assert "p3" in copy.exact


def test_an_older_index_with_near_paragraphs_is_refused_with_what_to_do(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Near copies of paragraphs as formats 3 to 5 kept them cannot be moved: ``dedup
    migrate`` says to index again, and leaves the index as it was."""
    on = settings.replace(near_paragraphs=True)
    store = Store(redis_client, on)
    store.index([analyse(Document("a", as_html(article(3))), on)])
    recorded = json.loads(redis_client.hget(store.keys.meta, "signature"))
    recorded["format"] = "5"
    redis_client.hset(store.keys.meta, "signature", json.dumps(recorded, sort_keys=True))
    result = invoke(on, "migrate")
    assert 0 != result.exit_code and "index the documents again" in result.output
    assert "5" == json.loads(redis_client.hget(store.keys.meta, "signature"))["format"]


def test_migrating_a_namespace_without_an_index_says_so(settings: Settings) -> None:
    """One line and a non-zero exit code."""
    result = invoke(settings, "migrate")
    assert 0 != result.exit_code
    assert f"no index in namespace {settings.namespace!r}" in result.output


def test_an_index_older_than_the_cluster_layout_is_refused_with_what_to_do(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Format 2 cannot be migrated: readers, writers and ``dedup migrate`` say so in one line."""
    store = Store(redis_client, settings)
    store.index([analyse(Document("a", as_html(article(3))), settings)])
    recorded = json.loads(redis_client.hget(store.keys.meta, "signature"))
    recorded["format"] = "2"
    redis_client.hset(store.keys.meta, "signature", json.dumps(recorded, sort_keys=True))
    with pytest.raises(SettingsMismatchError, match="cannot be migrated"):
        Store(redis_client, settings).report("a")
    result = invoke(settings, "migrate")
    assert 0 != result.exit_code and "migrates formats 3, 4, 5, 6 to 7" in result.output

"""The store's layout: packed records, reduced signatures, index entries."""

from __future__ import annotations

import random
import re
from importlib.resources import files

import numpy as np
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from dedup.errors import ConfigError
from dedup.index import layout, records, scripts, splits, versions
from dedup.index.layout import BANDS, CONTENT
from dedup.index.records import Record
from dedup.index.store import Store
from dedup.pipeline import signature
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.settings import Settings
from tests.helpers import article, as_html, edit_words, skip_unless_ci


@given(
    doc_id=st.text(min_size=1, max_size=80),
    url=st.none() | st.text(max_size=200),
    fingerprints=st.lists(st.integers(0, 2**64 - 1), max_size=40),
    signature_bytes=st.binary(max_size=256),
    doubled=st.booleans(),
    fetched=st.none() | st.just("2024-05-01T12:00:00Z"),
)
def test_records_round_trip(
    doc_id: str,
    url: str | None,
    fingerprints: list[int],
    signature_bytes: bytes,
    doubled: bool,
    fetched: str | None,
) -> None:
    """What is packed comes back, fingerprints cut to the 48 bits the index uses."""
    extra = {"fetched_at": fetched} if fetched else {}
    record = Record(
        doc_id=doc_id,
        url=url or None,
        paragraphs=len(fingerprints),
        indexed_at=1_700_000_000.125,
        content=2**64 - 3,
        signature=signature_bytes,
        fingerprints=[layout.paragraph_key(fp) for fp in fingerprints],
        doubled_body=doubled,
        extra=extra,
    )
    assert record == records.unpack(records.pack(record))


def test_reduced_signatures_estimate_jaccard() -> None:
    """8 and 4-bit values, corrected for chance agreement, still track the Jaccard similarity."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 2**32, 2000, dtype=np.uint32)
    for shared in (0, 500, 1000, 1600, 2000):
        other = np.concatenate(
            [base[:shared], rng.integers(0, 2**32, 2000 - shared, dtype=np.uint32)]
        )
        truth = len(set(base.tolist()) & set(other.tolist())) / len(
            set(base.tolist()) | set(other.tolist())
        )
        a, b = signature.segment_signatures([base, other], 256, 1)
        estimate = layout.similarity(
            layout.reduce_signature(a, 64), layout.reduce_signature(b, 64), 64
        )
        assert 160 == len(layout.reduce_signature(a, 64))
        assert abs(estimate - truth) < 0.08, (shared, truth, estimate)


def test_entry_keys_address_a_bucket_and_a_field() -> None:
    """The shard's bits, then the bucket's (one more below the split), then the field's, up
    to the family's precision: equal prefixes, equal entries."""
    key = 0xFEDC_BA98_7654_3210
    shard, bucket, field = splits.address(CONTENT, 7, splits.Depth(0, 0), key)
    assert (shard, bucket) == (key >> 57, 1)
    assert len(field) == (CONTENT.precision - 7 + 7) // 8
    assert splits.address(CONTENT, 7, splits.Depth(0, 0), key ^ 1) == (shard, bucket, field)
    assert splits.address(CONTENT, 7, splits.Depth(0, 0), key ^ (1 << 20)) != (shard, 1, field)
    rest = (key >> (64 - 7 - 4)) & 0b1111  # the four bits past the shard's: 0b0110
    assert (shard, 8 | rest >> 1) == splits.address(CONTENT, 7, splits.Depth(3, 3), key)[:2]
    assert (shard, 16 | rest) == splits.address(CONTENT, 7, splits.Depth(3, 4), key)[:2]
    sig = layout.reduce_signature(np.arange(256, dtype=np.uint32), 64)
    keys = layout.band_keys(sig, 16, 4)
    assert 16 == len(set(keys))
    assert keys == layout.band_keys(bytes(sig), 16, 4)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([f for f in layout.FAMILIES if f.key_bits <= 64]),
            st.integers(min_value=0, max_value=2**64 - 1),
            st.sampled_from("aApqrxc"),
            st.binary(max_size=5),
        ),
        max_size=40,
    ),
    st.sampled_from([1, 16, 128]),
    st.integers(min_value=0, max_value=24),
    st.integers(min_value=0, max_value=2**24 - 1),
)
def test_compiled_naming_names_as_python_does(
    ops: list[tuple[layout.Family, int, str, bytes]], shards: int, depth: int, split: int
) -> None:
    """Entry operations named by the compiled kernel and by the Python loop alike: hashes,
    codes, fields and what follows them."""
    from dedup.index import naming
    from dedup.index.depths import Depths
    from dedup.index.keys import Keys

    if naming.compiled is None:
        skip_unless_ci("dedup.index._naming was not built (no C compiler)")
    keys = Keys("ns", layout.Shards(shards))
    known = Depths(keys)
    at = splits.Depth(depth, split % (1 << depth))
    for family in layout.FAMILIES:
        known.learn(0, f"{family.name}:{at.depth}:{at.split}")
    listed = [(*op, n) for n, op in enumerate(ops)]
    names, codes, chunks = naming._named(keys, known, 0, listed)
    assert (names, codes, b"".join(chunks)) == naming.named(keys, known, 0, listed)
    assert (names, chunks[::2]) == naming.fields_of(keys, known, 0, listed)


@given(st.binary(min_size=1, max_size=160), st.data())
def test_similarity_counts_equal_values_as_their_definition(
    first: bytes, data: st.DataObject
) -> None:
    """Equal wide values (bytes) and narrow ones (nibbles) counted on the XOR at once, in C,
    are those counted one by one."""
    second = data.draw(st.binary(min_size=len(first), max_size=len(first)))
    second = data.draw(st.sampled_from([second, first, first[:-1] + second[-1:]]))
    wide = data.draw(st.integers(min_value=0, max_value=len(first)))
    equal = sum(x == y for x, y in zip(first[:wide], second[:wide], strict=True))
    equal += sum(
        ((x ^ y) >> s) & 15 == 0
        for x, y in zip(first[wide:], second[wide:], strict=True)
        for s in (0, 4)
    )
    narrow = 2 * (len(first) - wide)
    chance = wide / 256 + narrow / 16
    assert layout.similarity(first, second, wide) == max(
        0.0, (equal - chance) / (wide + narrow - chance)
    )


@given(st.binary(min_size=1, max_size=160), st.data())
def test_similarities_at_once_are_those_one_by_one(first: bytes, data: st.DataObject) -> None:
    """Scoring many signatures in one pass gives each the number :func:`similarity` gives
    it, to the last bit, whether there are few of them or many."""
    size = len(first)
    others = data.draw(
        st.lists(
            st.one_of(
                st.binary(min_size=size, max_size=size),
                st.just(first),
                st.builds(lambda b: first[:-1] + b, st.binary(min_size=1, max_size=1)),
            ),
            max_size=3 * layout.SCORED_AT_ONCE,
        )
    )
    wide = data.draw(st.integers(min_value=0, max_value=size))
    expected = [layout.similarity(first, other, wide) for other in others]
    assert expected == layout.similarities(first, others, wide)


def test_splits_keep_every_entry_and_each_hash_small(redis_client: redis.Redis) -> None:
    """Thousands of entries added to one shard split its hashes as they fill (each round
    trip carrying the splits the one before asked for): every entry is found where its key
    says, and the hashes hold about ``LOAD`` fields each."""
    from dedup.index import depths, entries
    from dedup.index.keys import Keys

    keys = Keys("split", layout.Shards(1))
    known = depths.Depths(keys)
    known.load(redis_client)
    rng = random.Random(9)
    added = [rng.getrandbits(64) for _ in range(3_000)]
    for at in range(0, len(added), 100):
        batch = entries.Batch(keys, known, boilerplate_at=10)
        batch.updates(BANDS, added[at : at + 100], entries.ADD, 7)
        batch.send(redis_client)
    # The last splits asked go with the next round trip, whatever it is.
    scripts.run(redis_client, [versions.intents(keys, 0)])
    fresh = depths.Depths(keys)
    fresh.load(redis_client)
    depth = fresh.of(0, BANDS)
    assert len(added) // splits.LOAD <= depth.buckets < 2 * len(added) // splits.LOAD
    batch = entries.Batch(keys, fresh, boilerplate_at=10)
    tickets = batch.lookups(BANDS, added, entries.MEMBERS)
    answers = batch.send(redis_client)
    assert all(answers[t].serials == [7] for t in tickets)
    sizes = [redis_client.hlen(k) for k in redis_client.scan_iter(keys.family_pattern(BANDS))]
    assert len(sizes) == depth.buckets
    assert sum(sizes) == len(added) == int(redis_client.hget(keys.counters(0), "b.fields"))
    assert max(sizes) < 4 * splits.LOAD


def test_a_split_keeps_what_a_child_holds_already(redis_client: redis.Redis) -> None:
    """A bucket split into a child that holds fields already (none does while every split
    goes as planned) adds its own to them, both where the fields keep their first byte and
    where they lose it."""
    from dedup.index import depths
    from dedup.index.keys import Keys

    keys = Keys("split", layout.Shards(1))
    rng = random.Random(3)
    added = {rng.getrandbits(64): rng.getrandbits(32).to_bytes(4, "little") for _ in range(200)}
    start = depths.Depths(keys)
    for key, value in added.items():
        _, bucket, field = splits.address(BANDS, 0, start.of(0, BANDS), key)
        redis_client.hset(keys.entry(BANDS, 0, bucket), field, value)
    stray = rng.getrandbits(63)  # in the low child of the first split
    _, bucket, field = splits.address(BANDS, 0, splits.Depth(1, 0), stray)
    redis_client.hset(keys.entry(BANDS, 0, bucket), field, b"only")
    # 42-bit fields keep their first byte when the bucket splits, 41-bit ones lose it
    scripts.run(redis_client, start.splits(0, f"b:{len(added)}"))
    depth = start.of(0, BANDS)
    assert splits.Depth(2, 0) == depth
    for key, value in [*added.items(), (stray, b"only")]:
        _, bucket, field = splits.address(BANDS, 0, depth, key)
        assert value == redis_client.hget(keys.entry(BANDS, 0, bucket), field)
    sizes = [redis_client.hlen(k) for k in redis_client.scan_iter(keys.family_pattern(BANDS))]
    assert len(added) + 1 == sum(sizes) and 4 == len(sizes)


def test_buckets_split_out_of_a_large_one_are_compact(redis_client: redis.Redis) -> None:
    """A bucket that fell far behind, past Redis's compact encoding of hashes, splits into
    buckets in that encoding again once they are small, down every line of splits."""
    from dedup.index import depths
    from dedup.index.keys import Keys

    keys = Keys("split", layout.Shards(1))
    redis_client.hset(keys.counters(0), mapping={"b.depth": 2, "b.split": 0})
    start = depths.Depths(keys)
    start.load(redis_client)
    rng = random.Random(4)
    added = [rng.getrandbits(62) for _ in range(1_200)]  # all in the first bucket, 4
    fields = [splits.address(BANDS, 0, start.of(0, BANDS), key)[1:] for key in added]
    assert {4} == {bucket for bucket, _ in fields}
    redis_client.hset(keys.entry(BANDS, 0, 4), items=[x for _, f in fields for x in (f, b"1234")])
    assert b"hashtable" == redis_client.object("encoding", keys.entry(BANDS, 0, 4))
    # fields of 40 bits at depth 2, then 39, 38...: each split keeps the low fields' bytes
    scripts.run(redis_client, start.splits(0, f"b:{64 * 80}"))
    assert 80 == start.of(0, BANDS).buckets
    names = list(redis_client.scan_iter(keys.family_pattern(BANDS)))
    assert len(added) == sum(redis_client.hlen(name) for name in names)
    assert all(redis_client.hlen(name) < 128 for name in names)
    assert b"hashtable" not in {redis_client.object("encoding", name) for name in names}


def test_counts_read_without_a_script_hold_while_others_split(
    redis_client: redis.Redis,
) -> None:
    """Counts are plain reads of the entry hashes: a process whose depths are out of date
    (another split the hashes since it read them) finds so and counts again, and entries
    whose holders moved to their overflow sets are counted there."""
    from dedup.index import depths, entries
    from dedup.index.keys import Keys

    keys = Keys("counted", layout.Shards(1))
    writer, reader = depths.Depths(keys), depths.Depths(keys)
    writer.load(redis_client)
    reader.load(redis_client)
    rng = random.Random(5)
    added = [rng.getrandbits(64) for _ in range(1_000)]
    many = added[0]
    for at in range(0, len(added), 100):
        batch = entries.Batch(keys, writer, boilerplate_at=10)
        batch.updates(BANDS, added[at : at + 100], entries.ADD, 1)
        batch.updates(BANDS, [many] * (layout.INLINE + 2), entries.ADD, at + 2)
        batch.send(redis_client)
    scripts.run(redis_client, [versions.intents(keys, 0)])  # the splits asked last
    assert reader.of(0, BANDS) == splits.Depth() != writer.of(0, BANDS)
    batch = entries.Batch(keys, reader, boilerplate_at=10)
    absent = rng.getrandbits(64)
    tickets = batch.counts(BANDS, [*added, absent])
    answers = batch.send(redis_client)
    assert reader.of(0, BANDS) == writer.of(0, BANDS)
    counted = [answers[t].count for t in tickets]
    assert counted == [11, *[1] * (len(added) - 1), 0]


def test_scripts_and_python_score_alike(settings: Settings, redis_client: redis.Redis) -> None:
    """The similarity the write script flags on is the one reports show."""
    store = Store(redis_client, settings)
    body = article(3)
    rng = random.Random(4)
    copy = [edit_words(p, rng, 1) for p in body]
    found = store.index(
        [
            analyse(Document("a", as_html(body)), store.settings),
            analyse(Document("b", as_html(copy)), store.settings),
        ]
    )
    (other, score), *_ = found[1].near
    assert "a" == other
    shown = store.report("b")["near_duplicates"][0]["similarity"]
    assert round(score, 3) == shown


def test_scripts_write_no_layout_constant_of_their_own() -> None:
    """Records per bucket, the header, serial packing and signature bits reach Lua as ARGV[1]."""
    constants = [str(layout.RECORDS_PER_BUCKET), str(records.HEADER_SIZE), "256", "16", "<I"]
    for script in (files("dedup.index") / "lua").iterdir():
        code = re.sub(r"--[^\n]*", "", script.read_text())
        assert [] == [c for c in constants if c in code], script.name


def test_settings_without_room_for_bands_are_refused() -> None:
    """Bands times rows must fit in the signature."""
    with pytest.raises(ConfigError, match="lsh_bands"):
        Settings(num_perm=32, lsh_bands=16, lsh_rows=4)


@given(
    st.integers(min_value=0, max_value=2**64 - 1),
    st.sampled_from([1, 16, 128, 1024, 4096]),
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=0, max_value=2**20 - 1),
)
def test_batches_name_entries_as_keys_and_layout_do(
    key: int, shards: int, depth: int, split: int
) -> None:
    """A batch names entry hashes and fields in a loop of its own, for speed: the same names
    as ``Keys.entry`` and ``splits.address``, in the shard ``Shards.of_key`` says."""
    from dedup.index.depths import Depths
    from dedup.index.entries import Batch
    from dedup.index.keys import Keys
    from dedup.index.naming import named

    keys = Keys("ns", layout.Shards(shards))
    known = Depths(keys)
    at = splits.Depth(depth, split % (1 << depth))
    for family in layout.FAMILIES:
        shard = keys.shards.of_key(family, key)
        known.learn(shard, f"{family.name}:{at.depth}:{at.split}")
        batch = Batch(keys, known, boilerplate_at=10)
        batch.lookup(family, key)
        [(found, ops)] = batch._lookups.items()
        [name], _, chunk = named(keys, known, found, ops)
        _, bucket, field = splits.address(family, keys.shards.bits, at, key)
        assert found == shard
        assert keys.entry(family, shard, bucket) == name
        assert field == chunk


def test_calls_filling_a_young_shard_go_over_several_round_trips() -> None:
    """Calls adding more entries to a shard than its hashes hold go one round trip each, so
    that each round trip's splits come before the next fills the hashes again (the first
    call of each shard goes in any case); an index grown past the batch sends them all at
    once."""
    from dedup.index import depths
    from dedup.index.keys import Keys

    known = depths.Depths(Keys("young", layout.Shards(1)))
    calls = [(0, {BANDS: 40, CONTENT: 10}) for _ in range(6)]
    assert 1 == known.calls_fitting(calls)
    assert 1 == known.calls_fitting(calls[:1])
    known.learn(0, "b:2:0")
    assert 6 == known.calls_fitting(calls)
    known.learn(0, "b:1:0")
    assert 3 == known.calls_fitting(calls)
    others = [(shard, {BANDS: 100}) for shard in (1, 2, 3)]
    assert 6 == known.calls_fitting([*calls[:1], *others, *calls])

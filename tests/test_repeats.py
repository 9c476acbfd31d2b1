"""Repetition inside one document: doubled bodies, near copies, partial repeats."""

from __future__ import annotations

import random
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.pipeline import kernel, repeats
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.settings import Settings
from tests.helpers import article, as_html, edit_words

SETTINGS = Settings()


def repeats_of(html: str):  # type: ignore[no-untyped-def]
    """The repeats found in an HTML fragment."""
    return analyse(Document("t", html), SETTINGS).repeats


def test_seed_is_a_doubled_body(seed_text: str) -> None:
    """The seed's 13 paragraphs reappear exactly as paragraphs 13-25."""
    found = repeats_of(seed_text)
    assert [((0, 12), (13, 25), 1.0)] == [(r.first, r.repeat, r.similarity) for r in found.runs]
    assert 0.5 == found.duplicate_fraction
    assert found.doubled_body


def test_clean_article_has_no_repeats() -> None:
    """An article without repetition is left alone."""
    found = repeats_of(as_html(article(1)))
    assert [] == found.runs
    assert not found.doubled_body
    assert 0.0 == found.duplicate_fraction


def test_copy_with_a_dropped_paragraph_is_one_run() -> None:
    """A second copy missing a paragraph is still one doubled body."""
    body = article(2)
    found = repeats_of(as_html(body + body[:5] + body[6:]))
    assert 1 == len(found.runs)
    run = found.runs[0]
    assert ((0, 11), (12, 22)) == (run.first, run.repeat)
    assert run.similarity < 1.0
    assert found.doubled_body


def test_lightly_edited_copy_is_a_doubled_body() -> None:
    """Changed words, case and punctuation in the copy do not hide it."""
    rng = random.Random(3)
    body = article(3)
    copy = [edit_words(p, rng, 2).upper().replace(".", "!") for p in body]
    found = repeats_of(as_html(body) + "<br>.<br>" + as_html(copy))
    assert [((0, 11), (12, 23))] == [(r.first, r.repeat) for r in found.runs]
    assert found.doubled_body


def test_three_copies() -> None:
    """A body pasted three times: both later copies point at the first."""
    body = article(4, 8)
    found = repeats_of(as_html(body * 3))
    assert [((0, 7), (8, 15)), ((0, 7), (16, 23))] == [(r.first, r.repeat) for r in found.runs]
    assert found.doubled_body
    assert round(16 / 24, 4) == found.duplicate_fraction


def test_partial_repeat_is_not_a_doubled_body() -> None:
    """The last two paragraphs repeated: an internal repeat, not a doubled body."""
    body = article(5, 18)
    found = repeats_of(as_html(body + body[-2:]))
    assert [((16, 17), (18, 19))] == [(r.first, r.repeat) for r in found.runs]
    assert not found.doubled_body


def test_repeated_short_lines_are_not_repeats() -> None:
    """Template crumbs such as "Advertisement" repeated between paragraphs are ignored."""
    body = article(6, 6)
    html = "".join(f"<p>{p}</p><p>Advertisement</p>" for p in body)
    found = repeats_of(html)
    assert [] == found.runs


def test_paragraph_permutations_leave_the_index_alone() -> None:
    """``paragraph_num_perm`` sizes the paragraph signatures only: document signatures, which
    the index stores, stay the same, and a doubled body is found at either size."""
    html = as_html(article(3) + article(3))
    narrow = analyse(Document("t", html), SETTINGS.replace(paragraph_num_perm=32))
    wide = analyse(Document("t", html), SETTINGS.replace(paragraph_num_perm=256))
    assert (narrow.paragraph_signatures.shape[1], wide.paragraph_signatures.shape[1]) == (32, 256)
    assert (narrow.shingle_signatures == wide.shingle_signatures).all()
    assert narrow.repeats.doubled_body and wide.repeats.doubled_body


DELIVERY = "Free delivery in two days, free returns within thirty days."


def _grid(seed: int) -> list[str]:
    """A product grid: each item a name, a few words of its own and the shop's delivery line."""
    rng = random.Random(seed)
    items = []
    for n in range(8):
        items += [f"Item {n}", " ".join(article(seed + n, 1)[0].split()[: rng.randint(3, 7)])]
        items.append(DELIVERY)
    return items


def test_a_template_line_under_every_item_is_not_a_doubled_body() -> None:
    """A line that comes back under every item, around text of each item's own, is the
    page's layout: reported as repeats, never a doubled body."""
    found = repeats_of(as_html(_grid(7)))
    assert found.runs
    assert not found.doubled_body


def test_sections_repeating_their_labels_are_not_a_doubled_body() -> None:
    """Plans with the same headings and closing line around meals of their own."""
    closing = "Drink at least eight glasses of water a day and take a short walk after each meal."
    page = []
    for plan in range(4):
        page.append(f"Plan {plan}")
        for meal, text in zip(("Breakfast", "Lunch", "Dinner"), article(20 + plan, 3), strict=True):
            page += [meal, " ".join(text.split()[:6])]
        page.append(closing)
    found = repeats_of(as_html(page))
    assert found.runs
    assert not found.doubled_body


def test_a_structured_page_pasted_twice_is_a_doubled_body() -> None:
    """The same grid pasted twice is a doubled body all the same: nothing of its own stands
    between the two copies."""
    grid = _grid(8)
    assert repeats_of(as_html(grid + grid)).doubled_body
    assert repeats_of(as_html([*grid, ".", *grid, *grid])).doubled_body


def test_a_doubled_body_with_template_crumbs_between_is_still_one() -> None:
    """Crumbs of the page's own between the two copies do not make a body template."""
    body = article(9, 10)
    found = repeats_of(as_html([*body, "Share this story", "Advertisement", *body]))
    assert found.doubled_body


@pytest.mark.usefixtures("compiled_kernel")
@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(2, 40),
    st.sampled_from([16, 128]),
    st.floats(0.05, 1.0),
)
def test_kernel_runs_equal_numpy(draw: int, count: int, num_perm: int, threshold: float) -> None:
    """The kernel's pairs, runs and claims are Python's and numpy's: copies of a few
    paragraphs with values changed, some sharing a fingerprint, some signatures unsigned."""
    rng = np.random.default_rng(draw)
    bases = rng.integers(0, 2**32, (3, num_perm), dtype=np.uint32)
    signatures = bases[rng.integers(0, 3, count)]
    changed = rng.random((count, num_perm)) < rng.random()
    signatures = np.where(changed, rng.integers(0, 4, (count, num_perm)), signatures)
    signatures = np.ascontiguousarray(signatures, dtype=np.uint32)
    fingerprints = rng.integers(0, 3, count).tolist()
    signed = (rng.random(count) < 0.8).tolist()
    word_counts = rng.integers(0, 12, count).tolist()
    assert_kernel_equals_numpy(fingerprints, signatures, signed, word_counts, threshold)


@pytest.mark.usefixtures("compiled_kernel")
@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=20),
    st.lists(st.integers(0, 12), max_size=20),
    st.integers(0, 2**32 - 1),
    st.integers(1, 4),
    st.floats(0.3, 1.0),
)
def test_kernel_runs_of_pasted_bodies_equal_numpy(
    body: list[int], between: list[int], draw: int, copies: int, threshold: float
) -> None:
    """Bodies pasted again with paragraphs edited, dropped and added (runs with gaps, runs
    competing for the same copy, groups past the limit) chain and claim alike in the kernel
    and in Python."""
    rng = np.random.default_rng(draw)
    kinds = body + between + [k for _ in range(copies) for k in body if rng.random() > 0.2]
    kinds += [int(k) for k in rng.integers(0, 13, int(rng.integers(0, 40)))]
    kinds += [12] * int(rng.integers(0, 40))  # a template line, past the group limit at times
    num_perm = 32
    bases = rng.integers(0, 2**32, (13, num_perm), dtype=np.uint32)
    signatures = bases[kinds]
    edited = rng.random(len(kinds)) < 0.3
    signatures[edited, : num_perm // 4] = rng.integers(0, 2**32, (int(edited.sum()), 8))
    fingerprints = [
        k + 100 * i if edit else k for i, (k, edit) in enumerate(zip(kinds, edited, strict=True))
    ]
    signed = (rng.random(len(kinds)) < 0.9).tolist()
    word_counts = [3 + 2 * k for k in kinds]
    assert_kernel_equals_numpy(fingerprints, signatures, signed, word_counts, threshold)


def assert_kernel_equals_numpy(
    fingerprints: list[int],
    signatures: np.ndarray,  # type: ignore[type-arg]
    signed: list[bool],
    word_counts: list[int],
    threshold: float,
) -> None:
    """find_repeats gives the same runs, shares and claims with the kernel and without."""
    expected = repeats.find_repeats(fingerprints, signatures, signed, word_counts, threshold)
    with mock.patch.object(kernel, "compiled", None):
        numpy_found = repeats.find_repeats(fingerprints, signatures, signed, word_counts, threshold)
    assert numpy_found == expected


@pytest.mark.usefixtures("compiled_kernel")
def test_kernel_runs_refuse_rows_out_of_bounds() -> None:
    """Rows past the signatures, signatures not num_perm wide, or word counts not one per
    paragraph raise ValueError instead of reading out of bounds."""
    assert kernel.compiled is not None
    signatures = np.zeros((3, 16), dtype=np.uint32)
    prints = np.arange(3, dtype=np.uint64)
    salt = int(repeats._BAND_SALT)
    cases = (([0, 3], 16, 3), ([-1, 1], 16, 3), ([0, 1], 32, 3), ([0, 1], 2, 3), ([0, 1], 16, 2))
    for rows, num_perm, paragraphs in cases:
        with pytest.raises(ValueError, match="repeat_runs"):
            kernel.compiled.repeat_runs(
                signatures,
                num_perm,
                np.array(rows, np.int64),
                prints,
                np.ones(paragraphs, np.int64),
                repeats._BAND_MIX,
                salt,
                32,
                0.5,
                repeats.MAX_GAP,
                repeats.MIN_RUN_WORDS,
            )

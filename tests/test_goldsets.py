"""Gold sets of main content: their three formats read, extractions scored by word F1."""

from __future__ import annotations

from pathlib import Path

import pytest

from dedup.errors import InputError
from dedup.evaluation.goldsets import gold_text, read_set, summary, word_f1

CLEANEVAL = """URL: http://example.org/river

<h>The river bridge
<p>The council approved the budget for the bridge &amp; the road.
<l>* Work starts in spring
"""
DRAGNET = """The council approved the budget for the bridge.
Work starts in spring.
!@#$%^&*()  COMMENTS
What a waste of money, says a reader.
"""
ANNOTATED = (
    "<html><body><div><span class='x-nc-sel0'>Home | News</span></div>"
    "<h1><span class='x-nc-sel1'>Bridge approved</span></h1>"
    "<p><span class='x-nc-sel2'>The council approved the budget.</span></p>"
    "<p><span class='x-nc-sel5'>A reader's comment.</span></p></body></html>"
)


def test_cleaneval_marks_and_url_line_go() -> None:
    """Block marks and the URL line are no content; entities are decoded."""
    words = gold_text(CLEANEVAL).split()
    assert "URL:" not in words and "<p>" not in words and "&" in words
    assert "bridge" in words and "spring" in words


def test_dragnet_comments_are_not_gold() -> None:
    """Only the text before Dragnet's comments line is main content."""
    gold = gold_text(DRAGNET)
    assert "spring" in gold and "reader" not in gold


def test_annotated_page_gives_headline_and_full_text() -> None:
    """Of an L3S-GN1 page, the headline and full text spans are gold, template and comments not."""
    assert ["Bridge approved", "The council approved the budget."] == gold_text(ANNOTATED).split(
        "\n"
    )


def test_word_f1_counts_words_as_a_bag() -> None:
    """Precision over the extraction's words, recall over the gold's, repeated words each."""
    score = word_f1(["The bridge, the bridge!", "Menu"], "the bridge opens")
    assert (0.4, 0.667, 0.5) == (score.precision, round(score.recall, 3), round(score.f1, 3))
    assert 0.0 == word_f1([], "the bridge").f1


def test_read_set_pairs_pages_with_their_gold(tmp_path: Path) -> None:
    """Pages with a gold text are read; a page without one, or with an empty one, is skipped."""
    (tmp_path / "input").mkdir()
    (tmp_path / "GoldStandard").mkdir()
    (tmp_path / "input" / "a.html").write_text("<text id='x'><p>café</p></text>", "cp1252")
    (tmp_path / "GoldStandard" / "a.txt").write_text(DRAGNET, "utf-8")
    (tmp_path / "input" / "b.html").write_text("<p>no gold</p>", "utf-8")
    (tmp_path / "input" / "c.html").write_text("<p>empty gold</p>", "utf-8")
    (tmp_path / "GoldStandard" / "c.txt").write_text("URL: http://example.org/\n", "utf-8")
    pages = read_set(tmp_path)
    assert ["a"] == [p.name for p in pages]
    assert "<p>café</p>" == pages[0].html
    stats = summary(
        [word_f1(["The council approved the budget for the bridge."], pages[0].gold)], [0.002]
    )
    assert (1, 0, 2.0) == (stats["pages"], stats["under_0.5"], stats["ms_per_page"])


def test_folder_without_the_layout_is_refused(tmp_path: Path) -> None:
    """A folder that is not a gold set says what it lacks."""
    with pytest.raises(InputError, match="input/ and GoldStandard/"):
        read_set(tmp_path)

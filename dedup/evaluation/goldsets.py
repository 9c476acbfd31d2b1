"""Read public gold sets of main content, and score an extraction against them by word F1.

The shared corpus measures the extractor on the pages it was tuned on; these sets measure it
on pages it has never seen. Each set is a folder in the CleanEval layout: ``input/<name>.html``
(the page as captured) and ``GoldStandard/<name>.txt`` (what people marked as its content).
Three formats of gold text are read, told apart by their content:

- CleanEval and CleanPortalEval: text with ``<p>``, ``<h>`` and ``<l>`` at the start of each
  block and a ``URL:`` line first; the marks and the URL go, entities are decoded.
- Dragnet: the page's text as corrected by hand, its main content first and then, after a
  ``!@#$%^&*()  COMMENTS`` line, the readers' comments; only the main content is gold here,
  as dedup leaves comments out on purpose.
- L3S-GN1 (Google News): the whole page again, each text annotated by a span class
  ``x-nc-sel<k>``; the headline, full text and supplemental text (1-3) are gold, as in
  Bevendorff et al. 2023 ("An Empirical Comparison of Web Content Extraction Algorithms").

A folder laid out like the evaluation corpus (``manifest.csv``) is read too, so that the
pages the extractor was tuned on are measured the same way. Nothing here is shipped or
copied: the folders are only read.
"""

from __future__ import annotations

import html as html_
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from dedup.errors import InputError
from dedup.evaluation import corpus
from dedup.pipeline import text

__all__ = ["GoldPage", "Score", "gold_text", "read_set", "summary", "word_f1"]

LOW = 0.5
"""Word F1 under which a page counts as missed (the body lost, or buried in template)."""

_URL_LINE = re.compile(r"\A\s*URL:[^\n]*\n")
_BLOCK_MARK = re.compile(r"<[phl]>", re.IGNORECASE)
_COMMENTS = re.compile(r"^[^\n]*[$%^&*]{3}[^\n]*COMMENTS[ \t]*$", re.MULTILINE)
"""Dragnet's line between content and comments (typed by hand: its punctuation varies)."""
_ANNOTATED = re.compile(r"x-nc-sel[0-9]")
_GOLD_CLASSES = ".x-nc-sel1, .x-nc-sel2, .x-nc-sel3"
_TEXT_TAG = re.compile(r"\A\s*<text [^>]*>|</text>\s*\Z")
"""CleanEval wraps each page in a ``<text id=URL ...>`` element of its own."""


@dataclass(frozen=True)
class GoldPage:
    """One page of a gold set: its HTML and the text of its main content."""

    name: str
    html: str
    gold: str


@dataclass(frozen=True)
class Score:
    """Word precision, recall and F1 of one extraction against its page's gold text."""

    precision: float
    recall: float
    f1: float


def decode(data: bytes) -> str:
    """A captured page as text: UTF-8 when it is, Windows-1252 otherwise (these sets' pages
    predate UTF-8's reign and say their charset rarely and wrongly often)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def gold_text(raw: str) -> str:
    """The main content written in a gold file, in whichever of the three formats it is."""
    if _ANNOTATED.search(raw) and "<" in raw[:200]:
        return _annotated_text(raw)
    raw = raw.removeprefix("\ufeff")
    found = _COMMENTS.search(raw)
    if found is not None:
        raw = raw[: found.start()]
    raw = _URL_LINE.sub("", raw, count=1)
    return html_.unescape(_BLOCK_MARK.sub("\n", raw))


def _annotated_text(raw: str) -> str:
    """The text of the gold-classed spans of an annotated page, each counted once."""
    tree = LexborHTMLParser(raw)
    chosen = tree.css(_GOLD_CLASSES)
    ids = {node.mem_id for node in chosen}
    pieces = []
    for node in chosen:
        parent = node.parent
        while parent is not None and parent.mem_id not in ids:
            parent = parent.parent
        if parent is None:
            pieces.append(node.text(deep=True))
    return "\n".join(pieces)


def read_set(folder: Path) -> list[GoldPage]:
    """The pages of a gold set folder that have both their HTML and a non-empty gold text.

    Raises:
        InputError: the folder has no ``input`` and ``GoldStandard`` folders, or no page.
    """
    pages_dir, gold_dir = folder / "input", folder / "GoldStandard"
    if not pages_dir.is_dir() or not gold_dir.is_dir():
        raise InputError(f"{folder} is not a gold set: it needs input/ and GoldStandard/")
    pages = []
    for gold_path in sorted(gold_dir.glob("*.txt")):
        page_path = pages_dir / (gold_path.stem + ".html")
        if not page_path.is_file():
            continue
        gold = gold_text(decode(gold_path.read_bytes()))
        if not text.words(gold):
            continue
        page = _TEXT_TAG.sub("", decode(page_path.read_bytes()))
        pages.append(GoldPage(gold_path.stem, page, gold))
    if not pages:
        raise InputError(f"{folder} holds no page with a gold text")
    return pages


def _bag(pieces: Iterable[str]) -> Counter[str]:
    bag: Counter[str] = Counter()
    for piece in pieces:
        bag.update(text.words(piece))
    return bag


def word_f1(extracted: Iterable[str], gold: str) -> Score:
    """Words in common (as a bag: a word twice counts twice) over the extraction's words
    (precision) and over the gold text's (recall), with dedup's normalisation of words."""
    got, wanted = _bag(extracted), _bag(gold.splitlines())
    common = sum((got & wanted).values())
    if not common:
        return Score(0.0, 0.0, 0.0)
    precision, recall = common / sum(got.values()), common / sum(wanted.values())
    return Score(precision, recall, 2 * precision * recall / (precision + recall))


def summary(scores: list[Score], seconds: list[float]) -> dict[str, Any]:
    """Mean and median F1, pages under :data:`LOW`, mean precision and recall, ms per page."""
    f1 = [s.f1 for s in scores]
    return {
        "pages": len(scores),
        "mean_f1": round(statistics.fmean(f1), 3),
        "median_f1": round(statistics.median(f1), 3),
        "under_0.5": sum(1 for v in f1 if v < LOW),
        "precision": round(statistics.fmean(s.precision for s in scores), 3),
        "recall": round(statistics.fmean(s.recall for s in scores), 3),
        "ms_per_page": round(1000 * statistics.fmean(seconds), 2),
    }


def pages_of(folders: Iterable[Path]) -> Iterator[tuple[str, list[GoldPage]]]:
    """Each folder's name and pages; a folder laid out like the evaluation corpus
    (``manifest.csv``, :mod:`dedup.evaluation.corpus`) gives its pages and bodies."""
    for folder in folders:
        if (folder / "manifest.csv").is_file():
            articles = corpus.load(folder)
            yield (
                folder.name,
                [GoldPage(a.name, a.page(), "\n".join(a.paragraphs)) for a in articles],
            )
        else:
            yield folder.name, read_set(folder)

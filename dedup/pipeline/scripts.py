"""Words in scripts that the plain word rule splits by accident.

:func:`dedup.pipeline.text.document_words` takes a word to be a run of word characters (each
ideograph or kana one word). Two kinds of text fall through that rule:

- combining marks (Devanagari vowel signs, Arabic vowel marks, Thai and Myanmar vowels and
  tones) are not word characters, so a Hindi or Arabic word was cut into pieces at its marks;
- Thai, Lao, Khmer and Myanmar put no spaces between words, so a whole phrase was one word,
  cut only where a mark happened to stand.

Here a combining mark stays in its word, and a run of those four scripts is cut into letter
clusters (a letter with its marks) and taken as overlapping pairs of clusters: about a
syllable each, without a dictionary, as bigram indexing does for scripts without spaces.
Paragraphs without such characters keep the words the plain rule gave them, byte for byte,
so the signatures of other text do not change.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence

from dedup.pipeline.text import _CJK  # characters the plain rule takes one by one

_UNSPACED_BLOCKS = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0xA9E0, 0xA9FF),
                    (0xAA60, 0xAA7F), (0x19E0, 0x19FF))  # fmt: skip
"""Thai, Lao, Myanmar, Khmer, Myanmar extensions B and A, Khmer symbols."""


def _ranges(codes: Sequence[int]) -> str:
    """A regular expression character class body holding exactly ``codes`` (sorted)."""
    out, start = [], None
    for code, following in zip(codes, [*codes[1:], -1], strict=True):
        start = code if start is None else start
        if following != code + 1:
            out.append(re.escape(chr(start)) + ("-" + re.escape(chr(code)) if code > start else ""))
            start = None
    return "".join(out)


_MARK_CODES = [  # marks are found in the first two planes and among the variation selectors
    c
    for c in itertools.chain(range(0x20000), range(0xE0000, 0xE1000))
    if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me")
]
MARKS = _ranges(_MARK_CODES)
"""The combining marks (categories Mn, Mc, Me), as the body of a character class."""
_UNSPACED_CODES = [c for a, b in _UNSPACED_BLOCKS for c in range(a, b + 1) if chr(c).isalnum()]
_UNSPACED = _ranges(_UNSPACED_CODES)
_NEEDS = frozenset(map(chr, _MARK_CODES + _UNSPACED_CODES))
"""What makes a paragraph's words this module's business: a set, since a regular expression
class this large costs about a microsecond per character searched."""
_WORD = re.compile(
    rf"[{_CJK}]|(?P<unspaced>(?:[{_UNSPACED}][{MARKS}]*)+)|(?:[^\W{_CJK}{_UNSPACED}][{MARKS}]*)+"
)
"""A word: one ideograph or kana (as the plain rule), a run of a script without spaces, or a
run of other word characters, each keeping the marks that follow it."""
_CLUSTER = re.compile(f"[{_UNSPACED}][{MARKS}]*")


def needs_scripts(text: str) -> bool:
    """Whether a text holds combining marks or a script written without spaces."""
    return not text.isascii() and not _NEEDS.isdisjoint(text)


def script_words(folded: str) -> list[str]:
    """The words of a normalised (NFKC, case-folded) paragraph by the script-aware rule."""
    out: list[str] = []
    for match in _WORD.finditer(folded):
        if match.group("unspaced") is None:
            out.append(match.group())
            continue
        clusters = _CLUSTER.findall(match.group())
        if len(clusters) == 1:
            out.append(clusters[0])
        else:
            out.extend(map("".join, itertools.pairwise(clusters)))
    return out


def resegment(paragraphs: Sequence[str], words: list[list[str]]) -> list[list[str]]:
    """``words`` (the plain rule's, one list per paragraph), with the paragraphs that hold
    combining marks or a script without spaces split again by :func:`script_words`."""
    needs = list(map(needs_scripts, paragraphs))
    if not any(needs):
        return words
    return [
        script_words(unicodedata.normalize("NFKC", p).casefold()) if need else found
        for p, found, need in zip(paragraphs, words, needs, strict=True)
    ]

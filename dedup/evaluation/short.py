"""Short texts: a few real sentences of the corpus, each with a copy lightly edited.

A document of 8 to 60 words (a product blurb, a comment, a headline with its standfirst)
leaves few shingles, so one word edited moves its similarity much more than a long article's.
Each source is a run of words of one article's body, starting at a sentence, its length drawn
between :data:`SHORTEST` and :data:`LONGEST` words; its copy has one to three small edits: a
word dropped, a word changed, or case and punctuation changed. One source per story, so two
sources are unrelated texts, whose pairs must stay unflagged.
"""

from __future__ import annotations

import random

from dedup.evaluation import edits
from dedup.evaluation.cases import Case
from dedup.evaluation.corpus import Article

SHORT = "short"
SHORTEST, LONGEST = 8, 60
"""Words of a short text, both included."""
LENGTHS = ((8, 15), (16, 30), (31, 60))
"""Length classes reported apart."""
EDITS = ("drop", "change", "restyle")


def _source(paragraphs: list[str], length: int, rng: random.Random) -> str | None:
    """``length`` words of the body from the start of one of its sentences, the text as
    written (punctuation kept)."""
    starts = []
    for paragraph in paragraphs:
        for sentence in edits.sentences(paragraph):
            rest = paragraph[paragraph.index(sentence) :]
            if len(edits.words(rest)) >= length:
                starts.append(rest)
    if not starts:
        return None
    rest = rng.choice(starts)
    return edits.first_words(rest, length)


def edit(text: str, kinds: list[str], rng: random.Random, pool: list[str]) -> str:
    """The text with one small edit of each kind: a word dropped or changed, or its case and
    punctuation changed."""
    for kind in kinds:
        count = len(edits.words(text))
        if kind == "drop":
            text = edits.drop_word(text, rng.randrange(count))
        elif kind == "change":
            text = edits.change_words(text, 1, rng, pool)
        else:
            text = edits.restyle(text, rng)
    return text


def build(
    articles: list[Article], stories: list[int], seed: int, pool: list[str]
) -> tuple[list[Case], int]:
    """A source and its edited copy per story; also how many stories gave no short text."""
    out: list[Case] = []
    missed = 0
    seen: set[int] = set()
    for index, article in enumerate(articles):
        if stories[index] in seen:
            continue
        seen.add(stories[index])
        rng = random.Random(f"{seed}:short:{article.name}")
        length = rng.randint(SHORTEST, LONGEST)
        source = _source(article.paragraphs, length, rng)
        if source is None:
            missed += 1
            continue
        kinds = [rng.choice(EDITS) for _ in range(rng.randint(1, 3))]
        copy = edit(source, kinds, rng, pool)
        for kind, text in (("source", source), ("copy", copy)):
            case = Case(f"short_{kind}.{index}", SHORT, kind, index, stories[index], "")
            case.content = [text]
            case.body = edits.as_html([text])
            case.edits = kinds
            out.append(case)
    return out, missed

"""Short texts: a few real sentences, each with a copy lightly edited.

A document of 8 to 60 words (a product blurb, a comment, a headline with its standfirst)
leaves few shingles, so one word edited moves its similarity much more than a long article's.
Each source is made of paragraphs of ``data/sentences.json`` (docstrings of Python's standard
library), each paragraph used once, cut after a number of words drawn between
:data:`SHORTEST` and :data:`LONGEST`; its copy has one to three small edits: a word dropped,
a word changed, or case and punctuation changed. Two sources share no sentence, so their
pairs must stay unflagged.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from dedup.evaluation import edits
from dedup.evaluation.cases import Case

SHORT = "short"
DATA = Path(__file__).with_name("data") / "sentences.json"
SOURCES = 200
SHORTEST, LONGEST = 8, 60
"""Words of a short text, both included."""
LENGTHS = ((8, 15), (16, 30), (31, 60))
"""Length classes reported apart."""
EDITS = ("drop", "change", "restyle")


def paragraphs(path: Path = DATA) -> list[str]:
    """The English paragraphs of the data file."""
    return list(json.loads(path.read_text(encoding="utf-8"))["paragraphs"])


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


def build(texts: list[str], seed: int) -> list[Case]:
    """:data:`SOURCES` short texts made of ``texts`` (each used once), each with its copy."""
    rng = random.Random(f"{seed}:short")
    pool = edits.word_pool(texts)
    unused = rng.sample(texts, len(texts))
    out: list[Case] = []
    for number in range(SOURCES):
        length = rng.randint(SHORTEST, LONGEST)
        taken: list[str] = []
        while unused and len(edits.words(" ".join(taken))) < length:
            taken.append(unused.pop())
        if len(edits.words(" ".join(taken))) < length:
            break
        source = edits.first_words(" ".join(taken), length)
        kinds = [rng.choice(EDITS) for _ in range(rng.randint(1, 3))]
        copy = edit(source, kinds, rng, pool)
        for kind, text in (("source", source), ("copy", copy)):
            case = Case(f"short_{kind}.{number}", SHORT, kind, number, number, "")
            case.content = [text]
            case.body = edits.as_html([text])
            case.edits = kinds
            out.append(case)
    return out

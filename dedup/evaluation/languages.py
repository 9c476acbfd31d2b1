"""Texts in other languages and scripts: near copies and doubled bodies, per language.

The words come from ``data/languages.json`` (made by ``data/make_languages.py`` from Faker's
word lists and Babel's CLDR names): common words of each language in its own script, with
combining marks (Hindi, Thai, Arabic, Myanmar, Khmer) and without spaces between words
(Chinese, Japanese, Thai, Lao, Khmer, Myanmar). The texts are sequences of those words drawn
at random, sentences and paragraphs as the language writes them: not real prose, but the
segmentation they need is the real one. Per language, each text comes as itself, as a near
copy with two words changed, pasted twice, and pasted twice with a word changed in each
paragraph and one paragraph dropped.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from dedup.evaluation import edits
from dedup.evaluation.cases import Case

LANGUAGES = "languages"
DATA = Path(__file__).with_name("data") / "languages.json"
TEXTS = 10
"""Texts per language."""
KINDS = ("original", "near_copy", "doubled", "doubled_edited")

Paragraph = list[list[str]]
"""Sentences of words."""


@dataclass(frozen=True)
class Language:
    """How a language is written, and words to write it with."""

    code: str
    spaced: bool
    end: str
    words: list[str]

    def render(self, paragraph: Paragraph) -> str:
        """A paragraph as the language writes it."""
        joiner = " " if self.spaced else ""
        text = "".join(joiner.join(sentence) + self.end + " " for sentence in paragraph)
        return text.strip()


def load(path: Path = DATA) -> list[Language]:
    """The languages of the data file, by code."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Language(code, v["spaced"], v["end"], list(v["words"])) for code, v in data.items()]


def _text(language: Language, rng: random.Random) -> list[Paragraph]:
    return [
        [rng.choices(language.words, k=rng.randint(6, 14)) for _ in range(rng.randint(2, 4))]
        for _ in range(rng.randint(4, 7))
    ]


def _changed(
    text: list[Paragraph], count: int, language: Language, rng: random.Random
) -> list[Paragraph]:
    """``count`` words of the text (anywhere) replaced by other words of the language."""
    slots = [(p, s, w) for p, para in enumerate(text) for s, sen in enumerate(para)
             for w in range(len(sen))]  # fmt: skip
    out = [[list(sentence) for sentence in paragraph] for paragraph in text]
    for p, s, w in rng.sample(slots, count):
        out[p][s][w] = rng.choice([x for x in language.words if x != out[p][s][w]])
    return out


def build(seed: int) -> list[Case]:
    """Every language's texts in every kind."""
    out: list[Case] = []
    story = 0
    for language in load():
        for number in range(TEXTS):
            rng = random.Random(f"{seed}:{language.code}:{number}")
            text = _text(language, rng)
            copy = _changed(text, 2, language, rng)
            edited = [_changed([p], 1, language, rng)[0] for p in text]
            del edited[rng.randrange(len(edited))]
            paragraphs = [language.render(p) for p in text]
            body = edits.as_html(paragraphs)
            bodies = {
                "original": body,
                "near_copy": edits.as_html([language.render(p) for p in copy]),
                "doubled": body + "\n" + body,
                "doubled_edited": body + "\n" + edits.as_html([language.render(p) for p in edited]),
            }
            for kind in KINDS:
                doc_id = f"{kind}.{language.code}.{number}"
                case = Case(doc_id, LANGUAGES, kind, story, story, bodies[kind])
                case.language = language.code
                case.content = paragraphs if kind == "original" else []
                out.append(case)
            story += 1
    return out

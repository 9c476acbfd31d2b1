"""The edits cases make to an article body: what scrapers, templates and copy editors do to text.

Every function takes the body as a list of paragraphs and a seeded ``random.Random``, so a
case set is the same for the same corpus and seed.
"""

from __future__ import annotations

import html
import random
import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])\s*")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
"""A word as :mod:`dedup.pipeline.text` counts them: each ideograph or syllable is one."""
DEBRIS = ("\n", ".", "<br>", " . ", "<br><br>\n", "\n\n  ", "\u00a0")
"""What sits between two copies or two paragraphs of a doubled body in scraped documents."""
SIGNUPS = (
    "Sign up for our morning newsletter and get the day's most important stories delivered "
    "to your inbox before breakfast.",
    "Enjoyed this story? Support independent journalism by becoming a member today, from just "
    "five dollars a month, and read without limits.",
    "Get the best of our reporting every week: subscribe to the free weekly briefing. You can "
    "unsubscribe at any time.",
    "We use cookies to improve your experience on our site and to show you relevant "
    "advertising. By continuing to browse you agree to our use of cookies.",
)


def as_html(paragraphs: list[str], separators: list[str] | None = None) -> str:
    """Paragraphs as an HTML fragment of ``<p>`` elements, text escaped."""
    tags = [f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs]
    if separators is None:
        return "\n".join(tags)
    out = [tags[0]]
    for separator, tag in zip(separators, tags[1:], strict=False):
        out.extend((separator, tag))
    return "".join(out)


def debris_html(paragraphs: list[str], rng: random.Random) -> str:
    """A body whose paragraphs are joined by stray dots, breaks and spaces, as in scrapes."""
    return as_html(paragraphs, [rng.choice(DEBRIS) for _ in paragraphs])


def word_pool(paragraphs: list[str]) -> list[str]:
    """Every word of a text, as :func:`substitute` draws replacements from."""
    return [w for p in paragraphs for w in _WORD.findall(p)]


def words(text: str) -> list[str]:
    """The words of a text as :mod:`dedup.pipeline.text` splits it (before case folding)."""
    return _WORD.findall(text)


def first_words(text: str, count: int) -> str:
    """The text up to the end of its ``count``-th word, as written."""
    ends = [match.end() for match in _WORD.finditer(text)]
    return text[: ends[min(count, len(ends)) - 1]] if ends else text


def drop_word(text: str, position: int) -> str:
    """The text without its word at ``position`` (a word index) and the space before it."""
    match = list(_WORD.finditer(text))[position]
    start = match.start()
    while start > 0 and text[start - 1] == " ":
        start -= 1
    return text[:start] + text[match.end() :]


def _replace(paragraph: str, positions: set[int], rng: random.Random, pool: list[str]) -> str:
    """The paragraph with its words at ``positions`` (word indexes) replaced from ``pool``."""
    out, last = [], 0
    for n, match in enumerate(_WORD.finditer(paragraph)):
        if n in positions:
            out.append(paragraph[last : match.start()])
            out.append(rng.choice(pool))
            last = match.end()
    return "".join(out) + paragraph[last:]


def substitute(
    paragraphs: list[str], share: float, rng: random.Random, pool: list[str]
) -> list[str]:
    """``share`` of the words (at least one) replaced by words drawn from ``pool``."""
    counts = [len(_WORD.findall(p)) for p in paragraphs]
    slots = [(i, j) for i, count in enumerate(counts) for j in range(count)]
    chosen: dict[int, set[int]] = {}
    for i, j in rng.sample(slots, min(len(slots), max(1, round(share * len(slots))))):
        chosen.setdefault(i, set()).add(j)
    return [_replace(p, chosen.get(i, set()), rng, pool) for i, p in enumerate(paragraphs)]


def change_words(paragraph: str, count: int, rng: random.Random, pool: list[str]) -> str:
    """``count`` words of one paragraph (fewer in a shorter one) replaced from ``pool``."""
    words = len(_WORD.findall(paragraph))
    return _replace(paragraph, set(rng.sample(range(words), min(words, count))), rng, pool)


def sentences(paragraph: str) -> list[str]:
    """A paragraph cut after each full stop, question or exclamation mark."""
    return [s for s in _SENTENCE_END.split(paragraph) if s.strip()]


def drop_sentences(paragraphs: list[str], rng: random.Random) -> list[str]:
    """One to three sentences taken out, wherever they are (a paragraph may vanish)."""
    split = [sentences(p) for p in paragraphs]
    slots = [(i, j) for i, ss in enumerate(split) for j in range(len(ss))]
    if len(slots) < 2:
        return list(paragraphs)
    dropped = set(rng.sample(slots, min(len(slots) - 1, rng.randint(1, 3))))
    kept = [[s for j, s in enumerate(ss) if (i, j) not in dropped] for i, ss in enumerate(split)]
    return [" ".join(ss) for ss in kept if ss]


def append_sentences(paragraphs: list[str], rng: random.Random, other: list[str]) -> list[str]:
    """One to three sentences of another article added as a closing paragraph."""
    pool = [s for p in other for s in sentences(p)]
    start = rng.randrange(len(pool))
    return [*paragraphs, " ".join(pool[start : start + rng.randint(1, 3)])]


def reorder(paragraphs: list[str], rng: random.Random) -> list[str]:
    """The same paragraphs in another order."""
    shuffled = list(paragraphs)
    while len(shuffled) > 1 and shuffled == paragraphs:
        rng.shuffle(shuffled)
    return shuffled


def restyle(paragraph: str, rng: random.Random) -> str:
    """Case and punctuation changed, words untouched: what normalisation must absorb."""
    changed = paragraph.upper() if rng.random() < 0.3 else paragraph
    changed = changed.replace(",", "") if rng.random() < 0.5 else changed.replace(", ", " , ")
    return changed.rstrip(".") + rng.choice(("", "!", " ...", ".."))


def light_copy(paragraphs: list[str], rng: random.Random, pool: list[str]) -> list[str]:
    """A second copy as sloppy extraction gives it: a word or two per paragraph changed (none in
    paragraphs under eight words, where one word is no light edit), case and punctuation
    changed, and (with three paragraphs or more) one paragraph dropped."""
    copy = []
    for paragraph in paragraphs:
        count = len(_WORD.findall(paragraph))
        changes = min(rng.randint(1, 2), count // 8)  # at most one word in eight
        positions = set(rng.sample(range(count), min(count, changes)))
        copy.append(restyle(_replace(paragraph, positions, rng, pool), rng))
    if len(copy) >= 3:
        del copy[rng.randrange(len(copy))]
    return copy


def edited(paragraphs: list[str], rng: random.Random, pool: list[str]) -> list[str]:
    """A copy edited for another site: restyled throughout, one word in four paragraphs changed."""
    copy = [restyle(p, rng) for p in paragraphs]
    for i in rng.sample(range(len(copy)), min(4, len(copy))):
        count = len(_WORD.findall(copy[i]))
        copy[i] = _replace(copy[i], {rng.randrange(count)} if count else set(), rng, pool)
    return copy

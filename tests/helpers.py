"""Small synthetic articles for tests: made here, so the suite needs no outside data."""

from __future__ import annotations

import os
import random
import subprocess
import sys

_VOCABULARY = [
    "council",
    "budget",
    "river",
    "bridge",
    "school",
    "teacher",
    "market",
    "price",
    "farmer",
    "harvest",
    "storm",
    "coast",
    "minister",
    "election",
    "vote",
    "court",
    "judge",
    "police",
    "report",
    "museum",
    "artist",
    "concert",
    "festival",
    "league",
    "coach",
    "match",
    "season",
    "player",
    "doctor",
    "hospital",
    "patient",
    "vaccine",
    "study",
    "science",
    "engineer",
    "rocket",
    "launch",
    "company",
    "profit",
    "share",
    "bank",
    "loan",
    "housing",
    "rent",
    "tenant",
    "landlord",
    "train",
    "station",
    "ticket",
    "airport",
    "flight",
    "pilot",
    "weather",
    "forecast",
    "rainfall",
    "drought",
    "wildfire",
    "forest",
    "village",
    "mayor",
    "library",
    "book",
    "author",
    "novel",
    "history",
    "castle",
    "ancient",
    "discovery",
    "ocean",
    "whale",
    "fisher",
    "harbour",
]
_GLUE = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "on",
    "for",
    "with",
    "that",
    "was",
    "said",
    "by",
    "at",
    "from",
    "after",
    "before",
    "about",
]


def paragraph(rng: random.Random, words: int = 40) -> str:
    """One paragraph of plausible-looking prose."""
    out = []
    for i in range(words):
        out.append(rng.choice(_GLUE) if i % 3 == 1 else rng.choice(_VOCABULARY))
    text = " ".join(out)
    return text[0].upper() + text[1:] + "."


def article(seed: int, paragraphs: int = 12) -> list[str]:
    """A synthetic article: distinct paragraphs, reproducible from its seed."""
    rng = random.Random(seed)
    return [paragraph(rng, rng.randint(25, 60)) for _ in range(paragraphs)]


def as_html(paragraphs: list[str], separator: str = "") -> str:
    """Paragraphs as an HTML fragment of <p> elements, as scrapers send article bodies."""
    return separator.join(f"<p>{p}</p>" for p in paragraphs)


def edit_words(paragraph_text: str, rng: random.Random, count: int) -> str:
    """The paragraph with ``count`` words replaced."""
    words = paragraph_text.split()
    for _ in range(count):
        words[rng.randrange(len(words))] = rng.choice(_VOCABULARY) + "x"
    return " ".join(words)


def dedup_command(
    redis_url: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dedup`` against ``redis_url`` in a process of its own, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "dedup", *args],
        input=stdin,
        env={**os.environ, "DEDUP_REDIS_URL": redis_url, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

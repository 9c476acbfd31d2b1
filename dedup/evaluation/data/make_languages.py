"""Write ``languages.json``: the words the evaluation's texts in other languages are made of.

Run once by hand, with Faker and Babel installed (neither is a dependency of dedup)::

    python dedup/evaluation/data/make_languages.py > dedup/evaluation/data/languages.json

Words come from Faker's lorem word lists (MIT licence; lists of common words of each
language) where Faker has one, else from the names of territories and languages in Babel's
CLDR locale data (BSD and Unicode licences): real words of the language in its own script,
though the texts made of them are not real sentences. How a language ends a sentence and
whether it puts spaces between words is given with it.
"""

from __future__ import annotations

import importlib
import json
import random
import sys

from babel import Locale

FAKER = {"zh": "zh_CN", "ja": "ja_JP", "th": "th_TH", "ar": "ar_AA", "ru": "ru_RU", "el": "el_GR"}
CLDR = ("hi", "he", "ko", "lo", "km", "my")
UNSPACED = {"zh", "ja", "th", "lo", "km", "my"}
ENDS = {"zh": "。", "ja": "。", "th": " ", "lo": " ", "km": "។", "my": "။", "hi": "।"}
WORDS = 400


def _faker_words(locale: str) -> list[str]:
    module = importlib.import_module(f"faker.providers.lorem.{locale}")
    return list(module.Provider.word_list)


def _cldr_words(code: str, spaced: bool) -> list[str]:
    locale = Locale(code)
    names = [*locale.territories.values(), *locale.languages.values()]
    words = [w for name in names for w in (name.split() if spaced else [name.replace(" ", "")])]
    return [w for w in words if w.isprintable() and not any(c.isascii() for c in w)]


def main() -> None:
    out = {}
    for code in (*FAKER, *CLDR):
        spaced = code not in UNSPACED
        found = _faker_words(FAKER[code]) if code in FAKER else _cldr_words(code, spaced)
        unique = sorted(set(found))
        unique = sorted(random.Random(code).sample(unique, min(WORDS, len(unique))))
        out[code] = {"spaced": spaced, "end": ENDS.get(code, "."), "words": unique}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=0, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

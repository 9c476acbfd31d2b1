"""Write ``sentences.json``: English paragraphs the short texts and structured pages are made of.

Run once by hand, with the Python whose standard library is to be read::

    python dedup/evaluation/data/make_sentences.py > dedup/evaluation/data/sentences.json

The paragraphs are those of the docstrings of Python's standard library (PSF licence): real
English sentences, about programs rather than news, of every length. Paragraphs holding code
(brackets, operators, doctest prompts) are left out, and so is every paragraph that shares
half its words with one kept before it (docstrings repeat one another).
"""

from __future__ import annotations

import importlib
import inspect
import json
import random
import re
import sys
import warnings

SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test", "lib2to3"}
CODE = re.compile(r"[()\[\]{}=<>*`|\\/#@$%^~]|\w_|_\w|\.\w|\d\d\d|>>>|--")
WORDS = re.compile(r"[^\W\d_]+")
PARAGRAPHS = 700


def _docstrings() -> list[str]:
    found = []
    for name in sorted(sys.stdlib_module_names):
        if name in SKIP or name.startswith("_"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except Exception:  # a module this platform lacks, or one that cannot be imported here
            continue
        found.append(inspect.getdoc(module) or "")
        for _, member in sorted(vars(module).items()):
            if inspect.isclass(member) or inspect.isfunction(member):
                found.append(inspect.getdoc(member) or "")
    return found


def main() -> None:
    kept: list[str] = []
    seen: list[set[str]] = []
    for doc in _docstrings():
        for block in doc.split("\n\n"):
            text = " ".join(block.split())
            words = WORDS.findall(text.lower())
            if not 8 <= len(words) <= 120 or CODE.search(text) or not text.endswith("."):
                continue
            mine = set(words)
            if any(len(mine & other) * 2 >= len(mine | other) for other in seen):
                continue
            kept.append(text)
            seen.append(mine)
    chosen = sorted(random.Random(1).sample(kept, min(PARAGRAPHS, len(kept))))
    json.dump({"paragraphs": chosen}, sys.stdout, ensure_ascii=False, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

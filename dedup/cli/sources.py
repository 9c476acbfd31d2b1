"""Where ``submit`` and ``check`` read documents from: files, folders, standard input, JSON lines.

A file too large is refused before it is read, and bytes become text through
:func:`dedup.pipeline.document.decode`, so every source meets the same limits (docs/CLI.md).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from dedup.errors import InputError
from dedup.pipeline.document import decode, id_for_body
from dedup.settings import Settings


def read_source(path: str, settings: Settings) -> str:
    """The text of a file, or of stdin for ``-``."""
    if path == "-":
        raw = sys.stdin.buffer.read(settings.max_document_bytes + 1)
        return decode(raw, settings.max_document_bytes, "standard input")
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > settings.max_document_bytes:
            raise InputError(
                f"{path} is {size:,} bytes, over the limit of {settings.max_document_bytes:,}"
            )
        raw = file.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    return decode(raw, settings.max_document_bytes, path)


def default_id(path: str, body: str) -> str:
    """The id of a document given without one: its file name, or a hash of stdin's content."""
    return id_for_body(body) if path == "-" else Path(path).stem


def expand(paths: tuple[str, ...]) -> Iterator[str]:
    """The paths given, with every file below a folder in place of the folder."""
    for path in paths:
        if path != "-" and Path(path).is_dir():
            yield from sorted(str(p) for p in Path(path).rglob("*") if p.is_file())
        else:
            yield path


def jsonl_lines(source: str) -> Iterator[tuple[int, str]]:
    """The non-blank lines of a JSON lines file (``-``: stdin), with their line numbers."""
    handle = sys.stdin if source == "-" else open(source, encoding="utf-8", errors="strict")  # noqa: SIM115
    try:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield number, line
    except UnicodeDecodeError:
        raise InputError(f"{source} is not valid UTF-8") from None
    finally:
        if handle is not sys.stdin:
            handle.close()

"""The optional compiled kernel of the pipeline (``_minhash.c`` beside this file), or None.

One switch for every step that has a compiled path (:mod:`dedup.pipeline.text` hashes words
with it, :mod:`dedup.pipeline.signature` signs with it): a machine without a C compiler runs
the xxhash and numpy paths, which compute the same values. Tests set :data:`compiled` to None
to run those.
"""

from __future__ import annotations

__all__ = ["KERNEL", "compiled"]

try:
    from dedup.pipeline import _minhash as compiled
except ImportError:  # built without a C compiler: the Python paths give the same values
    compiled = None  # type: ignore[assignment]

KERNEL = "numpy" if compiled is None else "compiled"
"""Which path runs: ``compiled`` (``dedup/pipeline/_minhash.c``) or ``numpy``."""

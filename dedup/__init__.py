"""dedup: duplicate-content detection for scraped web content.

The pipeline (extract, shingle, sign, find repeats) is pure and lives in small modules;
Redis is reached only through :mod:`dedup.index.store`; the queue through :class:`dedup.Client`.
"""

from typing import TYPE_CHECKING, Any

from dedup.errors import DedupError, InputError, StoreError
from dedup.settings import Settings

if TYPE_CHECKING:
    from dedup.client import Client

__all__ = ["Client", "DedupError", "InputError", "Settings", "StoreError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``dedup.Client`` on first use: reading commands need not import the whole pipeline."""
    if name == "Client":
        from dedup.client import Client

        return Client
    raise AttributeError(f"module 'dedup' has no attribute {name!r}")

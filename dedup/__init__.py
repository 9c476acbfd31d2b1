"""dedup: duplicate-content detection for scraped web content.

The pipeline (extract, shingle, sign, find repeats) is pure and lives in small modules;
Redis is reached only through :mod:`dedup.store`; the queue through :class:`dedup.Client`.
"""

from dedup.client import Client
from dedup.errors import DedupError, InputError, StoreError
from dedup.settings import Settings

__all__ = ["Client", "DedupError", "InputError", "Settings", "StoreError"]
__version__ = "0.1.0"

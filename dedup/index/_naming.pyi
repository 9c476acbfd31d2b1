from collections.abc import Callable
from typing import Any

def named(
    ops: list[tuple[Any, ...]],
    make: Callable[[Any], tuple[str, str, int, int, int, int] | None],
    fields: bool,
) -> tuple[list[str], str, bytes | list[bytes]] | None: ...

"""Bearer tokens kept as hashes, and the signed cookie a browser signs in with.

A token is a random string shown once (``dedup token new``); the settings hold only its
SHA-256 (``sha256:HEX``, ``:ro`` for read-only). Every check hashes the presented token and
compares it with every entry in constant time, so neither a wrong token nor a right one
answers faster. Tokens are never logged or stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

TOKEN_PREFIX = "dedup_"
SESSION_SECONDS = 12 * 3600
"""How long a browser stays signed in."""


@dataclass(frozen=True)
class Grant:
    """What a token may do: read always, write unless it is read-only."""

    digest: str
    read_only: bool


def digest(token: str) -> str:
    """The hex SHA-256 of a token, as the settings keep it."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token(read_only: bool = False) -> tuple[str, str]:
    """A fresh token and the ``api_tokens`` entry that accepts it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, f"sha256:{digest(token)}" + (":ro" if read_only else "")


def parse_entries(text: str) -> list[Grant]:
    """The grants of an ``api_tokens`` setting (validated by the settings already)."""
    grants = []
    for entry in text.split(","):
        parts = entry.strip().split(":")
        if len(parts) >= 2 and parts[0] == "sha256":
            grants.append(Grant(parts[1], read_only=parts[2:] == ["ro"]))
    return grants


class Tokens:
    """The accepted tokens, and the signing of browser sessions."""

    def __init__(self, grants: list[Grant], secret: bytes | None = None) -> None:
        self.grants = grants
        self._secret = secret or secrets.token_bytes(32)
        """Signs session cookies; a new one per server start signs browsers out."""

    def _find(self, hex_digest: str) -> Grant | None:
        found = None
        for grant in self.grants:  # every entry, whatever matched: the time never tells
            if hmac.compare_digest(grant.digest.encode(), hex_digest.encode()):
                found = grant
        return found

    def check(self, token: str) -> Grant | None:
        """The grant of a presented token, or None."""
        return self._find(digest(token))

    def session(self, grant: Grant, now: float | None = None) -> str:
        """A cookie value naming the grant (its hash, not the token), signed and expiring."""
        expires = int((now or time.time()) + SESSION_SECONDS)
        payload = f"{grant.digest}.{expires}"
        return f"{payload}.{self._sign(payload)}"

    def check_session(self, value: str, now: float | None = None) -> Grant | None:
        """The grant of a session cookie still valid, signed by this server, for a token
        still accepted; None otherwise."""
        parts = value.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        payload = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign(payload).encode(), parts[2].encode()):
            return None
        if int(parts[1]) < (now or time.time()):
            return None
        return self._find(parts[0])

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

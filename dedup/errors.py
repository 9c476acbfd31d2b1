"""Errors the service raises on purpose.

Each one carries a message fit to show a user on one line; the CLI prints it and exits
non-zero, a job fails with it as the reason. Anything else escaping is a bug.
"""


class DedupError(Exception):
    """Base of every error dedup raises for a user to read."""

    exit_code = 1


class InputError(DedupError):
    """A document that cannot be analysed: empty, binary, not UTF-8, too large, too deep."""

    exit_code = 2


class ConfigError(DedupError):
    """A setting that is missing, malformed or out of range."""

    exit_code = 2


class StoreError(DedupError):
    """Redis is unreachable, refused the credentials or answered with an error."""

    exit_code = 3


class StoreUnavailableError(StoreError):
    """Redis dropped the connection, timed out, or is loading or read-only: worth a retry."""


class SettingsMismatchError(StoreError):
    """The store was written with signature settings that differ from ours."""


class NotFoundError(DedupError):
    """A document id the store does not hold."""

    exit_code = 4


class ReportTimeoutError(NotFoundError):
    """A report that did not appear within the time a caller waited for it."""

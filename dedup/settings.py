"""One frozen settings object, built once at the edge (CLI or worker start) and passed down.

Order of precedence, lowest first: the defaults below, a TOML file (``config/dedup.toml`` in
the working directory, or the file named by ``DEDUP_CONFIG`` or ``--config``), environment
variables ``DEDUP_<FIELD>``, then command-line flags. Nothing deeper in the library reads
the environment.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dedup.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config") / "dedup.toml"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dedup"


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told; signature fields are recorded in the store."""

    redis_url: str | None = None
    """Redis to use (``redis://``, ``rediss://``, ``unix://``); None starts the embedded one.
    It serves both the queue and the index, unless ``queue_url`` or ``index_url`` (from
    wherever they come) says otherwise."""
    queue_url: str | None = None
    """Redis of the RQ queue (jobs, failed jobs, workers) when it is not ``redis_url``'s: a
    standalone server (``redis://``, ``rediss://``, ``unix://``), since RQ does not run on a
    cluster."""
    index_url: str | None = None
    """Redis of the index when it is not ``redis_url``'s: also a Redis Cluster, named by
    ``redis+cluster://`` (``rediss+cluster://`` with TLS) and one or more seed nodes,
    ``redis+cluster://:password@host1:7000,host2:7000``."""
    data_dir: Path = field(default_factory=_default_data_dir)
    """Where the embedded Redis keeps its data, socket and log."""
    namespace: str = "dedup"
    """Prefix of every key this service writes, so one Redis can hold several indexes."""
    queue: str = "dedup"
    """Name of the RQ queue documents travel on."""

    num_perm: int = 256
    """MinHash permutations per signature (datasketch ``num_perm``). On the evaluation corpus
    98.6 % of reported similarities are within 0.05 of the measured Jaccard with 256, 95.0 %
    with 128 (docs/QUALITY.md)."""
    seed: int = 1
    """Seed of the MinHash permutations (datasketch ``seed``)."""
    shingle_words: int = 3
    """Words per shingle of the document signature."""
    short_document_words: int = 60
    """Documents of at most this many words take single words as the shingles of their
    signature instead of ``shingle_words``: in a text of a dozen words one edited word takes
    three of ten 3-word shingles with it, and two edits leave a copy under any useful
    threshold (docs/QUALITY.md, short texts). 0 gives every document ``shingle_words``, as an
    index built before the setting has them. Recorded in the store."""
    script_words: bool = True
    """Words by script (:mod:`dedup.pipeline.scripts`): combining marks stay in their word
    (Hindi, Arabic), and Thai, Lao, Khmer and Myanmar, written without spaces, are taken as
    pairs of letter clusters; text in other scripts keeps its words. Off, words are runs of
    word characters, as an index built before the setting has them. Recorded in the store."""
    paragraph_shingle_words: int = 1
    """Words per shingle of paragraph signatures: single words tolerate edited copies."""
    paragraph_num_perm: int = 128
    """MinHash permutations per paragraph signature. Paragraph signatures only serve the search
    for repeats inside one document and are not stored, so changing this needs no re-indexing.
    On the evaluation corpus 128 meets every target that 256 meets (docs/QUALITY.md)."""
    min_paragraph_words: int = 6
    """Paragraphs with fewer words get an exact fingerprint only, never a MinHash."""
    lsh_bands: int = 16
    """LSH bands per document signature: documents sharing one band are compared."""
    lsh_rows: int = 4
    """Signature values per band. With 16 bands of 4, a pair at Jaccard 0.7 is compared with
    probability 0.988, at 0.8 with 0.9998, at 0.3 with 0.12; each band costs an index entry
    per document, so fewer, shorter bands keep the index small (docs/BENCHMARKS.md)."""

    repeat_threshold: float = 0.6
    """Paragraph similarity from which a paragraph counts as repeated inside a document."""
    near_duplicate_threshold: float = 0.7
    """Document similarity from which two documents are near duplicates."""
    boilerplate_min_documents: int = 10
    """A paragraph found in this many documents is boilerplate."""
    near_paragraphs: bool = True
    """Find edited copies of paragraphs across documents (reports' ``near_paragraphs`` and
    ``shared_excerpts``, boilerplate by near copies). It keeps two index entries and 20
    bytes of record per signed paragraph: measured at 10,000 documents, 1,852 bytes of Redis
    per document instead of 1,091 (docs/BENCHMARKS.md); off, reports have no edited copies.
    Recorded in the store."""

    index_shards: int | None = None
    """Shards a new index is cut into, a power of two up to 4,096: each shard's keys share
    one hash slot of a Redis Cluster, and each round trip of a write calls every shard its
    entries fall in. Unset, 128 on a cluster (an even spread over up to about 16 masters,
    docs/SCALING.md) and 1 on one server, where shards spread nothing. Recorded in the
    store: an index keeps the shards it was built with (1,024 for one built before the
    setting), which a writer takes unless this is set (then they must agree)."""

    max_document_bytes: int = 10_000_000
    """Larger documents are rejected before any parsing."""
    max_paragraphs: int = 20_000
    """Documents with more paragraphs are rejected."""

    batch_size: int = 200
    """Documents packed into one job by bulk submission."""
    submit_delay: float = 0.05
    """Seconds a single submission (``Client.submit``, an API request of one document) waits
    for others to share its job, so that page-by-page submitters make bulk jobs; 0 queues each
    as a job of its own."""
    job_timeout: int = 600
    """Seconds a job may run before RQ stops it."""
    retries: int = 3
    """Times a failed job is tried again, with growing pauses."""
    retry_backoff: float = 5.0
    """Seconds before the first retry; each later pause is six times longer (0: at once)."""
    worker_class: str = "simple"
    """``simple`` (no fork per job, fast) or ``fork`` (a work horse per job, isolated)."""

    api_tokens: str = ""
    """Tokens ``dedup serve`` accepts, comma-separated, kept only as hashes: ``sha256:HEX``
    (read-write) or ``sha256:HEX:ro`` (read-only). ``dedup token new`` prints one."""
    review_text_days: int = 0
    """Days a worker keeps each indexed document's paragraphs (compressed) for the review
    pages of ``dedup serve``; 0 keeps none. The index itself holds no text, so this is the one
    setting that stores scraped words: about the compressed size of each document's text for
    as long as it says."""

    canonical_rule: str = "earliest"
    """Which copy of a duplicate shard is canonical (kept): ``earliest`` (earliest fetched,
    then earliest indexed), ``hosts`` (the first host of ``canonical_hosts``, then the
    earliest) or ``longest`` (the most words, then the earliest). Read-time: no re-indexing."""
    canonical_hosts: str = ""
    """Host priority list of the ``hosts`` rule, comma-separated, the publisher before the
    aggregators; a subdomain counts as its host."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("num_perm", "paragraph_num_perm"):
            if not 16 <= getattr(self, name) <= 1024:
                problems.append(f"{name} must be between 16 and 1024")
        for name in ("shingle_words", "paragraph_shingle_words"):
            if not 1 <= getattr(self, name) <= 10:
                problems.append(f"{name} must be between 1 and 10")
        if self.short_document_words < 0:
            problems.append("short_document_words must be 0 (none) or more")
        if self.min_paragraph_words < 1:
            problems.append("min_paragraph_words must be at least 1")
        if not 1 <= self.lsh_rows <= 8 or self.lsh_bands < 1:
            problems.append("lsh_rows must be between 1 and 8, lsh_bands at least 1")
        elif self.lsh_bands * self.lsh_rows > self.num_perm:
            problems.append("lsh_bands * lsh_rows must not exceed num_perm")
        elif (self.num_perm - self.lsh_bands * self.lsh_rows) % 2:
            # the values past the bands are stored 4 bits each, two to a byte
            problems.append("num_perm - lsh_bands * lsh_rows must be even")
        for name in ("repeat_threshold", "near_duplicate_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                problems.append(f"{name} must be in (0, 1], got {value}")
        shards = self.index_shards
        if shards is not None and (not 1 <= shards <= 4096 or shards & (shards - 1)):
            problems.append("index_shards must be a power of two from 1 to 4096")
        if self.boilerplate_min_documents < 2:
            problems.append("boilerplate_min_documents must be at least 2")
        if self.max_document_bytes < 1 or self.max_paragraphs < 1:
            problems.append("max_document_bytes and max_paragraphs must be positive")
        if self.review_text_days < 0:
            problems.append("review_text_days must be 0 (keep no text) or more")
        if self.retry_backoff < 0:
            problems.append("retry_backoff must not be negative")
        if not 0 <= self.submit_delay <= 60:
            problems.append("submit_delay must be between 0 and 60 seconds")
        if self.batch_size < 1 or self.job_timeout < 1 or self.retries < 0:
            problems.append("batch_size and job_timeout must be positive, retries not negative")
        if self.canonical_rule not in ("earliest", "hosts", "longest"):
            problems.append(
                f"canonical_rule must be earliest, hosts or longest, got {self.canonical_rule!r}"
            )
        if self.worker_class not in ("simple", "fork"):
            problems.append(f"worker_class must be 'simple' or 'fork', got {self.worker_class!r}")
        problems.extend(_token_problems(self.api_tokens))
        if not self.namespace or any(c in self.namespace for c in " \t\n{}"):
            problems.append("namespace must be non-empty, without spaces or braces")
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def effective_queue_url(self) -> str | None:
        """The URL of the queue's Redis: ``queue_url``, else ``redis_url``; None is the
        embedded server."""
        return self.queue_url or self.redis_url

    @property
    def effective_index_url(self) -> str | None:
        """The URL of the index's Redis: ``index_url``, else ``redis_url``; None is the
        embedded server."""
        return self.index_url or self.redis_url

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


_TOKEN_ENTRY = re.compile(r"sha256:[0-9a-f]{64}(:ro)?")


def _token_problems(entries: str) -> list[str]:
    """What is wrong with an ``api_tokens`` value (never the entries themselves: secrets may
    have been pasted in by mistake)."""
    bad = [
        position
        for position, entry in enumerate(entries.split(","), 1)
        if entry.strip() and not _TOKEN_ENTRY.fullmatch(entry.strip())
    ]
    if not bad:
        return []
    where = ", ".join(str(n) for n in bad)
    return [f"api_tokens entry {where} is not sha256:<64 hex digits> or sha256:<64 hex>:ro"]


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or say what is wrong."""
    kind = _FIELDS[name].type
    try:
        if kind == "Path":
            return Path(str(value)).expanduser()
        if kind == "str | None":
            return None if value in (None, "") else str(value)
        if kind in ("int", "int | None"):
            if kind == "int | None" and value in (None, ""):
                return None
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError
            return text in ("true", "1", "yes", "on")
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name} has an invalid value: {value!r}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    table = data.get("dedup", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [dedup] must be a table")
    unknown = sorted(set(table) - set(_FIELDS))
    if "index_groups" in unknown:
        raise ConfigError(f"config file {path}: index_groups is now called index_shards")
    if unknown:
        raise ConfigError(f"config file {path}: unknown settings {', '.join(unknown)}")
    return dict(table)


def load_settings(
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from defaults, a TOML file, the environment and flags."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config or (Path(env["DEDUP_CONFIG"]) if env.get("DEDUP_CONFIG") else None)
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        values.update(_read_toml(path))
    if "DEDUP_INDEX_GROUPS" in env:
        raise ConfigError("DEDUP_INDEX_GROUPS is now called DEDUP_INDEX_SHARDS")
    for name in _FIELDS:
        key = f"DEDUP_{name.upper()}"
        if key in env:
            values[name] = env[key]
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    return Settings(**{name: _coerce(name, value) for name, value in values.items()})

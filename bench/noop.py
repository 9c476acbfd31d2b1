"""A job that does nothing: RQ's own cost per job, the ceiling of one-document jobs.

It takes the same JSON payload as ``workers.jobs.analyse_documents`` so the queue moves the
same bytes; only the analysis and the index are missing.
"""

from __future__ import annotations

from typing import Any


def noop(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Return at once with a result of the same shape as the real job's."""
    return {"indexed": 0, "unchanged": 0, "documents": [p.get("id") for p in payloads]}

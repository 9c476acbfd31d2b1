"""Small statistics and the description of the machine a run was made on.

Every number the suite reports is a median of repeated measurements, and every speed target is
a ratio against a baseline timed in the same run, so the machine's load matters less.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dedup.pipeline import signature

REPO = Path(__file__).resolve().parent.parent


def median(values: Sequence[float]) -> float:
    """The median, 0.0 for no values."""
    return float(statistics.median(values)) if values else 0.0


def redis_cpu(info: dict[str, Any]) -> float:
    """CPU seconds a Redis server has spent (system and user), from ``INFO``."""
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99 and mean in milliseconds, with the sample count."""
    return {
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 3),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 3) if seconds else 0.0,
        "samples": len(seconds),
    }


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def machine(redis_version: str) -> dict[str, Any]:
    """Where and when the numbers were taken."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory": _memory_total(),
        "python": platform.python_version(),
        "redis": redis_version,
        "commit": _commit(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "signature_kernel": signature.KERNEL,
        "python_loop_ms": _python_loop_ms(),
    }


def _python_loop_ms() -> float:
    """A fixed pure-Python loop, best of three: tells a slow machine or day from a slow commit
    when runs on different days are compared."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def wait_until(condition: Any, timeout: float, interval: float = 0.01) -> None:
    """Poll ``condition()`` until it is true; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s")
        time.sleep(interval)


def numbers(what: str, least: int) -> Callable[[str], list[int]]:
    """An ``argparse`` type: comma-separated whole numbers (``_`` allowed), ``least`` or more."""

    def parse(text: str) -> list[int]:
        try:
            values = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be numbers: {text!r}") from None
        if not values or min(values) < least:
            raise argparse.ArgumentTypeError(f"{what} must be at least {least}")
        return values

    return parse


def names(what: str, allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """An ``argparse`` type: comma-separated names, each one of ``allowed``."""

    def parse(text: str) -> list[str]:
        chosen = [s.strip() for s in text.split(",") if s.strip()]
        unknown = sorted(set(chosen) - set(allowed))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; choose from {allowed}")
        return chosen

    return parse

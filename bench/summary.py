"""The results of a run as the tables and target verdicts docs/BENCHMARKS.md shows, and a plot.

Targets are checked against numbers of the same run: speeds as ratios to the baselines timed
beside them, memory and latency at the largest index size measured. A size that was not
measured is never reported as met; memory at 1M may be extrapolated, and says so.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

from bench.growth import LATENCIES

MILLION = 1_000_000


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "missed")


def memory_at_million(growth: dict[str, Any]) -> tuple[float, bool] | None:
    """Bytes per document at 1M: measured, or extrapolated from the two largest sizes."""
    rows = growth.get("sizes") or []
    for row in rows:
        if row["size"] >= MILLION:
            return float(row["bytes_per_doc"]), False
    if len(rows) < 2:
        return None
    a, b = rows[-2], rows[-1]
    marginal = (b["used_memory"] - a["used_memory"]) / max(1, b["documents"] - a["documents"])
    total = b["used_memory"] + marginal * (MILLION - b["documents"])
    return total / MILLION, True


def paired(configs: dict[str, Any], first: str, second: str) -> float:
    """Median over repetitions of ``first / second``, each pair timed back to back."""
    ratios = [
        a / b for a, b in zip(configs[first]["rates"], configs[second]["rates"], strict=True) if b
    ]
    return float(statistics.median(ratios)) if ratios else 0.0


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the project with the measured value, the ratio and the verdict."""
    rows: list[dict[str, Any]] = []
    configs = results.get("throughput", {}).get("configs", {})
    if configs:
        bulk2 = configs["bulk/2"]["rate"]
        rows.append(
            {
                "target": "bulk submission, 2 workers >= 2,000 docs/s",
                "value": f"{bulk2:,.1f} docs/s",
                "ratio": round(bulk2 / 2000, 3),
                "verdict": _verdict(bulk2 >= 2000),
            }
        )
        ds2 = configs["datasketch/2"]["rate"]
        speedup = paired(configs, "bulk/2", "datasketch/2")
        rows.append(
            {
                "target": "bulk, 2 workers >= 10x datasketch MinHashLSH on Redis (2 processes)",
                "value": f"{bulk2:,.1f} vs {ds2:,.1f} docs/s; paired runs {speedup:.2f}x",
                "ratio": round(speedup / 10, 3),
                "verdict": _verdict(speedup >= 10),
            }
        )
        for processes in (1, 2):
            single = configs[f"single/{processes}"]["rate"]
            noop = configs[f"noop/{processes}"]["rate"]
            share = paired(configs, f"single/{processes}", f"noop/{processes}")
            rows.append(
                {
                    "target": f"one document per job >= 80% of RQ no-op rate ({processes} worker"
                    + ("s)" if processes > 1 else ")"),
                    "value": f"{single:,.1f} vs {noop:,.1f} jobs/s; paired runs {share:.0%}",
                    "ratio": round(share / 0.8, 3),
                    "verdict": _verdict(share >= 0.8),
                }
            )
    growth = results.get("growth", {})
    memory = memory_at_million(growth)
    if memory is not None:
        value, extrapolated = memory
        rows.append(
            {
                "target": "<= 1,000 bytes of Redis memory per document at 1M documents",
                "value": f"{value:,.0f} bytes/doc" + (" (extrapolated)" if extrapolated else ""),
                "ratio": round(1000 / value, 3),
                "verdict": _verdict(value <= 1000) + (" (extrapolated)" if extrapolated else ""),
            }
        )
    sizes = [row for row in growth.get("sizes") or [] if "bulk2_rate" in row]
    largest = sizes[-1] if sizes else None
    if largest is not None and len(sizes) > 1:
        first = sizes[0]
        pairs = zip(largest["bulk2_rates"], first["bulk2_rates"], strict=False)
        drop = float(statistics.median([a / b for a, b in pairs if b]))
        at_million = largest["size"] >= MILLION
        rows.append(
            {
                "target": "throughput at 1M within 15% of 10k (bulk, 2 workers)",
                "value": f"{largest['bulk2_rate']:,.1f} at {largest['size']:,} vs "
                f"{first['bulk2_rate']:,.1f} docs/s at {first['size']:,}; "
                f"paired rounds {drop:.0%}",
                "ratio": round(drop / 0.85, 3),
                "verdict": _verdict(drop >= 0.85 if at_million else None)
                + ("" if at_million else f" at 1M ({drop:.0%} at {largest['size']:,})"),
            }
        )
    if largest is not None:
        p99 = largest["report_command"]["p99_ms"]
        inner = largest["report_in_process"]["p99_ms"]
        at_million = largest["size"] >= MILLION
        rows.append(
            {
                "target": "`dedup report` p99 < 10 ms at 1M",
                "value": f"command {p99:,.1f} ms, Store.report {inner:,.2f} ms "
                f"at {largest['size']:,}",
                "ratio": round(10 / p99, 3),
                "verdict": _verdict(p99 < 10 if at_million else None)
                + ("" if at_million else f" at 1M ({_verdict(p99 < 10)} at {largest['size']:,})"),
            }
        )
    return rows


def markdown(results: dict[str, Any]) -> str:
    """Tables of one run, ready to read or paste."""
    lines = ["# dedup benchmark run", ""]
    machine = results["machine"]
    lines += [f"- {k}: {v}" for k, v in machine.items()]
    lines += [f"- signature settings: {results.get('signature_settings')}", ""]
    lines += ["## Targets", "", "| target | measured | ratio | verdict |", "|---|---|---|---|"]
    lines += [
        f"| {t['target']} | {t['value']} | {t['ratio']} | {t['verdict']} |"
        for t in targets(results)
    ]
    configs = results.get("throughput", {}).get("configs", {})
    if configs:
        lines += ["", "## Throughput (median of runs, docs/s)", "", "| config | median | runs |"]
        lines += ["|---|---|---|"]
        lines += [f"| {k} | {v['rate']:,.1f} | {v['rates']} |" for k, v in configs.items()]
    for row in results.get("growth", {}).get("sizes", []):
        lines += ["", f"## Index of {row['size']:,} documents ({row['documents']:,} stored)", ""]
        if "bulk2_rate" not in row:
            lines += [f"- no timed rounds: {row.get('errors', 'not run yet')}"]
            continue
        lines += [
            f"- used_memory over empty: {row['used_memory']:,} bytes, "
            f"{row['bytes_per_doc']:,.0f} bytes/document",
            f"- Store.index alone: {row['store_index_rate']:,.1f} docs/s "
            f"{row['store_index_rates']}",
            f"- bulk, 2 workers: {row['bulk2_rate']:,.1f} docs/s {row['bulk2_rates']}",
        ]
        for name in LATENCIES:
            lat = row[name]
            lines.append(f"- {name}: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms")
        lines += ["", "| key family | keys | bytes/doc | bytes/key | encoding |"]
        lines += ["|---|---|---|---|---|"]
        for family, f in row["families"]["rows"].items():
            lines.append(
                f"| {family} | {f['keys']:,} | {f['bytes_per_doc']:,} | "
                f"{f['bytes_per_key']:,} | {f['encoding']} |"
            )
    layouts = results.get("layout", {})
    if layouts:
        lines += ["", f"## Store layouts, {layouts['documents']:,} documents", ""]
        lines += ["| layout | bytes/doc |", "|---|---|"]
        lines += [
            f"| {name} | {row['bytes_per_doc']:,.0f} |"
            for name, row in layouts.items()
            if isinstance(row, dict)
        ]
    for mode, prof in results.get("profile", {}).items():
        lines += ["", f"## Profile of one worker, {mode} ({prof['documents']} documents)", ""]
        if "redis_commands_per_doc" in prof:
            lines += [
                f"- Redis commands per document: {prof['redis_commands_per_doc']} "
                f"{prof['redis_commands']}",
                f"- Lua script, server time per call: {prof.get('lua_script_us_per_call', '-')} us",
                "",
            ]
        lines += ["| stage | share |", "|---|---|"]
        lines += [f"| {k} | {v['share']:.1%} |" for k, v in prof["stages"].items()]
        lines += ["", "| function (self time) | share |", "|---|---|"]
        lines += [f"| {k} | {v['share']:.1%} |" for k, v in prof["functions"].items()]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> bool:
    """Throughput and memory per document against index size; False without matplotlib."""
    rows = [row for row in results.get("growth", {}).get("sizes") or [] if "bulk2_rate" in row]
    if not rows:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sizes = [r["documents"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(sizes, [r["bulk2_rate"] for r in rows], "o-", label="end to end, bulk, 2 workers")
    left.plot(sizes, [r["store_index_rate"] for r in rows], "s-", label="Store.index alone")
    left.set(xscale="log", xlabel="documents in the index", ylabel="documents / s")
    left.set_title("Throughput")
    left.set_ylim(bottom=0)
    left.legend(fontsize=8, loc="center right")
    right.plot(sizes, [r["bytes_per_doc"] for r in rows], "o-", color="black", label="total")
    families = list(rows[-1]["families"]["rows"])[:5]
    for family in families:
        right.plot(
            sizes,
            [r["families"]["rows"].get(family, {}).get("bytes_per_doc", 0) for r in rows],
            ".--",
            label=family,
        )
    right.axhline(1000, color="red", linewidth=0.8, label="target at 1M")
    right.set(xscale="log", xlabel="documents in the index", ylabel="bytes / document")
    right.set_title("Redis memory per document")
    right.set_ylim(bottom=0)
    right.legend(fontsize=7, loc="upper right", bbox_to_anchor=(1.0, 0.9))
    machine = results["machine"]
    version = re.search(r"v=(\S+)", machine["redis"])
    perms = results.get("signature_settings", {}).get("num_perm", "?")
    fig.suptitle(
        f"dedup, num_perm {perms}, on {machine['nproc']} cores, Redis "
        f"{version.group(1) if version else machine['redis']}, {machine['date']}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

"""The demo behind `make demo`: queue the bundled examples, run a worker, print the reports.

With DEDUP_REDIS_URL unset it runs on the embedded Redis in .dedup/demo (started here,
stopped at the end, data kept); with it set, on that server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCUMENTS = [
    ("seed", HERE / "000_25903e5ddf5549c1.txt"),
    ("seed-copy", HERE / "seed-copy-one-paragraph-dropped.html"),
    ("library", HERE / "unrelated-library.txt"),
    ("ferry-site-a", HERE / "wire-story-site-a.html"),
    ("ferry-site-b", HERE / "wire-story-site-b.html"),
]


def dedup(*args: str) -> None:
    """Run the dedup command as a user would; stop the demo if it fails."""
    print(f"\n$ dedup {' '.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "dedup", *args], check=False)
    if result.returncode != 0:
        sys.exit(f"demo: 'dedup {' '.join(args)}' failed with exit code {result.returncode}")


def main() -> None:
    """Submit, work, report."""
    embedded = not os.environ.get("DEDUP_REDIS_URL")
    if embedded:
        os.environ.setdefault("DEDUP_DATA_DIR", str(HERE.parent / ".dedup" / "demo"))
        print(f"embedded Redis, data in {os.environ['DEDUP_DATA_DIR']}")
    os.environ.setdefault("DEDUP_NAMESPACE", "demo")
    os.environ.setdefault("DEDUP_REVIEW_TEXT_DAYS", "14")  # `dedup serve` pages show the words
    try:
        for doc_id, path in DOCUMENTS:
            dedup("submit", str(path), "--id", doc_id)
        dedup("submit", "--jsonl", str(HERE / "feed.jsonl"))
        dedup("worker", "--burst")
        dedup(
            "report", *[doc_id for doc_id, _ in DOCUMENTS], "feed-weather", "feed-weather-rescrape"
        )
        dedup("list", "--flag", "near_duplicate")
        dedup("stats")
    finally:
        if embedded:
            dedup("server", "stop")
    print("\nThe seed's body appears twice (doubled_body); its copy and the two ferry stories are")
    print("near duplicates; the library article matches nothing.")


if __name__ == "__main__":
    main()

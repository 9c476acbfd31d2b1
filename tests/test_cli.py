"""The dedup command, through click's runner and as a real subprocess with real workers."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dedup.cli.main import cli
from dedup.settings import Settings
from tests.conftest import EXAMPLES, SEED
from tests.helpers import article, as_html, command, invoke


def test_check_seed_no_store() -> None:
    """The contract example: the seed is a doubled body, half of it repeated."""
    result = CliRunner().invoke(cli, ["check", str(SEED), "--json", "--no-store"])
    assert 0 == result.exit_code, result.output
    report = json.loads(result.output)
    assert ["doubled_body", "internal_repeat"] == report["flags"]
    assert [{"first": [0, 12], "repeat": [13, 25], "similarity": 1.0}] == report["internal_repeats"]
    assert 0.5 == report["duplicate_fraction"]
    assert 26 == report["paragraphs"]
    assert "000_25903e5ddf5549c1" == report["doc_id"]


def test_check_human_output_quotes_the_repeat() -> None:
    """People see the repeated run and how it begins."""
    result = CliRunner().invoke(cli, ["check", str(SEED), "--no-store", "--id", "seed"])
    assert 0 == result.exit_code
    assert "0-12" in result.output and "13-25" in result.output
    assert "NATO Secretary General" in result.output


def test_submit_work_report_end_to_end(settings: Settings, tmp_path: Path) -> None:
    """Seed, a copy with a dropped paragraph and an unrelated article, through real workers."""
    for doc_id, path in (
        ("seed", SEED),
        ("copy", EXAMPLES / "seed-copy-one-paragraph-dropped.html"),
        ("library", EXAMPLES / "unrelated-library.txt"),
    ):
        result = command(settings, "submit", str(path), "--id", doc_id)
        assert 0 == result.returncode, result.stderr
    result = command(settings, "worker", "--burst")
    assert 0 == result.returncode, result.stderr
    result = command(settings, "report", "seed", "copy", "library", "--json")
    assert 0 == result.returncode, result.stderr
    reports = {r["doc_id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert ["seed"] == [m["doc_id"] for m in reports["copy"]["near_duplicates"]]
    assert ["copy"] == [m["doc_id"] for m in reports["seed"]["near_duplicates"]]
    assert [] == reports["library"]["near_duplicates"]
    assert [] == reports["library"]["flags"]
    assert {"doubled_body", "internal_repeat", "near_duplicate"} == set(reports["seed"]["flags"])
    listed = command(settings, "list", "--flag", "near_duplicate", "--json")
    assert {"seed", "copy"} == {json.loads(line)["doc_id"] for line in listed.stdout.splitlines()}
    stats = json.loads(command(settings, "stats", "--json").stdout)
    assert (3, 0, 0) == (stats["documents"], stats["queued"], stats["failed"])


def test_submit_jsonl_from_stdin_and_bulk_jobs(settings: Settings) -> None:
    """JSON lines on stdin are packed into bulk jobs and all indexed."""
    lines = [json.dumps({"id": f"d{n}", "html": as_html(article(100 + n, 4))}) for n in range(25)]
    result = invoke(
        settings, "submit", "--jsonl", "-", "--batch-size", "10", "--json", stdin="\n".join(lines)
    )
    assert 0 == result.exit_code, result.output
    assert {"documents": 25, "rejected": []} == {
        k: v for k, v in json.loads(result.output).items() if k != "jobs"
    }
    assert 3 == len(json.loads(result.output)["jobs"])
    assert 0 == command(settings, "worker", "--burst").returncode
    assert 25 == json.loads(command(settings, "stats", "--json").stdout)["documents"]


def test_report_of_later_arrival(settings: Settings, tmp_path: Path) -> None:
    """A report read later lists a duplicate that arrived after it was written."""
    body = article(200)
    (tmp_path / "first.html").write_text(as_html(body))
    (tmp_path / "second.html").write_text(as_html([f"  {p.upper()} " for p in body]))
    assert 0 == invoke(settings, "check", str(tmp_path / "first.html"), "--json").exit_code
    assert 0 == invoke(settings, "check", str(tmp_path / "second.html"), "--json").exit_code
    first = json.loads(invoke(settings, "report", "first", "--json").output)
    assert ["second"] == first["exact_duplicates"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n\n  ", "empty"),
        (b"\xff\xfe\xfa not utf-8", "not valid UTF-8"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "binary"),
        (b"<div><script>x()</script></div>", "no text"),
    ],
)
def test_bad_documents_get_one_line(
    settings: Settings, tmp_path: Path, content: bytes, message: str
) -> None:
    """Bad input: one error line, non-zero exit, no traceback."""
    path = tmp_path / "bad.html"
    path.write_bytes(content)
    result = command(settings, "check", str(path), "--no-store")
    assert 0 != result.returncode
    assert 1 == len(result.stderr.strip().splitlines()), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_too_large_and_missing_files(settings: Settings, tmp_path: Path) -> None:
    """A 50 MB document and a missing file are refused before any work."""
    big = tmp_path / "big.html"
    big.write_bytes(b"<p>" + b"word " * 10_000_000 + b"</p>")
    result = command(settings, "submit", str(big), str(tmp_path / "missing.txt"))
    assert 2 == result.returncode
    assert "over the limit" in result.stderr and "no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_deeply_nested_html(settings: Settings, tmp_path: Path) -> None:
    """HTML nested 100,000 levels deep is analysed or refused, never a crash."""
    path = tmp_path / "deep.html"
    path.write_text("<div>" * 100_000 + "some words in the middle of it all" + "</div>" * 100_000)
    result = command(settings, "check", str(path), "--no-store", "--json")
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 2)


def test_unreachable_redis(tmp_path: Path) -> None:
    """No Redis at the URL: one line naming it (without the password), exit 3."""
    settings = Settings(redis_url="redis://user:secret@127.0.0.1:1/0")
    result = command(settings, "submit", str(SEED))
    assert 3 == result.returncode
    assert "cannot reach Redis at redis://user:***@127.0.0.1:1/0" in result.stderr
    assert "secret" not in result.stderr
    assert 1 == len(result.stderr.strip().splitlines())


def test_failed_job_keeps_the_reason(settings: Settings) -> None:
    """A queued document the worker rejects ends as a failed job with the reason, others indexed."""
    from rq.registry import FailedJobRegistry

    from dedup.client import Client

    client = Client(settings)
    client.submit_many(
        [{"id": "good", "html": as_html(article(300))}, {"id": "empty", "html": "<p>.</p>"}]
    )
    assert 0 == command(settings, "worker", "--burst").returncode
    registry = FailedJobRegistry(queue=client.queue)
    [job_id] = registry.get_job_ids()
    job = client.queue.fetch_job(job_id)
    assert job is not None
    assert "empty: document empty has no text" in str(job.latest_result().exc_string)
    assert client.store.exists("good")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("submit", ["--jsonl", "--url", "--id"]),
        ("worker", ["--burst"]),
        ("check", ["--url", "--id", "--json", "--no-store"]),
        ("report", ["--json"]),
        ("list", ["--flag", "--json", "--limit"]),
        ("stats", ["--json"]),
    ],
)
def test_contract_commands_take_their_options(name: str, options: list[str]) -> None:
    """Each command of the contract runs and takes the options other tools rely on."""
    result = CliRunner().invoke(cli, [name, "--help"])
    assert 0 == result.exit_code, result.output
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    declared = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert set(options) <= declared


def test_version_says_which_minhash_arithmetic_runs() -> None:
    """Users can tell whether the compiled kernel was built."""
    from dedup.pipeline import signature

    result = CliRunner().invoke(cli, ["--version"])
    wanted = {"compiled": "compiled kernel", "numpy": "numpy"}[signature.KERNEL]
    assert 0 == result.exit_code
    assert f"(MinHash arithmetic: {wanted})" in result.output

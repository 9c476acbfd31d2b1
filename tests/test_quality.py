"""Detection quality: the evaluation on a small synthetic corpus, through real workers and Redis.

The numbers of the full evaluation on real pages are in docs/QUALITY.md; here the same
pipeline runs on articles made by tests/quality_corpus.py, and the targets must hold.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from click.testing import CliRunner
from rich.console import Console

from dedup.cli.main import cli
from dedup.evaluation import cases, corpus, edits, evaluate, extraction, output
from dedup.evaluation import groups as duplicate_groups
from dedup.evaluation.runner import GroupRun
from dedup.report import Group, Report
from dedup.settings import Settings
from tests import quality_corpus


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic corpus, written once."""
    return quality_corpus.write(tmp_path_factory.mktemp("quality"))


@pytest.fixture(scope="module")
def result(corpus_dir: Path, redis_url: str) -> dict[str, Any]:
    """One evaluation of the synthetic corpus against the test Redis."""
    client = redis.Redis.from_url(redis_url)
    before = set(client.keys("*"))
    outcome = evaluate(corpus_dir, Settings(redis_url=redis_url), seed=3)
    left = set(client.keys("*")) - before - {b"rq:clean_groups"}  # RQ's own lock, expiring
    outcome["keys_left"] = sorted(k.decode() for k in left)
    client.close()
    return outcome


def target(result: dict[str, Any], name: str) -> Any:
    """The value of the target whose name starts with ``name``."""
    return next(t["value"] for t in result["targets"] if t["target"].startswith(name))


@pytest.mark.slow
def test_doubled_bodies_are_all_found_and_clean_ones_never(result: dict[str, Any]) -> None:
    """Every doubled variant is a doubled_body; no clean body or page is."""
    assert 1.0 == target(result, "doubled_body recall")
    assert 0 == target(result, "clean bodies and pages flagged")
    rows = {r["kind"]: r for r in result["internal"]["rows"]}
    assert {"doubled_exact", "doubled_debris", "doubled_edited", "tripled", "doubled_page"} <= set(
        rows
    )
    assert rows["doubled_page"]["recall"] == 1.0


@pytest.mark.slow
def test_partial_repeats_are_internal_repeats_only(result: dict[str, Any]) -> None:
    """Repeated closing paragraphs: internal_repeat with the exact span, never doubled_body."""
    rows = {r["kind"]: r for r in result["internal"]["rows"]}
    partial = rows["partial_repeat"]
    assert partial["documents"] >= 10
    assert (1.0, 0) == (partial["recall"], partial["doubled_body"])
    assert partial["documents"] == partial["span_exact"]


@pytest.mark.slow
def test_near_duplicates_found_and_unrelated_never(result: dict[str, Any]) -> None:
    """Copies at Jaccard >= 0.8 are found, similarities are close, unrelated pairs stay apart."""
    near = result["near"]
    assert near["high"] >= 100
    assert target(result, "near duplicates at Jaccard") >= 0.98
    assert 0 == near["unrelated"]["flagged"]
    assert near["unrelated"]["pairs"] > 5_000
    assert target(result, "flagged pairs within 0.05 of measured") >= 0.95
    kinds = {r["kind"]: r for r in near["rows"]}
    for kind in ("page", "transplant", "capture", "reorder", "edited"):
        assert 1.0 == kinds[kind]["recall"], kind


@pytest.mark.slow
def test_boilerplate_is_reported_and_never_a_match(result: dict[str, Any]) -> None:
    """The inserted blurb is boilerplate in every article carrying it; no pair is made of it."""
    boilerplate = result["boilerplate"]
    assert boilerplate["inserted"] >= 10
    assert (1.0, 1.0) == (boilerplate["recall"], boilerplate["precision"])
    assert 0 == boilerplate["unrelated"]["flagged"]


@pytest.mark.slow
def test_edited_excerpts_are_found_with_their_source(result: dict[str, Any]) -> None:
    """With near_paragraphs on in its namespace, every edited paragraph of an excerpt lists its
    source paragraph, no paragraph lists one of another story, and the copyright line whose
    year varies is boilerplate wherever it is."""
    excerpt = result["excerpt"]
    assert excerpt["excerpts"] >= 10
    assert excerpt["high"] >= 20
    assert 2 <= excerpt["paragraphs"] / excerpt["excerpts"] <= 4
    assert target(result, "excerpts: source found at paragraph Jaccard") >= 0.95
    assert excerpt["excerpts"] == excerpt["excerpts_found"]
    assert excerpt["links"] > excerpt["paragraphs"]
    assert 0 == target(result, "excerpts: paragraphs linked to one not alike")
    assert excerpt["template_lines"] >= 10
    assert 1.0 == target(result, "excerpts: varying template line boilerplate")
    assert 0 == excerpt["other_boilerplate"]
    assert {"near_paragraphs": True} == result["run"]["excerpt_settings"]
    configured = Settings().near_paragraphs
    assert configured == result["run"]["settings"]["near_paragraphs"], "other groups: configured"


def test_excerpt_cases_hold_edited_paragraphs_of_another_story(corpus_dir: Path) -> None:
    """An excerpt case is another story's body with two to four paragraphs of its own story
    inside, each with a word or two changed; origins say where every paragraph comes from."""
    articles = corpus.load(corpus_dir)
    built = cases.build(articles, [1.0] * len(articles), 1, 10)
    excerpts = [c for c in built.cases if c.kind == "excerpt"]
    assert len(excerpts) == len(articles)
    for case in excerpts:
        source = articles[case.article].paragraphs
        assert 2 <= len(case.copied) <= 4
        assert len(case.origins) == len(case.content)
        for position in case.copied:
            story, number = case.origins[position]
            assert story == case.story
            original, copy = source[number].split(), case.content[position].split()
            assert 1 <= sum(a != b for a, b in zip(original, copy, strict=False)) <= 2
        hosts = {s for s, _ in case.origins if s not in (case.story, cases.TEMPLATE)}
        assert 1 == len(hosts)
    lines = [c for c in built.cases if c.group == cases.EXCERPT and c.inserted_at is not None]
    assert len({c.content[c.inserted_at] for c in lines}) > 1, "the year varies"


@pytest.mark.slow
def test_whole_pages_keep_the_article_and_drop_the_template(result: dict[str, Any]) -> None:
    """Every body paragraph of every page is kept; almost no template is."""
    pages = result["extraction"]
    assert pages["judged_pages"] == pages["pages"] == 17
    assert pages["body_kept"] == pages["body_paragraphs"]
    assert pages["template_kept"] <= pages["pages"]  # a headline at most
    assert pages["template_kept_without_selection"] > 20 * pages["pages"]


@pytest.mark.slow
def test_every_whole_page_gets_a_report(result: dict[str, Any]) -> None:
    """No captured page is refused, those of the site that wraps its body in a form included."""
    assert {"pages": 17, "rejected": 0, "ids": []} == result["internal"]["pages_rejected"]
    assert 0 == target(result, "whole pages rejected")
    console = Console(width=120, record=True)
    console.print(output.tables(result))
    text = console.export_text()
    assert re.search(r"whole pages rejected \(no report\) +│ 0 +│ == 0 +│ met", text)
    assert re.search(r"whole pages rejected \(no report\) +│ +0 of 17", text)


@pytest.mark.slow
def test_short_texts_structured_pages_and_other_scripts_are_measured(
    result: dict[str, Any],
) -> None:
    """The groups beyond English news: short copies found, unrelated short texts apart,
    structured pages of every kind left unflagged, each language's copies found."""
    assert target(result, "short near copies") >= 0.95
    assert 0 == result["short"]["unrelated"]["flagged"]
    kinds = {row["kind"]: row for row in result["structured"]["rows"]}
    assert {"product_grid", "menu", "schedule", "questionnaire", "listing"} <= set(kinds)
    assert result["structured"]["pages"] >= 20
    assert all(0 == row["doubled_body"] for row in kinds.values())
    assert all(row["pasted_twice"] == row["pasted_twice_found"] for row in kinds.values())
    languages = {row["language"]: row for row in result["languages"]["rows"]}
    assert {"zh", "ja", "th", "ar", "ru", "hi", "lo", "km", "my"} <= set(languages)
    assert all(1.0 == row["doubled_recall"] for row in languages.values())
    assert all(row["near_recall"] >= 0.95 for row in languages.values())


@pytest.mark.slow
def test_every_target_is_met_and_nothing_is_left_behind(result: dict[str, Any]) -> None:
    """All targets hold on the synthetic corpus; the evaluation's keys and jobs are deleted."""
    assert [] == [t["target"] for t in result["targets"] if not t["met"]]
    assert {} == result["rejected"]
    assert [] == result["keys_left"]


@pytest.mark.slow
def test_command_json_and_plot(corpus_dir: Path, settings: Settings, tmp_path: Path) -> None:
    """``dedup eval --json --plot`` prints one JSON object and writes the PNG."""
    plot = tmp_path / "curve.png"
    args = ["--redis-url", str(settings.redis_url), "eval", str(corpus_dir), "--limit", "5"]
    outcome = CliRunner().invoke(cli, [*args, "--json", "--plot", str(plot)])
    assert 0 == outcome.exit_code, outcome.output
    data = json.loads(outcome.output)
    assert 5 == data["run"]["articles"]
    assert {"targets", "internal", "near", "boilerplate", "extraction"} <= set(data)
    assert {"pages": 5, "rejected": 0, "ids": []} == data["internal"]["pages_rejected"]
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_command_refuses_a_folder_without_manifest(tmp_path: Path) -> None:
    """A folder that is not a corpus: one error line, exit code 2."""
    outcome = CliRunner().invoke(cli, ["eval", str(tmp_path)])
    assert 2 == outcome.exit_code
    assert "no manifest.csv" in outcome.output


def test_cases_are_the_same_for_the_same_seed(corpus_dir: Path) -> None:
    """A fixed seed gives the same documents; another seed other edits."""
    articles = corpus.load(corpus_dir, 6)
    coverage = [1.0] * len(articles)

    def bodies(seed: int) -> list[str]:
        return [c.body for c in cases.build(articles, coverage, seed, 10).cases]

    assert bodies(1) == bodies(1)
    assert bodies(1) != bodies(2)


def test_case_kinds_carry_what_they_claim(corpus_dir: Path) -> None:
    """Doubled cases hold the body twice, partial repeats under a third of it again."""
    articles = corpus.load(corpus_dir, 4)
    built = cases.build(articles, [1.0] * len(articles), 1, 10)
    by_id = {c.doc_id: c for c in built.cases}
    body = edits.as_html(articles[0].paragraphs)
    assert by_id["doubled_exact.0"].body == body + "\n" + body
    assert 3 == by_id["tripled.0"].body.count(articles[0].paragraphs[0])
    partial = by_id["partial_repeat.0"]
    assert 1 <= partial.repeated <= 3
    near = [c for c in built.cases if c.group == cases.NEAR and c.article == 0]
    assert len(near) <= 9  # under boilerplate_min_documents: the body never becomes boilerplate


def test_substitute_changes_the_share_of_words_asked() -> None:
    """Substitution replaces that share of words, counting each ideograph as a word."""
    rng = random.Random(1)
    text = ["one two three four five six seven eight nine ten"] * 2
    changed = edits.substitute(text, 0.25, rng, ["X"])
    assert 5 == sum(p.split().count("X") for p in changed)
    chinese = edits.substitute(["今天天气很好我们去公园"], 0.5, rng, ["X"])
    assert 5 == chinese[0].count("X") or 6 == chinese[0].count("X")


def test_page_stats_count_body_and_template(corpus_dir: Path) -> None:
    """A synthetic page keeps its body with selection, and is mostly template without it."""
    [first] = corpus.load(corpus_dir, 1)
    stats = extraction.page_stats(first)
    assert 1.0 == stats.coverage
    assert stats.kept == stats.body_paragraphs
    assert stats.similarity > 0.9 > stats.similarity_without


@pytest.mark.slow
def test_groups_hold_each_story_with_its_original_kept(result: dict[str, Any]) -> None:
    """The near cases grouped as ``dedup groups`` groups them: every story's copies in the
    group of its original, the original canonical, no group of two stories."""
    grouped = result["groups"]
    assert grouped["stories"] >= 10
    assert grouped["copies"] > grouped["stories"]
    assert grouped["groups"] >= grouped["stories"]
    assert 1.0 == target(result, "groups: a story's copies at Jaccard")
    assert 1.0 == target(result, "groups: canonical is the story's original")
    assert 0 == target(result, "groups mixing two stories")
    assert ([], [], []) == (grouped["split"], grouped["wrong_canonical"], grouped["mixed_examples"])


def test_group_scores_count_split_stories_wrong_canonicals_and_mixed_groups() -> None:
    """A story split over two groups, one kept by a copy and one mixed with another story:
    each counted once, from what the cases say."""
    body = [" ".join(f"word{n}" for n in range(40))]
    edited = [body[0].replace("word39", "other")]

    def near(doc_id: str, kind: str, article: int, story: int, text: list[str]) -> cases.Case:
        return cases.Case(doc_id, cases.NEAR, kind, article, story, "", text)

    built = [
        near("original.0", "original", 0, 0, body),
        near("edited.0", "edited", 0, 0, edited),
        near("original.1", "original", 1, 1, body),
        near("page.1", "page", 1, 1, body),
        near("original.2", "original", 2, 2, body),
        near("page.2", "page", 2, 2, body),
        near("reorder.2", "reorder", 2, 2, body),
        near("original.3", "original", 3, 3, [" ".join(f"x{n}" for n in range(40))]),
    ]

    def group(canonical: str, *others: str) -> Group:
        members = [{"doc_id": d, "similarity": 1.0} for d in (canonical, *others)]
        return {"group": f"g-{canonical}", "canonical": canonical, "members": members}

    run = GroupRun(
        reports={c.doc_id: cast("Report", {}) for c in built},
        groups=[
            group("original.0", "edited.0"),
            group("page.1", "original.1"),
            group("original.2", "page.2", "original.3"),
        ],
    )
    scored = duplicate_groups.score(built, run, 0.8)
    assert (3, 4) == (scored["stories"], scored["copies"])
    assert (2, 1, 1) == (scored["together"], scored["canonical_right"], scored["mixed"])
    assert [{"original": "original.1", "canonical": "page.1"}] == scored["wrong_canonical"]
    assert [{"original": "original.2", "copies": 2, "outside": ["reorder.2"]}] == scored["split"]

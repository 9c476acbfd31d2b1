"""Settings: defaults, the TOML file, the environment and flags, in that order."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from dedup.errors import ConfigError
from dedup.settings import Settings, load_settings

CONFIG = Path(__file__).resolve().parent.parent / "config" / "dedup.toml"


def test_shipped_config_matches_the_defaults() -> None:
    """config/dedup.toml documents exactly the defaults of the code."""
    table = tomllib.loads(CONFIG.read_text())["dedup"]
    defaults = Settings()
    assert {k: getattr(defaults, k) for k in table} == table
    skipped = {"redis_url", "queue_url", "index_url", "data_dir", "index_shards"}  # None
    assert {f.name for f in dataclasses.fields(Settings)} - skipped == set(table)


def test_precedence(tmp_path: Path) -> None:
    """Flags win over the environment, which wins over the file."""
    config = tmp_path / "d.toml"
    config.write_text('[dedup]\nnamespace = "file"\nnum_perm = 128\nbatch_size = 7\n')
    env = {"DEDUP_NAMESPACE": "env", "DEDUP_NUM_PERM": "64"}
    settings = load_settings(config, env=env, overrides={"namespace": "flag"})
    assert ("flag", 64, 7) == (settings.namespace, settings.num_perm, settings.batch_size)


def test_unknown_and_invalid_settings_are_refused(tmp_path: Path) -> None:
    """Typos and bad values give one clear message."""
    config = tmp_path / "d.toml"
    config.write_text("[dedup]\nnum_perms = 64\n")
    with pytest.raises(ConfigError, match="unknown settings num_perms"):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match="num_perm"):
        load_settings(None, env={"DEDUP_NUM_PERM": "many"})
    with pytest.raises(ConfigError, match="near_duplicate_threshold"):
        Settings(near_duplicate_threshold=1.5)


def test_the_old_name_of_index_shards_is_refused_with_the_new_one(tmp_path: Path) -> None:
    """``index_groups`` (file) and ``DEDUP_INDEX_GROUPS`` (environment) name the new setting."""
    old = tmp_path / "old.toml"
    old.write_text("[dedup]\nindex_groups = 128\n")
    with pytest.raises(ConfigError, match="index_groups is now called index_shards"):
        load_settings(old, env={})
    with pytest.raises(ConfigError, match="now called DEDUP_INDEX_SHARDS"):
        load_settings(None, env={"DEDUP_INDEX_GROUPS": "128"})
    assert 128 == load_settings(None, env={"DEDUP_INDEX_SHARDS": "128"}).index_shards


def test_redis_url_from_environment() -> None:
    """DEDUP_REDIS_URL selects a server; empty means the embedded one."""
    assert (
        "redis://h:1/2" == load_settings(None, env={"DEDUP_REDIS_URL": "redis://h:1/2"}).redis_url
    )
    assert load_settings(None, env={"DEDUP_REDIS_URL": ""}).redis_url is None


def test_queue_and_index_urls_default_to_redis_url(tmp_path: Path) -> None:
    """DEDUP_QUEUE_URL and DEDUP_INDEX_URL each fall back to DEDUP_REDIS_URL; none of the
    three is the embedded server for both."""
    none = load_settings(None, env={})
    assert (None, None) == (none.effective_queue_url, none.effective_index_url)
    shared = load_settings(None, env={"DEDUP_REDIS_URL": "redis://r:1/0"})
    assert ("redis://r:1/0", "redis://r:1/0") == (
        shared.effective_queue_url,
        shared.effective_index_url,
    )
    env = {"DEDUP_REDIS_URL": "redis://r:1/0", "DEDUP_INDEX_URL": "redis+cluster://c1,c2"}
    split = load_settings(None, env=env)
    assert ("redis://r:1/0", "redis+cluster://c1,c2") == (
        split.effective_queue_url,
        split.effective_index_url,
    )
    queue_only = load_settings(None, env={"DEDUP_QUEUE_URL": "redis://q:1/0"})
    assert ("redis://q:1/0", None) == (
        queue_only.effective_queue_url,
        queue_only.effective_index_url,
    )
    assert load_settings(None, env={"DEDUP_QUEUE_URL": ""}).queue_url is None


def test_queue_and_index_url_precedence(tmp_path: Path) -> None:
    """File, then environment, then flags, for each of the three; the specific settings win
    over redis_url wherever they come from."""
    config = tmp_path / "d.toml"
    config.write_text(
        '[dedup]\nredis_url = "redis://file:1/0"\nqueue_url = "redis://file-q:1/0"\n'
        'index_url = "redis://file-i:1/0"\n'
    )
    from_file = load_settings(config, env={})
    assert ("redis://file-q:1/0", "redis://file-i:1/0") == (
        from_file.effective_queue_url,
        from_file.effective_index_url,
    )
    env = {"DEDUP_QUEUE_URL": "redis://env-q:1/0"}
    from_env = load_settings(config, env=env)
    assert ("redis://env-q:1/0", "redis://file-i:1/0") == (
        from_env.effective_queue_url,
        from_env.effective_index_url,
    )
    flags = {"index_url": "redis+cluster://flag:7000", "redis_url": "redis://flag:1/0"}
    from_flags = load_settings(config, env=env, overrides=flags)
    assert "redis://flag:1/0" == from_flags.redis_url
    assert ("redis://env-q:1/0", "redis+cluster://flag:7000") == (
        from_flags.effective_queue_url,
        from_flags.effective_index_url,
    )


def test_url_flags_reach_the_settings(tmp_path: Path) -> None:
    """--queue-url and --index-url are global options of the command, like --redis-url."""
    from click.testing import CliRunner

    from dedup.cli.main import cli

    seen: list[Settings] = []
    cli.add_command(_capture(seen), "capture-settings")
    try:
        args = ["--queue-url", "redis://q:1/0", "--index-url", "redis+cluster://i:7000"]
        result = CliRunner().invoke(cli, [*args, "capture-settings"], env={"DEDUP_CONFIG": ""})
    finally:
        cli.commands.pop("capture-settings")
    assert 0 == result.exit_code, result.output
    assert ("redis://q:1/0", "redis+cluster://i:7000") == (seen[0].queue_url, seen[0].index_url)


def _capture(seen: list[Settings]) -> Any:
    import click

    from dedup.cli.context import pass_settings

    @click.command()
    @pass_settings
    def capture(settings: Settings) -> None:
        seen.append(settings)

    return capture

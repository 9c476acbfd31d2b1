"""Settings: defaults, the TOML file, the environment and flags, in that order."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from dedup.errors import ConfigError
from dedup.settings import Settings, load_settings

CONFIG = Path(__file__).resolve().parent.parent / "config" / "dedup.toml"


def test_shipped_config_matches_the_defaults() -> None:
    """config/dedup.toml documents exactly the defaults of the code."""
    table = tomllib.loads(CONFIG.read_text())["dedup"]
    defaults = Settings()
    assert {k: getattr(defaults, k) for k in table} == table
    skipped = {"redis_url", "data_dir"}
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


def test_redis_url_from_environment() -> None:
    """DEDUP_REDIS_URL selects a server; empty means the embedded one."""
    assert (
        "redis://h:1/2" == load_settings(None, env={"DEDUP_REDIS_URL": "redis://h:1/2"}).redis_url
    )
    assert load_settings(None, env={"DEDUP_REDIS_URL": ""}).redis_url is None

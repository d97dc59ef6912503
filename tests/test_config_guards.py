"""Config guards of #18: alias bombs refused fast, empty configs refused with nothing created,
and a warning when a file holding literal secrets is readable by others."""

from __future__ import annotations

import logging
import time
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopcrm.cli.main import app
from shopcrm.config.load import load_config
from shopcrm.errors import EXIT_USAGE, ConfigError

pytestmark = pytest.mark.usefixtures("restore_root_logger")


def bomb(path: Path, levels: int) -> Path:
    """A "billion laughs" file: each level lists the one below nine times."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("levels", [8, 9])
def test_an_alias_bomb_is_refused_within_a_second_and_50_mb(tmp_path: Path, levels: int) -> None:
    file = bomb(tmp_path / "bomb.yaml", levels)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match=r"aliases expand to more than 10000 values"):
            load_config(file, env={})
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 50 * 1024 * 1024


def test_the_refusal_names_the_file_and_line(tmp_path: Path) -> None:
    file = bomb(tmp_path / "bomb.yaml", 8)
    with pytest.raises(ConfigError) as caught:
        load_config(file, env={})
    assert str(caught.value).startswith(f"{file} at line ")


def test_an_ordinary_anchor_and_alias_still_work(tmp_path: Path) -> None:
    file = tmp_path / "shopcrm.yaml"
    file.write_text(
        "x-pos: &pos {platform: csv, currency: EUR, path: pos.csv}\n"
        "shops:\n"
        "  - {<<: *pos, name: north}\n"
        "  - {<<: *pos, name: south, currency: USD}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="x-pos: unknown key"):
        load_config(file, env={})  # unknown top-level keys stay refused, aliases or not
    file.write_text(
        "segments: &rules [{name: big, rule: orders_count > 3}]\n"
        "shops:\n"
        "  - {name: north, platform: csv, currency: EUR, path: pos.csv, segments: *rules}\n",
        encoding="utf-8",
    )
    config = load_config(file, env={})
    assert [r.name for r in config.shops[0].segments] == ["big"]


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "loop.yaml"
    file.write_text("shops: &s [*s]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="recursive"):
        load_config(file, env={})


SHOP_COMMANDS = [
    ["sync"],
    ["push"],
    ["untag", "--shop", "x"],
    ["run"],
    ["schedule"],
    ["enrich"],
    ["model", "--shop", "x"],
]


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "database: sqlite:///crm.db\n"])
@pytest.mark.parametrize("command", SHOP_COMMANDS, ids=lambda c: c[0])
def test_a_config_without_shops_is_refused_and_creates_nothing(
    tmp_path: Path, command: list[str], text: str
) -> None:
    file = tmp_path / "shopcrm.yaml"
    file.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["--config", str(file), *command])
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"no shops configured in {file}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shopcrm.yaml"]


@pytest.mark.parametrize("text", ["", "# nothing yet\n"])
def test_config_check_refuses_an_empty_file(tmp_path: Path, text: str) -> None:
    file = tmp_path / "shopcrm.yaml"
    file.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["--config", str(file), "config", "check"])
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"no shops configured in {file}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shopcrm.yaml"]


LITERAL = (
    "shops:\n"
    "  - name: outlet\n"
    "    platform: bigcommerce\n"
    "    store_hash: abc123\n"
    "    credentials: {access_token: literal-token-1234}\n"
)


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_a_readable_file_with_literal_secrets_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int, warned: bool
) -> None:
    file = tmp_path / "shopcrm.yaml"
    file.write_text(LITERAL, encoding="utf-8")
    file.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="shopcrm.config.load"):
        load_config(file, env={})
    readable = [r.getMessage() for r in caplog.records if "readable by group/others" in r.message]
    assert len(readable) == (1 if warned else 0)
    if warned:
        assert str(file) in readable[0]
        assert f"mode {mode:03o}" in readable[0]
        assert "literal-token-1234" not in readable[0]


def test_a_readable_file_with_only_env_references_is_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "shopcrm.yaml"
    file.write_text(LITERAL.replace("literal-token-1234", "'${BC_TOKEN}'"), encoding="utf-8")
    file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="shopcrm.config.load"):
        load_config(file, env={"BC_TOKEN": "from-the-environment"})
    assert not [r for r in caplog.records if "readable by group/others" in r.message]

"""The command line: init, config check, db upgrade, help everywhere, JSON logs, exit codes."""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

import shopcrm
from shopcrm import errors
from shopcrm.cli.main import app
from shopcrm.config.load import load_config
from shopcrm.config.schema import EXAMPLE_PATH
from shopcrm.errors import EXIT_FAILED, EXIT_TEMPFAIL, EXIT_USAGE, ShopcrmError, exit_code_for
from shopcrm.store.db import current_revision, head_revision, make_engine

SECRET = "bc-token-that-must-not-show-0987"


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """The CLI's setup_logging replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A small config: one BigCommerce shop with its token from the environment, a SQLite store
    in a folder relative to the file."""
    file = tmp_path / "conf" / "shopcrm.yaml"
    file.parent.mkdir()
    file.write_text(
        "database: sqlite:///store/crm.db\n"
        "shops:\n"
        "  - name: outlet\n"
        "    platform: bigcommerce\n"
        "    store_hash: abc123\n"
        "    credentials:\n"
        "      access_token: ${BC_TOKEN}\n",
        encoding="utf-8",
    )
    return file


# ---- init ----------------------------------------------------------------------------------


def test_init_writes_the_starter_config_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "shopcrm.yaml"
    result = invoke("--config", str(target), "init")
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == EXAMPLE_PATH.read_text(encoding="utf-8")
    assert f"wrote {target}" in result.stdout
    env = dict.fromkeys(("SHOPIFY_TOKEN", "WOO_KEY", "WOO_SECRET", "BC_TOKEN"), "x" * 12)
    assert len(load_config(target, env=env).shops) == 4  # the starter config is valid

    target.write_text("# my own edits\n", encoding="utf-8")
    result = invoke("--config", str(target), "init")
    assert result.exit_code == EXIT_USAGE
    assert "already exists" in result.stderr
    assert target.read_text(encoding="utf-8") == "# my own edits\n"


def test_init_creates_the_folder_and_never_writes_through_a_symlink(tmp_path: Path) -> None:
    nested = tmp_path / "etc" / "shopcrm" / "shopcrm.yaml"
    result = invoke("--config", str(nested), "init")
    assert result.exit_code == 0, result.output
    assert nested.is_file()

    elsewhere = tmp_path / "not-yet-there.yaml"
    link = tmp_path / "link.yaml"
    link.symlink_to(elsewhere)  # dangling: exists() says False
    result = invoke("--config", str(link), "init")
    assert result.exit_code == EXIT_USAGE
    assert "already exists" in result.stderr
    assert not elsewhere.exists()

    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    result = invoke("--config", str(blocked / "shopcrm.yaml"), "init")
    assert result.exit_code == EXIT_USAGE
    assert "cannot write" in result.stderr
    assert "Traceback" not in result.output


# ---- config check ----------------------------------------------------------------------------


def test_config_check_prints_the_config_with_secrets_masked(config_file: Path) -> None:
    result = invoke("--config", str(config_file), "config", "check", env={"BC_TOKEN": SECRET})
    assert result.exit_code == 0, result.output
    assert "access_token: '**********'" in result.stdout
    assert f"database: sqlite:///{config_file.parent / 'store' / 'crm.db'}" in result.stdout
    assert "config OK: 1 shop(s)" in result.stdout
    assert SECRET not in result.output


def test_a_missing_config_file_exits_2_with_a_hint(tmp_path: Path) -> None:
    result = invoke("--config", str(tmp_path / "nope.yaml"), "config", "check")
    assert result.exit_code == EXIT_USAGE
    assert "not found" in result.stderr
    assert "shopcrm init" in result.stderr


# ---- db upgrade ------------------------------------------------------------------------------


def test_db_upgrade_creates_the_store_next_to_the_config(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the store goes next to the config, not into the cwd
    env = {"BC_TOKEN": SECRET}
    result = invoke("--config", str(config_file), "db", "upgrade", env=env)
    assert result.exit_code == 0, result.output
    assert f"store schema at {head_revision()} (head)" in result.stdout

    db_file = config_file.parent / "store" / "crm.db"
    assert db_file.is_file()
    engine = make_engine(f"sqlite:///{db_file}")
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    assert not (tmp_path / "store").exists()

    again = invoke("--config", str(config_file), "db", "upgrade", env=env)
    assert again.exit_code == 0, again.output
    assert SECRET not in result.output + again.output


# ---- help text everywhere ----------------------------------------------------------------------


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


ALL_COMMANDS = list(_commands(typer.main.get_command(app)))


def test_the_command_tree_has_the_foundation_commands() -> None:
    paths = {" ".join(path) for path, _ in ALL_COMMANDS}
    assert {"", "init", "config", "config check", "db", "db upgrade"} <= paths


@pytest.mark.parametrize(
    "command", [c for _, c in ALL_COMMANDS], ids=[" ".join(p) or "shopcrm" for p, _ in ALL_COMMANDS]
)
def test_every_command_and_group_has_help(command: Any) -> None:
    assert (command.help or "").strip(), f"{command.name} is missing its help"
    assert len(command.get_short_help_str()) > 10


def test_help_works_for_every_command() -> None:
    for path, _ in ALL_COMMANDS:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.stdout


# ---- logs --------------------------------------------------------------------------------------


def test_log_format_json_writes_one_json_object_a_line_on_stderr(config_file: Path) -> None:
    result = invoke(
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "--config",
        str(config_file),
        "db",
        "upgrade",
        env={"BC_TOKEN": SECRET},
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "expected at least the schema upgrade to be logged"
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert {"ts", "level", "logger", "message"} <= set(entry)
    assert any("upgrading store schema" in e["message"] for e in entries)
    assert all(not line.startswith("{") for line in result.stdout.splitlines())
    assert SECRET not in result.output


def test_log_format_json_reports_a_failing_command_as_a_json_line(tmp_path: Path) -> None:
    result = invoke(
        "--log-format", "json", "--config", str(tmp_path / "none.yaml"), "config", "check"
    )
    assert result.exit_code == EXIT_USAGE
    (line,) = [x for x in result.stderr.splitlines() if x.strip()]
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert "none.yaml not found" in entry["message"]


def test_log_format_text_is_not_json(config_file: Path) -> None:
    result = invoke("--config", str(config_file), "db", "upgrade", env={"BC_TOKEN": SECRET})
    assert result.exit_code == 0
    line = next(x for x in result.stderr.splitlines() if "upgrading store schema" in x)
    assert " INFO shopcrm.store.db: " in line


# ---- exit codes --------------------------------------------------------------------------------


def _import_everything() -> None:
    """Load every module, so subclasses of ShopcrmError defined anywhere are seen."""
    for module in pkgutil.walk_packages(shopcrm.__path__, "shopcrm."):
        # Migrations run on import; the sandbox is a stand-in for the platforms.
        if ".migrations" in module.name or module.name.startswith("shopcrm.sandbox"):
            continue
        importlib.import_module(module.name)


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _instance(cls: type[ShopcrmError]) -> ShopcrmError:
    try:
        return cls("boom")
    except TypeError:  # a constructor with other required arguments
        return cls.__new__(cls)


def test_every_error_maps_to_an_exit_code() -> None:
    _import_everything()
    classes = [ShopcrmError, *_subclasses(ShopcrmError)]
    assert len(classes) >= 15
    for cls in classes:
        assert exit_code_for(_instance(cls)) in {EXIT_FAILED, EXIT_USAGE, EXIT_TEMPFAIL}, cls
    assert exit_code_for(RuntimeError("a bug")) == EXIT_FAILED
    assert exit_code_for(KeyboardInterrupt()) == EXIT_FAILED


def test_the_exit_codes_are_the_ones_errors_py_documents() -> None:
    """The tree drawn in errors.py's docstring lists every class there with its exit code."""
    documented: dict[str, int | None] = {}
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^[\s│├└─]*(\w+)\s.*?(?:exit (\d+))?$", line)
        if match and re.search(r"[├└]", line):
            documented[match.group(1)] = int(match.group(2)) if match.group(2) else None
    in_module = [cls for cls in _subclasses(ShopcrmError) if cls.__module__ == "shopcrm.errors"]
    assert {cls.__name__ for cls in in_module} == set(documented)
    for cls in in_module:
        code = documented[cls.__name__]
        if code is None:  # not given: inherits its parent's
            code = exit_code_for(_instance(cls.__mro__[1]))
        assert exit_code_for(_instance(cls)) == code, cls.__name__
    assert exit_code_for(errors.ConfigError("x", path="a.b")) == EXIT_USAGE
    assert exit_code_for(errors.RateLimited("slow down", retry_after=2.0)) == EXIT_TEMPFAIL
    assert exit_code_for(errors.LockHeld("busy")) == EXIT_TEMPFAIL
    assert exit_code_for(errors.AuthError("no", status=401)) == EXIT_FAILED


def test_the_cli_exits_with_the_errors_code(config_file: Path) -> None:
    broken = config_file.parent / "broken.yaml"
    broken.write_text("database: 'mysql://x@h/db'\n", encoding="utf-8")
    result = invoke("--config", str(broken), "db", "upgrade")
    assert result.exit_code == EXIT_USAGE
    assert "database: unsupported database 'mysql'" in result.stderr
    assert make_url("mysql://x@h/db").get_backend_name() == "mysql"

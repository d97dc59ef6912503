"""Every command on a shop holds its lock: a second one is refused at once (exit 75), naming
the holder; another shop is not blocked; a SIGKILLed holder leaves no stuck lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from shopcrm.errors import LockHeld
from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.store.db import Store
from shopcrm.store.locks import Holder
from shopcrm.store.models import SyncRun
from shopcrm.sync.lock import refuse_if_all_running, shop_lock
from tests.push_fixtures import url_of
from tests.shopify_sync_fixtures import FAST, assert_exact, seeded

SHOPCRM = [sys.executable, "-c", "from shopcrm.cli.main import main; main()"]


@pytest.mark.parametrize("command", ["shopcrm sync --full", "a */ b /* % 'c' \\ \"d\""])
def test_a_holder_survives_its_json_and_never_closes_an_sql_comment(command: str) -> None:
    holder = Holder(42, "web-1", command, datetime(2026, 12, 4, 15, 30, tzinfo=UTC))
    text = holder.to_json()
    assert "*" not in text
    assert "%" not in text
    assert Holder.from_json(text) == holder
    assert str(holder) == f"pid 42 on host web-1, `{command}`, since 2026-12-04 15:30:00 UTC"
    assert Holder.from_json("") is None
    assert Holder.from_json('{"pid": 1') is None


def test_a_refusal_names_this_process_as_the_holder(store: Store) -> None:
    with shop_lock(store, "a"):
        with pytest.raises(LockHeld) as refused, shop_lock(store, "a"):
            pass
        with shop_lock(store, "b"):  # another shop is free
            pass
        with pytest.raises(LockHeld) as fast:
            refuse_if_all_running(url_of(store), ["a"])
        refuse_if_all_running(url_of(store), ["a", "b"])  # b is free: no refusal
    message = str(refused.value)
    assert message.startswith("shop a is already being run by another shopcrm process (pid ")
    assert f"pid {os.getpid()} on host {socket.gethostname()}, `" in message
    assert " UTC); this command was refused" in message
    assert str(fast.value) == message
    with shop_lock(store, "a"):  # released on exit
        pass
    refuse_if_all_running(url_of(store), ["a"])


@pytest.fixture
def shops(store: Store, tmp_path: Path) -> Iterator[tuple[Path, ShopifySandbox, dict[str, str]]]:
    """A config with Shopify shop `main` on a sandbox and an (empty) CSV shop `pos`."""
    sandbox = ShopifySandbox(seeded(300, years=1.0), **FAST).start()
    entry, env = sandbox.shop_entry("main")
    (tmp_path / "pos").mkdir()
    config = {
        "database": url_of(store),
        "defaults": {"sync": {"bulk_threshold": 100_000}},
        "shops": [entry, {"name": "pos", "platform": "csv", "path": "pos", "currency": "EUR"}],
    }
    path = tmp_path / "shopcrm.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    yield path, sandbox, {**os.environ, **env}
    sandbox.stop()


def _start(path: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SHOPCRM, "--config", str(path), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_running(store: Store, process: subprocess.Popen[str]) -> None:
    """Until the process holds the shop's lock and has opened its sync_run row."""
    deadline = time.monotonic() + 60
    while True:
        with store.session() as session:
            if session.execute(select(SyncRun).where(SyncRun.outcome == "running")).first():
                return
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _cli(path: Path, env: dict[str, str], *args: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [*SHOPCRM, "--config", str(path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def test_a_full_sync_refuses_run_sync_and_push_on_its_shop_and_finishes_exact(
    store: Store, shops: Any
) -> None:
    path, sandbox, env = shops
    sandbox.server.faults.delay_s = 0.5  # a slow shop: the full sync is held mid-way
    first = _start(path, env, "sync", "--full", "--shop", "main")
    _wait_running(store, first)
    for command in (["run"], ["sync"], ["push", "--force"], ["untag"]):
        code, output, took = _cli(path, env, *command, "--shop", "main")
        assert code == 75, output
        assert "shop main is already being run by another shopcrm process" in output
        assert f"(pid {first.pid} on host {socket.gethostname()}, `" in output
        assert "sync --full --shop main`, since 20" in output
        assert " UTC)" in output
        # refused before the store or a connector is opened; the bound leaves room for a
        # loaded machine's interpreter start (0.6-0.9 s when idle)
        assert took < 5, took
    code, output, _ = _cli(path, env, "sync", "--shop", "pos")  # another shop: not blocked
    assert code == 0, output
    assert first.poll() is None  # still going: the refusals were not waits for it
    sandbox.server.faults.delay_s = 0
    _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert_exact(store, sandbox)


def test_a_sigkilled_holder_leaves_no_stuck_lock(store: Store, shops: Any) -> None:
    path, sandbox, env = shops
    sandbox.server.faults.delay_s = 0.5
    first = _start(path, env, "sync", "--full", "--shop", "main")
    _wait_running(store, first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    sandbox.server.faults.delay_s = 0
    deadline = time.monotonic() + 10
    code, output, _ = _cli(path, env, "sync", "--shop", "main")
    while code == 75 and time.monotonic() < deadline:  # PostgreSQL notices the dead backend
        time.sleep(0.2)
        code, output, _ = _cli(path, env, "sync", "--shop", "main")
    assert code == 0, output
    assert_exact(store, sandbox)

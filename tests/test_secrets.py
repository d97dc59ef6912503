"""Planted credentials never show: not in output, logs, the store or exception texts (#18.9).

Each platform sandbox gets a recognisable token as its shop's credential; every command that
talks to the shops runs through the CLI with text and JSON logs, on success and on failure
(a wrong token, answered 401; a platform answering 503), and everything it leaves is grepped.
"""

from __future__ import annotations

import sqlite3
import traceback
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from shopcrm.cli.main import app
from shopcrm.sandbox.bigcommerce.app import BigCommerceSandbox
from shopcrm.sandbox.seed import generate
from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.sandbox.shopify.state import Token
from shopcrm.sandbox.woocommerce.app import WooCommerceSandbox

PLANTED = {
    "shopify": "shpat_PLANTED0shopify0token0a1b2c3d4e5f",
    "woo_key": "ck_PLANTED0woo0key0a1b2c3d4e5f6a7b8c9d0e1f",
    "woo_secret": "cs_PLANTED0woo0secret0a1b2c3d4e5f6a7b8c9d",
    "bigcommerce": "PLANTED0bigcommerce0token0a1b2c3d4e5f",
}
WRONG = {name: value.replace("PLANTED", "WRONGTOK") for name, value in PLANTED.items()}
SECRETS = [*PLANTED.values(), *WRONG.values()]


pytestmark = pytest.mark.usefixtures("restore_root_logger")


@pytest.fixture
def sandboxes() -> Iterator[dict[str, Any]]:
    with ExitStack() as stack:
        shopify = ShopifySandbox(generate(customers=40, seed=5))
        shop = shopify.shops["sandbox"]
        shop.tokens[PLANTED["shopify"]] = Token(PLANTED["shopify"], shop.scopes, None)
        started = {
            "shopify": shopify,
            "woocommerce": WooCommerceSandbox(
                generate(customers=40, seed=6),
                consumer_key=PLANTED["woo_key"],
                consumer_secret=PLANTED["woo_secret"],
            ),
            "bigcommerce": BigCommerceSandbox(
                generate(customers=40, seed=7), access_token=PLANTED["bigcommerce"]
            ),
        }
        for sandbox in started.values():
            sandbox.start()
            stack.callback(sandbox.stop)
            sandbox.server.faults.retry_after_s = 0
        yield started


def write_config(tmp_path: Path, sandboxes: dict[str, Any]) -> Path:
    shops = []
    for platform, sandbox in sandboxes.items():
        entry, _ = sandbox.shop_entry(platform)
        shops.append(entry)
    shops[0]["credentials"] = {"access_token": "${T_SHOPIFY}"}
    shops[1]["credentials"] = {"consumer_key": "${T_WOO_KEY}", "consumer_secret": "${T_WOO_SECRET}"}
    shops[2]["credentials"] = {"access_token": "${T_BC}"}
    file = tmp_path / "shopcrm.yaml"
    data = {
        "database": "sqlite:///crm.db",
        "defaults": {"clv": {"min_buyers": 20, "min_repeat_buyers": 5}},
        "shops": shops,
    }
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return file


def env_of(tokens: dict[str, str]) -> dict[str, str | None]:
    return {
        "T_SHOPIFY": tokens["shopify"],
        "T_WOO_KEY": tokens["woo_key"],
        "T_WOO_SECRET": tokens["woo_secret"],
        "T_BC": tokens["bigcommerce"],
    }


def texts_of(result: Result) -> list[str]:
    """Everything a command left in the process: stdout, stderr (the logs), its exception."""
    found = [result.stdout, result.stderr]
    if result.exc_info is not None and result.exception is not None:
        found.append("".join(traceback.format_exception(*result.exc_info)))
    return found


def store_dump(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_planted_tokens_never_appear(
    tmp_path: Path, sandboxes: dict[str, Any], log_format: str
) -> None:
    config = write_config(tmp_path, sandboxes)

    def cli(tokens: dict[str, str], *args: str) -> Result:
        return CliRunner().invoke(
            app,
            ["--config", str(config), "--log-format", log_format, "--log-level", "debug", *args],
            env=env_of(tokens),
        )

    runs = {
        "config check": cli(PLANTED, "config", "check"),
        "sync": cli(PLANTED, "sync"),
        "enrich": cli(PLANTED, "enrich"),
        "push": cli(PLANTED, "push", "--force"),
        "run": cli(PLANTED, "run", "--force"),
        "sync, wrong tokens": cli(WRONG, "sync"),
    }
    for sandbox in sandboxes.values():
        sandbox.server.faults.fail_all = 503
    runs["sync, 503"] = cli(PLANTED, "sync")
    runs["run, 503"] = cli(PLANTED, "run", "--force")
    for sandbox in sandboxes.values():
        sandbox.server.faults.reset()

    outcomes = {name: result.exit_code for name, result in runs.items()}
    assert outcomes == {
        "config check": 0,
        "sync": 0,
        "enrich": 0,
        "push": 0,
        "run": 0,
        "sync, wrong tokens": 1,
        "sync, 503": 1,
        "run, 503": 1,
    }, {name: r.output[-2000:] for name, r in runs.items()}
    assert (
        "401" in runs["sync, wrong tokens"].output
        or "refused" in runs["sync, wrong tokens"].output.lower()
    )
    assert "503" in runs["sync, 503"].output
    dump = store_dump(tmp_path / "crm.db")
    assert "'failed'" in dump  # the failures are recorded in the store, so it is grepped too
    for name, result in runs.items():
        for text in texts_of(result):
            for secret in SECRETS:
                assert secret not in text, f"{name}: a token shows"
    for secret in SECRETS:
        assert secret not in dump
    for leftover in tmp_path.rglob("*"):
        if leftover.is_file() and leftover.name != "shopcrm.yaml":
            content = leftover.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in content, f"{leftover}: a token shows"

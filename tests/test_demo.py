"""`shopcrm demo`: the whole pipeline on the sandboxes, quick, self-explaining, leaving nothing."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from shopcrm.cli.main import app

DEMO_SHOPS = ("shopify-demo", "woo-demo", "bigcommerce-demo", "pos-demo")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_demo_from_a_fresh_process_completes_under_a_minute(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    env.pop("SHOPCRM_CONFIG", None)
    work = tmp_path / "cwd"
    work.mkdir()
    cpu_before = _children_cpu()
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shopcrm.cli.main import main; main()",
            "demo",
            "--customers",
            "150",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    took = time.monotonic() - started
    cpu = _children_cpu() - cpu_before
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The minute is a wall-clock promise on an idle machine (BENCHMARKS.md measures it); a test
    # run shares the CPU with other workers, so it bounds the demo's own CPU time instead, and
    # the wall time only loosely.
    assert cpu < 30, cpu
    assert took < 180, took
    out = proc.stdout
    for shop in DEMO_SHOPS:
        assert re.search(
            rf"{shop}\s+\S+\s+\d+\s+\d+\s+(\+\d+/-\d+|n/a)\s+\d+\s+\S+\s+[\d.]+s\s+ok", out
        ), out
    assert "Segments (customers in each):" in out
    assert "4 of 4 shop(s) synced, enriched and tagged" in out
    assert "lowers CLV's minimum data" in out
    assert "Next:" in out
    assert list(work.iterdir()) == []  # nothing written where it was run
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("shopcrm-demo-")] == []


def test_demo_keep_leaves_a_store_the_other_commands_can_use(tmp_path: Path) -> None:
    kept = tmp_path / "demo"
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--keep", str(kept), "--customers", "60"])
    assert result.exit_code == 0, result.output
    assert {"shopcrm.yaml", "shopcrm.db", "demo.env"} <= {p.name for p in kept.iterdir()}
    assert f"shopcrm --config {kept / 'shopcrm.yaml'} push --dry-run" in result.output
    env = dict(line.split("=", 1) for line in (kept / "demo.env").read_text().splitlines())
    plan = runner.invoke(
        app, ["--config", str(kept / "shopcrm.yaml"), "push", "--dry-run"], env=env
    )
    assert plan.exit_code == 0, plan.output
    assert "woo-demo: would change 0 of 60 customers" in plan.output
    assert "pos-demo: this platform cannot be tagged; nothing pushed" in plan.output
    for secret in env.values():
        assert secret not in result.output
        assert secret not in plan.output

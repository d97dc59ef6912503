"""`shopcrm sandbox bigcommerce` in the foreground, and `shopcrm sync` killed with SIGKILL."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests
import yaml

from shopcrm.store.db import open_store
from tests.bigcommerce_fixtures import TOKEN, assert_store_matches, config_for, dataset, sandbox
from tests.sync_kill import kill_when

SHOPCRM = str(Path(sys.executable).with_name("shopcrm"))


def test_sandbox_command_serves_prints_credentials_and_stops_on_ctrl_c() -> None:
    env = {**os.environ, "SHOPCRM_SANDBOX_BC_TOKEN": "cli-token-1"}
    args = ["sandbox", "bigcommerce", "--port", "0", "--customers", "20", "--quota", "4"]
    proc = subprocess.Popen(
        [SHOPCRM, *args, "--window-ms", "60000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        while lines[-1].strip() != "- name: bigcommerce-sandbox" and len(lines) < 40:
            lines.append(proc.stdout.readline())
        lines += [proc.stdout.readline() for _ in range(6)]
        printed = "".join(lines)
        url = re.search(r"BigCommerce sandbox at (http://127\.0\.0\.1:\d+)", printed).group(1)
        assert "export SHOPCRM_SANDBOX_BC_TOKEN=cli-token-1" in printed
        snippet = yaml.safe_load(printed[printed.index("shops:") :])
        assert snippet["shops"][0]["api_url"] == url
        assert snippet["shops"][0]["store_hash"] == "sandbox1"

        store_url = f"{url}/stores/sandbox1/v2/store"
        refused = requests.get(store_url, headers={"X-Auth-Token": "wrong"}, timeout=5)
        assert refused.status_code == 401
        answers = [
            requests.get(store_url, headers={"X-Auth-Token": "cli-token-1"}, timeout=5)
            for _ in range(5)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
        assert answers[0].json()["currency"] == "USD"
        assert answers[-1].headers["X-Rate-Limit-Requests-Left"] == "0"
        assert int(answers[-1].headers["X-Retry-After"]) >= 1
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "stopped" in out


def test_sync_killed_at_random_points_resumes_exactly(tmp_path: Path) -> None:
    ds = dataset(600)
    rng = random.Random(5)
    with sandbox(ds) as sb:
        entry, env = sb.shop_entry("bc-shop")
        database = f"sqlite:///{tmp_path / 'bc.db'}"
        config = tmp_path / "shopcrm.yaml"
        config.write_text(yaml.safe_dump({"database": database, "shops": [entry]}))
        run_env = {**os.environ, **env}
        command = [SHOPCRM, "--config", str(config), "--log-format", "json", "sync"]
        killed_running = 0
        for attempt in range(5):
            served = sb.server.stats.requests
            proc = subprocess.Popen(
                command, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            # a random point in the sync's progress (it needs ~14 requests from scratch),
            # whatever the machine's speed
            kill_after = served + rng.randint(2, 8)
            killed_running += kill_when(
                proc, lambda after=kill_after: sb.server.stats.requests >= after
            )
            proc.communicate(timeout=30)
            if attempt == 2:
                ds.mutate(30)  # the shop moves on between the crashes
        assert killed_running >= 3, "the kills must land while syncing"
        done = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert TOKEN not in done.stdout + done.stderr
        store = open_store(config_for(sb, database).database)
        try:
            assert_store_matches(store, sb)
        finally:
            store.close()

"""`shopcrm sandbox woocommerce`: serves in the foreground and prints what a config needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from woocommerce.oauth import OAuth


def test_sandbox_command_prints_url_credentials_and_a_working_config() -> None:
    env = {
        **os.environ,
        "SHOPCRM_SANDBOX_WOO_KEY": "ck_cli_key",
        "SHOPCRM_SANDBOX_WOO_SECRET": "cs_cli",
    }
    command = [
        str(Path(sys.executable).with_name("shopcrm")),
        "sandbox",
        "woocommerce",
        "--port",
        "0",
        "--customers",
        "7",
        "--currency",
        "EUR",
    ]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("    consumer_secret:"):
                break
        text = "".join(lines)
        url = lines[0].split()[3]
        assert "7 customers" in text
        assert "currency EUR" in text
        assert "export SHOPCRM_SANDBOX_WOO_SECRET=cs_cli" in text
        snippet = yaml.safe_load(text[text.index("shops:") :])
        assert snippet["shops"][0]["url"] == url
        assert (
            snippet["shops"][0]["credentials"]["consumer_secret"] == "${SHOPCRM_SANDBOX_WOO_SECRET}"
        )
        signed = OAuth(
            f"{url}/wp-json/wc/v3/customers?role=all", "ck_cli_key", "cs_cli"
        ).get_oauth_url()
        response = requests.get(signed, timeout=10)
        assert response.status_code == 200
        assert response.headers["X-WP-Total"] == "7"
    finally:
        proc.terminate()
        proc.wait(timeout=10)

"""`shopcrm sandbox shopify`: serves in the foreground and prints what a client needs."""

from __future__ import annotations

import signal
import subprocess
import sys

import requests
import yaml

from shopcrm.config.schema import ShopifyShop
from shopcrm.sandbox.shopify.app import ShopifySandbox, banner
from tests.sandbox_shopify_fixtures import small_shop


def test_banner_has_url_credentials_and_a_valid_config_snippet() -> None:
    with ShopifySandbox(small_shop(5)) as sandbox:
        text = banner(sandbox, "my-shop")
        client_id, secret = sandbox.client_credentials()
        for expected in (
            sandbox.url,
            "sandbox.myshopify.com",
            sandbox.admin_token(),
            client_id,
            secret,
        ):
            assert expected in text
        snippet = yaml.safe_load(text[text.index("shops:") :])
        entry = snippet["shops"][0]
        assert entry["credentials"] == {"access_token": "${SHOPCRM_SANDBOX_SHOPIFY_TOKEN}"}
        entry["credentials"] = {"access_token": sandbox.admin_token()}
        shop = ShopifyShop.model_validate(entry)
        assert (shop.name, shop.domain, shop.api_url) == ("my-shop", sandbox.domain(), sandbox.url)


def test_command_serves_until_interrupted() -> None:
    command = [
        sys.executable,
        "-c",
        "from shopcrm.cli.main import main; main()",
        "sandbox",
        "shopify",
        "--port",
        "0",
        "--customers",
        "15",
        "--bucket",
        "500",
        "--restore-rate",
        "25",
        "--bulk-start-delay",
        "7",
        "--bulk-rate",
        "250",
        "--latency-ms",
        "20",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "api_url:" in line:
                break
        text = "".join(lines)
        assert "bulk operations: 7 s to start, then 250 objects/s; latency 20 ms" in text
        url = text.split("api_url: ", 1)[1].split()[0]
        token = text.split("export SHOPCRM_SANDBOX_SHOPIFY_TOKEN=", 1)[1].split()[0]
        response = requests.post(
            f"{url}/admin/api/2026-10/graphql.json",
            json={"query": "{ customers(first: 50) { nodes { id } } }"},
            headers={"X-Shopify-Access-Token": token, "Host": "sandbox.myshopify.com"},
            timeout=10,
        )
        body = response.json()
        assert len(body["data"]["customers"]["nodes"]) == 15
        assert body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 500.0
        assert body["extensions"]["cost"]["throttleStatus"]["restoreRate"] == 25.0
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "stopped" in out

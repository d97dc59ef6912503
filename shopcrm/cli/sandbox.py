"""`shopcrm demo` and `shopcrm sandbox ...`: the built-in stand-ins of the platforms."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from shopcrm.cli.common import command_group, out
from shopcrm.sandbox.server import REALISTIC_LATENCY_S
from shopcrm.sandbox.shopify.state import (
    REALISTIC_BULK_RECORDS_PER_S,
    REALISTIC_BULK_START_DELAY_S,
)

sandbox_app = command_group(
    "Serve a local stand-in of a platform's API (foreground; Ctrl-C stops)."
)

LatencyMs = Annotated[
    float,
    typer.Option(
        min=0,
        help=(
            "Round-trip delay added to every response, in ms (a hosted shop: about "
            f"{REALISTIC_LATENCY_S * 1000:g})."
        ),
    ),
]


def _serve(sandbox: Any, banner: str) -> None:
    """Print how to reach the sandbox, then serve it in the foreground until Ctrl-C."""
    out.print(banner, markup=False)
    sys.stdout.flush()
    try:
        sandbox.server.serve_forever()
    except KeyboardInterrupt:
        out.print("stopped", markup=False)
    finally:
        sandbox.stop()


def demo(
    keep: Annotated[
        Path | None,
        typer.Option(help="Keep the demo's config, store and exports in this folder."),
    ] = None,
    customers: Annotated[
        int, typer.Option(min=20, max=20_000, help="Customers per sandbox shop.")
    ] = 400,
) -> None:
    """Run the whole job (pull, enrich, push) on local sandbox shops: no account, no network."""
    from shopcrm.demo import run_demo

    run_demo(out, keep=keep, customers=customers)


@sandbox_app.command("shopify")
def sandbox_shopify(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8701,
    customers: Annotated[int, typer.Option(min=0, help="How many customers to seed.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 42,
    bucket: Annotated[
        float, typer.Option(min=1, help="GraphQL bucket size in points (Standard plan: 2000).")
    ] = 2000.0,
    restore_rate: Annotated[
        float, typer.Option(min=0.1, help="Points restored per second (Standard plan: 100).")
    ] = 100.0,
    bulk_start_delay: Annotated[
        float,
        typer.Option(min=0, help="Seconds a bulk operation runs before reporting any object."),
    ] = REALISTIC_BULK_START_DELAY_S,
    bulk_rate: Annotated[
        float,
        typer.Option(
            min=0, help="Objects a bulk operation writes per second after that (0: instant)."
        ),
    ] = REALISTIC_BULK_RECORDS_PER_S,
    latency_ms: LatencyMs = 0.0,
) -> None:
    """Serve a seeded Shopify shop (Admin GraphQL, bulk operations, legacy REST) until Ctrl-C.

    Bulk operations take as long as users report of Shopify unless told otherwise.
    """
    from shopcrm.sandbox.seed import generate
    from shopcrm.sandbox.shopify.app import ShopifySandbox, banner

    dataset = generate(customers=customers, seed=seed)
    sandbox = ShopifySandbox(
        dataset,
        port=port,
        bucket_size=bucket,
        restore_rate=restore_rate,
        bulk_start_delay_s=bulk_start_delay,
        bulk_records_per_s=bulk_rate or None,
        latency_s=latency_ms / 1000,
    )
    _serve(sandbox, banner(sandbox))


@sandbox_app.command("woocommerce")
def sandbox_woocommerce(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8702,
    customers: Annotated[int, typer.Option(min=0, help="How many customers to seed.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 42,
    currency: Annotated[str, typer.Option(help="The store's currency.")] = "USD",
    timezone: Annotated[str, typer.Option(help="The store's time zone.")] = "America/New_York",
    consumer_key: Annotated[
        str | None, typer.Option(envvar="SHOPCRM_SANDBOX_WOO_KEY", help="API key (random).")
    ] = None,
    consumer_secret: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPCRM_SANDBOX_WOO_SECRET", help="API secret (random).", show_default=False
        ),
    ] = None,
    latency_ms: LatencyMs = 0.0,
) -> None:
    """Serve a seeded WooCommerce store (REST wc/v3, OAuth 1.0a over http) until Ctrl-C."""
    from shopcrm.sandbox.seed import generate
    from shopcrm.sandbox.woocommerce.app import WooCommerceSandbox, banner

    dataset = generate(customers=customers, seed=seed, currency=currency, timezone=timezone)
    sandbox = WooCommerceSandbox(
        dataset,
        port=port,
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        latency_s=latency_ms / 1000,
    )
    _serve(sandbox, banner(sandbox, "woo-sandbox"))


@sandbox_app.command("bigcommerce")
def sandbox_bigcommerce(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8703,
    customers: Annotated[int, typer.Option(min=0, help="How many customers to seed.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 42,
    currency: Annotated[str, typer.Option(help="The store's currency.")] = "USD",
    timezone: Annotated[str, typer.Option(help="The store's time zone.")] = "America/New_York",
    store_hash: Annotated[str, typer.Option(help="The {store_hash} of the API paths.")] = (
        "sandbox1"
    ),
    access_token: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPCRM_SANDBOX_BC_TOKEN", help="X-Auth-Token (random).", show_default=False
        ),
    ] = None,
    quota: Annotated[
        int, typer.Option(min=1, help="Requests per window (Standard plan: 150).")
    ] = 150,
    window_ms: Annotated[
        int, typer.Option(min=100, help="Rate-limit window in ms (BigCommerce: 30000).")
    ] = 30_000,
    latency_ms: LatencyMs = 0.0,
) -> None:
    """Serve a seeded BigCommerce store (v3 customers, v2 orders, rate limits) until Ctrl-C."""
    import secrets

    from shopcrm.sandbox.bigcommerce.app import BigCommerceSandbox, banner
    from shopcrm.sandbox.seed import generate

    dataset = generate(customers=customers, seed=seed, currency=currency, timezone=timezone)
    sandbox = BigCommerceSandbox(
        dataset,
        port=port,
        store_hash=store_hash,
        access_token=access_token or secrets.token_hex(16),
        quota=quota,
        window_ms=window_ms,
        latency_s=latency_ms / 1000,
    )
    _serve(sandbox, banner(sandbox, "bigcommerce-sandbox"))


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.add_typer(sandbox_app, name="sandbox")

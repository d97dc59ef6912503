"""The `shopcrm` command line: thin commands over the library, errors mapped to exit codes here.

Exit codes: 0 success, 1 a run failed, 2 usage or config error, 75 temporarily unable
(lock held, platform unavailable). See `shopcrm.errors` for the tree behind them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from typer.core import TyperGroup

from shopcrm.config.load import load_config
from shopcrm.config.schema import DEFAULT_CONFIG_PATH, EXAMPLE_PATH, AppConfig
from shopcrm.errors import EXIT_USAGE, ShopcrmError, UsageError
from shopcrm.log import redact, setup_logging

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _Group(TyperGroup):
    """Turns every ShopcrmError into its message on stderr and its exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ShopcrmError as exc:
            message = redact(str(exc))
            if isinstance(ctx.obj, State) and ctx.obj.log_format is LogFormat.json:
                logging.getLogger("shopcrm").error(message)  # one JSON line, like every log
            else:
                err.print(f"error: {message}", markup=False)
            raise typer.Exit(exc.exit_code) from None


def _app(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=_Group,
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )


app = _app("Sync customers and orders from your shops, enrich them, push segments back as tags.")
config_app = _app("Validate and show the configuration.")
db_app = _app("Manage the local store's schema.")
app.add_typer(config_app, name="config")
sandbox_app = _app("Serve a local stand-in of a platform's API (foreground; Ctrl-C stops).")
app.add_typer(db_app, name="db")
app.add_typer(sandbox_app, name="sandbox")


ShopOption = Annotated[
    str | None, typer.Option(help="Only this shop (default: every enabled shop).")
]


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@dataclass
class State:
    config_path: Path
    log_format: LogFormat = LogFormat.text
    _config: AppConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> AppConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


def state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State) if ctx.obj is None else ctx.obj


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            envvar="SHOPCRM_CONFIG",
            help="Config file (YAML).",
            show_default=True,
        ),
    ] = DEFAULT_CONFIG_PATH,
    log_level: Annotated[LogLevel, typer.Option(help="Least severe log level shown.")] = (
        LogLevel.info
    ),
    log_format: Annotated[
        LogFormat, typer.Option(help="text for people, json (one object a line) for machines.")
    ] = LogFormat.text,
) -> None:
    """Global options; logs go to stderr."""
    setup_logging(log_level.value, log_format.value)
    ctx.obj = State(config_path=config, log_format=log_format)


@app.command()
def init(ctx: typer.Context) -> None:
    """Write a commented starter config to the --config path (never overwrites)."""
    target = state(ctx).config_path
    text = EXAMPLE_PATH.read_text(encoding="utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with target.open("x", encoding="utf-8") as file:  # "x": never overwrite, even racing
            file.write(text)
    except FileExistsError:
        raise UsageError(f"{target} already exists; not overwritten") from None
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    out.print(f"wrote {target}: edit it, then run `shopcrm config check`")


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the config and print it resolved, with secrets masked."""
    cfg = state(ctx).config
    out.print(yaml.safe_dump(cfg.masked(), sort_keys=False).rstrip(), markup=False)
    out.print(f"config OK: {len(cfg.shops)} shop(s)", markup=False)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create the store or bring its schema to the newest version."""
    from shopcrm.store import db

    with _store(ctx) as store:
        out.print(f"store schema at {db.current_revision(store.engine)} (head)")


@contextmanager
def _store(ctx: typer.Context) -> Iterator[Any]:
    """The configured store, its schema brought to head, closed when the command ends."""
    from shopcrm.store import db

    store = db.open_store(state(ctx).config.database)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _progress() -> Iterator[Any]:
    """A live progress bar on a terminal; None otherwise (pull then logs plain lines)."""
    from shopcrm.sync import progress

    if not progress.on_terminal():
        yield None
        return
    with progress.BarProgress() as bar:
        yield bar


@app.command()
def sync(
    ctx: typer.Context,
    shop: ShopOption = None,
    full: Annotated[
        bool, typer.Option("--full", help="Re-read everything and mark records gone upstream.")
    ] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="CSV shops: import the valid rows; write bad ones to <file>.rejects.csv.",
        ),
    ] = False,
) -> None:
    """Pull customers and orders from the shops into the store (incremental by default)."""
    from shopcrm.errors import RunFailed
    from shopcrm.sync.pull import pull_shops

    cfg = state(ctx).config
    cfg.selected(shop)
    if skip_invalid:
        from shopcrm.connectors.csv.connector import skip_invalid_rows

        cfg = skip_invalid_rows(cfg)
    with _store(ctx) as store, _progress() as bar:
        results = pull_shops(store, cfg, shop, full=full, progress=bar)
    for r in results:
        status = "ok" if r.ok else f"FAILED: {r.error}"
        out.print(
            f"{r.shop}: {r.customers} customers, {r.orders} orders, {r.requests} requests, "
            f"{r.duration_s:.1f}s — {status}",
            markup=False,
        )
    failed = [r.shop for r in results if not r.ok]
    if failed:
        raise RunFailed(f"sync failed for {len(failed)} shop(s): {', '.join(failed)}")


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
) -> None:
    """Serve a seeded WooCommerce store (REST wc/v3, OAuth 1.0a over http) until Ctrl-C."""
    from shopcrm.sandbox.seed import generate
    from shopcrm.sandbox.woocommerce.app import WooCommerceSandbox, banner

    dataset = generate(customers=customers, seed=seed, currency=currency, timezone=timezone)
    sandbox = WooCommerceSandbox(
        dataset, port=port, consumer_key=consumer_key, consumer_secret=consumer_secret
    )
    out.print(banner(sandbox, "woo-sandbox"), markup=False)
    sys.stdout.flush()
    try:
        sandbox.server.serve_forever()
    except KeyboardInterrupt:
        out.print("stopped", markup=False)
    finally:
        sandbox.stop()


DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print the plan; change nothing on the platform.")
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Go past the safety limit (push.max_change_share); a first push needs it."
    ),
]


def _print_push(result: Any) -> None:
    """One shop's push: a line of totals and a per-segment table of the plan."""
    from rich.table import Table

    if result.plan is None:
        out.print(f"{result.shop}: push not done: {result.error}", markup=False)
        return
    plan = result.plan
    mode = "would change" if result.dry_run else "changed"
    done = plan.customers_changed if result.dry_run else result.applied
    line = (
        f"{result.shop}: {mode} {done} of {plan.customers_total} customers "
        f"({plan.change_share:.0%}); {plan.guests_not_taggable} guest buyer(s) without an "
        "account cannot be tagged"
    )
    if not result.taggable:
        line = f"{result.shop}: this platform cannot be tagged; nothing pushed"
    elif result.failed:
        line += f"; {result.failed} failed (see push_log)"
    out.print(line, markup=False)
    if plan.changes:
        table = Table("segment (tag)", "adds", "removes", "customers", title=None)
        for segment, seg in plan.by_segment.items():
            table.add_row(
                plan.prefix + segment, str(seg.adds), str(seg.removes), str(seg.customers)
            )
        out.print(table)


def _push_and_report(ctx: typer.Context, shop: str | None, **options: Any) -> None:
    """Push (or untag) the selected shops, print each plan, map the outcome to an error."""
    from shopcrm.errors import LockHeld, PushRefused, RunFailed
    from shopcrm.sync.push import push_shops

    cfg = state(ctx).config
    cfg.selected(shop)
    with _store(ctx) as store:
        results = push_shops(store, cfg, shop, **options)
    for result in results:
        _print_push(result)
    refused = [r.error or r.shop for r in results if r.refused]
    if refused:
        raise PushRefused("\n".join(refused))
    failed = [f"{r.shop} ({r.error})" for r in results if r.error and not r.locked]
    if failed:
        raise RunFailed(f"push failed for {len(failed)} shop(s): {', '.join(failed)}")
    locked = [r.error or r.shop for r in results if r.locked]
    if locked:
        raise LockHeld("; ".join(locked))


@app.command()
def push(
    ctx: typer.Context,
    shop: ShopOption = None,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
) -> None:
    """Send segment tags to the shops: only the difference, only tags with the prefix."""
    _push_and_report(ctx, shop, dry_run=dry_run, force=force)


@app.command()
def untag(
    ctx: typer.Context,
    shop: Annotated[str, typer.Option(help="The shop to untag.")],
    dry_run: DryRunOption = False,
) -> None:
    """Remove every shopcrm-managed tag from a shop; all other tags stay as they are."""
    _push_and_report(ctx, shop, untag=True, dry_run=dry_run)


@app.command()
def run(
    ctx: typer.Context,
    shop: ShopOption = None,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
) -> None:
    """Pull, enrich and push each shop once (the command for cron); exit 75 if a shop is locked."""
    from shopcrm.sync.lock import refuse_if_all_running

    cfg = state(ctx).config
    refuse_if_all_running(cfg.database, [s.name for s in cfg.selected(shop)])

    from shopcrm.sync.run import raise_for_results, run_shops

    with _store(ctx) as store, _progress() as bar:
        results = run_shops(store, cfg, shop, force=force, dry_run=dry_run, progress=bar)
    for result in results:
        if result.push is not None:
            _print_push(result.push)
        status = "ok" if result.ok else ("LOCKED" if result.locked else f"FAILED: {result.error}")
        out.print(f"{result.shop}: run {status} ({result.duration_s:.1f}s)", markup=False)
    raise_for_results(results)


@app.command()
def schedule(ctx: typer.Context, shop: ShopOption = None) -> None:
    """Run each enabled shop on its schedule until SIGINT/SIGTERM (foreground, for systemd)."""
    from shopcrm.sync.scheduler import serve

    cfg = state(ctx).config
    with _store(ctx) as store:
        serve(store, cfg, shop)


@app.command()
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
    )
    out.print(banner(sandbox, "bigcommerce-sandbox"), markup=False)
    sys.stdout.flush()
    try:
        sandbox.server.serve_forever()
    except KeyboardInterrupt:
        out.print("stopped", markup=False)
    finally:
        sandbox.stop()


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
) -> None:
    """Serve a seeded Shopify shop (Admin GraphQL, bulk operations, legacy REST) until Ctrl-C."""
    from shopcrm.sandbox.seed import generate
    from shopcrm.sandbox.shopify.app import ShopifySandbox, banner

    dataset = generate(customers=customers, seed=seed)
    sandbox = ShopifySandbox(dataset, port=port, bucket_size=bucket, restore_rate=restore_rate)
    out.print(banner(sandbox), markup=False)
    sys.stdout.flush()
    try:
        sandbox.server.serve_forever()
    except KeyboardInterrupt:
        out.print("stopped", markup=False)
    finally:
        sandbox.stop()


def _as_of_date(value: str | None) -> Any:
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--as-of {value!r} is not a date like 2026-03-01") from None


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Compute as of this date (YYYY-MM-DD); later orders are ignored. "
        "Default: today in each shop's timezone.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only (for scripts).")]


@app.command()
def enrich(
    ctx: typer.Context,
    shop: ShopOption = None,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute identity, purchase history, RFM, predicted CLV and segments (idempotent)."""
    import json

    from shopcrm.enrich.pipeline import run_enrich

    cfg = state(ctx).config
    cfg.selected(shop)
    day = _as_of_date(as_of)
    with _store(ctx) as store:
        report = run_enrich(store, cfg, shop_name=shop, as_of=day)
    if as_json:
        out.print(json.dumps(report.to_dict()), markup=False)
        return
    ident = report.identity
    out.print(
        f"identity: {ident.persons} persons ({ident.persons_created} new, "
        f"{ident.persons_deleted} removed), {report.person_metrics} person/currency histories",
        markup=False,
    )
    for s in report.shops:
        sizes = ", ".join(f"{name} {size}" for name, size in sorted(s.segments.items()) if size)
        out.print(
            f"{s.shop} (as of {s.as_of}, {s.currency or 'no currency'}): {s.customers} customers, "
            f"{s.buyers} buyers; model {s.model_status}: {s.model_message}\n"
            f"  segments: {sizes or 'none'} ({s.joined} joined, {s.left} left)",
            markup=False,
        )


@app.command()
def model(
    ctx: typer.Context,
    shop: Annotated[str, typer.Option("--shop", help="The shop whose models to fit.")],
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fit a shop's BG/NBD and Gamma-Gamma models and print them (writes nothing); exit 1 if
    there is too little data or the fit does not converge."""
    import json
    from dataclasses import asdict

    from shopcrm.enrich.pipeline import model_shop
    from shopcrm.errors import EXIT_FAILED

    cfg = state(ctx).config
    cfg.shop(shop)
    day = _as_of_date(as_of)
    with _store(ctx) as store:
        used_as_of, fitted = model_shop(store, cfg, shop, as_of=day)
    if as_json:
        out.print(
            json.dumps({"shop": shop, "as_of": used_as_of.isoformat(), **asdict(fitted)}),
            markup=False,
        )
    else:
        out.print(
            f"{shop} as of {used_as_of}: {fitted.customers} customers with a purchase, "
            f"{fitted.repeat_customers} repeat; {fitted.status}: {fitted.message}",
            markup=False,
        )
        if fitted.bgnbd is not None and fitted.gamma_gamma is not None:
            bg, gg = fitted.bgnbd, fitted.gamma_gamma
            out.print(
                f"BG/NBD       r {bg.r:.4g}  alpha {bg.alpha:.4g} days  a {bg.a:.4g}  b {bg.b:.4g}"
                f"  log-likelihood {fitted.log_likelihood['bgnbd']:.2f}\n"
                f"Gamma-Gamma  p {gg.p:.4g}  q {gg.q:.4g}  v {gg.v:.4g}"
                f"  log-likelihood {fitted.log_likelihood['gamma_gamma']:.2f}\n"
                f"fit time {fitted.fit_seconds:.2f} s",
                markup=False,
            )
    if not fitted.fitted:
        raise typer.Exit(EXIT_FAILED)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except typer.Abort:  # pragma: no cover - Ctrl-C at a prompt
        sys.exit(EXIT_USAGE)

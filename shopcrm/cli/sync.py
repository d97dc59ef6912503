"""`shopcrm sync | push | untag | run | schedule`: moving data between the shops and the store."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shopcrm.cli.common import ShopOption, open_configured_store, out, progress_bar, state


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
    from shopcrm.sync.lock import refuse_if_all_running

    cfg = state(ctx).shops_config
    refuse_if_all_running(cfg.database, [s.name for s in cfg.selected(shop)])

    from shopcrm.errors import RunFailed
    from shopcrm.sync.lock import raise_if_busy
    from shopcrm.sync.pull import pull_shops

    if skip_invalid:
        from shopcrm.connectors.csv.connector import skip_invalid_rows

        cfg = skip_invalid_rows(cfg)
    with open_configured_store(ctx) as store, progress_bar() as bar:
        results = pull_shops(store, cfg, shop, full=full, progress=bar)
    for r in results:
        status = "ok" if r.ok else ("LOCKED" if r.locked else "FAILED") + f": {r.error}"
        out.print(
            f"{r.shop}: {r.customers} customers, {r.orders} orders, {r.requests} requests, "
            f"{r.duration_s:.1f}s — {status}",
            markup=False,
        )
    failed = [r.shop for r in results if not (r.ok or r.locked or r.throttled)]
    if failed:
        raise RunFailed(f"sync failed for {len(failed)} shop(s): {', '.join(failed)}")
    raise_if_busy(
        [r.error or r.shop for r in results if r.locked],
        [r.error or r.shop for r in results if r.throttled],
    )


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
    from shopcrm.sync.lock import refuse_if_all_running

    cfg = state(ctx).shops_config
    refuse_if_all_running(cfg.database, [s.name for s in cfg.selected(shop)])

    from shopcrm.errors import LockHeld, PushRefused, RunFailed
    from shopcrm.sync.push import push_shops

    with open_configured_store(ctx) as store:
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


def push(
    ctx: typer.Context,
    shop: ShopOption = None,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
) -> None:
    """Send segment tags to the shops: only the difference, only tags with the prefix."""
    _push_and_report(ctx, shop, dry_run=dry_run, force=force)


def untag(
    ctx: typer.Context,
    shop: Annotated[str, typer.Option(help="The shop to untag.")],
    dry_run: DryRunOption = False,
) -> None:
    """Remove every shopcrm-managed tag from a shop; all other tags stay as they are."""
    _push_and_report(ctx, shop, untag=True, dry_run=dry_run)


def run(
    ctx: typer.Context,
    shop: ShopOption = None,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
) -> None:
    """Pull, enrich and push each shop once (the command for cron); exit 75 if a shop is locked."""
    from shopcrm.sync.lock import refuse_if_all_running

    cfg = state(ctx).shops_config
    refuse_if_all_running(cfg.database, [s.name for s in cfg.selected(shop)])

    from shopcrm.sync.run import raise_for_results, run_shops

    with open_configured_store(ctx) as store, progress_bar() as bar:
        results = run_shops(store, cfg, shop, force=force, dry_run=dry_run, progress=bar)
    for result in results:
        if result.push is not None:
            _print_push(result.push)
        status = "ok" if result.ok else ("LOCKED" if result.locked else f"FAILED: {result.error}")
        out.print(f"{result.shop}: run {status} ({result.duration_s:.1f}s)", markup=False)
    raise_for_results(results)


def schedule(ctx: typer.Context, shop: ShopOption = None) -> None:
    """Run each enabled shop on its schedule until SIGINT/SIGTERM (foreground, for systemd)."""
    from shopcrm.sync.scheduler import serve

    cfg = state(ctx).shops_config
    with open_configured_store(ctx) as store:
        serve(store, cfg, shop)


def register(app: typer.Typer) -> None:
    for command in (sync, push, untag, run, schedule):
        app.command()(command)

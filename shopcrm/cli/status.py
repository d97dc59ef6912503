"""`shopcrm status`: what each shop's last runs did, how fresh its data is, and a health check."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from shopcrm.cli.common import JsonOption, ShopOption, open_configured_store, out, state
from shopcrm.errors import EXIT_FAILED
from shopcrm.views.status import Count, ShopStatus, age_text, shop_statuses

CheckOption = Annotated[
    bool,
    typer.Option(
        "--check",
        help="Exit 1 if a shop's last run failed or its data is older than twice its schedule; "
        "one line per problem (for cron, systemd or Nagios-style monitoring).",
    ),
]


def status(
    ctx: typer.Context,
    shop: ShopOption = None,
    as_json: JsonOption = False,
    check: CheckOption = False,
) -> None:
    """Per shop: last run, data freshness, counts, last push, segment sizes, next run, lock."""
    cfg = state(ctx).config
    with open_configured_store(ctx) as store:
        statuses = shop_statuses(store, cfg, shop)
    problems = [p for s in statuses for p in s.problems]
    if as_json:
        out.print(
            json.dumps({"shops": [s.to_dict() for s in statuses], "problems": problems}),
            markup=False,
        )
    elif check:
        for problem in problems:
            out.print(problem, markup=False)
        if not problems:
            out.print(f"OK: {len(statuses)} shop(s) healthy", markup=False)
    else:
        for s in statuses:
            _print_shop(s)
    if check and problems:
        raise typer.Exit(EXIT_FAILED)


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "-"


def _count(count: Count) -> str:
    if count.change is None:
        return str(count.now)
    return f"{count.now} ({count.change:+d})"


def _print_shop(s: ShopStatus) -> None:
    flags = [s.platform, s.schedule]
    if not s.enabled:
        flags.append("disabled")
    if s.locked:
        flags.append("RUNNING NOW (lock held)")
    out.print(f"{s.name}  {', '.join(flags)}", style="bold", markup=False)
    run = s.last_run
    if run is None:
        out.print("  last run: never", markup=False)
    else:
        took = f" in {run.duration_s:.1f}s" if run.duration_s is not None else ""
        error = f": {run.error}" if run.error else ""
        out.print(
            f"  last {run.kind}: {_when(run.started_at)}{took}, {run.outcome}{error}", markup=False
        )
    table = Table("stream", "records", "last success", "newest data", box=None, pad_edge=False)
    for name in sorted(set(s.streams) | set(s.counts)):
        stream = s.streams.get(name)
        count = s.counts.get(name)
        table.add_row(
            name,
            _count(count) if count else "-",
            _when(stream.last_success_at) if stream else "-",
            f"{age_text(stream.age_s)} old" if stream and stream.age_s is not None else "-",
        )
    out.print(table)
    push = s.last_push
    if push is not None:
        out.print(
            f"  last push ({push.kind}): {_when(push.at)}, {push.outcome}: +{push.tags_added} "
            f"-{push.tags_removed} tags, {push.failed} failed",
            markup=False,
        )
    if s.segments:
        sizes = ", ".join(f"{name} {_count(c)}" for name, c in s.segments.items() if c.now)
        out.print(f"  segments: {sizes or 'all empty'}", markup=False)
    out.print(f"  next run: {_when(s.next_run_at) if s.enabled else 'disabled'}", markup=False)
    for problem in s.problems:
        out.print(f"  problem: {problem}", style="red", markup=False)
    out.print()


def register(app: typer.Typer) -> None:
    app.command()(status)

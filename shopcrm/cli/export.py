"""`shopcrm export ...`: the store's customers as files an email tool or a spreadsheet reads."""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Annotated

import typer

from shopcrm.cli.common import command_group, err, open_configured_store, state
from shopcrm.config.schema import AppConfig
from shopcrm.enrich.rfm import SEGMENTS as RFM_GROUPS
from shopcrm.enrich.segments import BUILT_IN, RFM_PREFIX
from shopcrm.errors import NoMatch, UsageError
from shopcrm.views.export import (
    FORMATS,
    METRIC_COLUMNS,
    Selection,
    customer_batches,
    snapshot_rows,
    write_export,
)

export_app = command_group("Write the store's customers (or their history) to a file.")

FormatOption = Annotated[
    str, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.", show_default=True)
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="The file to write (default: standard output; Parquet needs it)."),
]


def known_segments(config: AppConfig, shops: list[str]) -> set[str]:
    """Every segment name the selected shops can have: built-in, RFM groups, their rules."""
    names = set(BUILT_IN) | {RFM_PREFIX + group for group in RFM_GROUPS}
    for shop in shops:
        names |= {rule.name for rule in config.segment_rules(config.shop(shop))}
    return names


@export_app.command("customers")
def export_customers(
    ctx: typer.Context,
    segment: Annotated[
        list[str] | None,
        typer.Option("--segment", help="Only customers in this segment (repeat: in any of them)."),
    ] = None,
    shop: Annotated[
        list[str] | None, typer.Option("--shop", help="Only this shop (repeatable).")
    ] = None,
    fmt: FormatOption = "csv",
    out: OutOption = None,
) -> None:
    """Customers with their segments and metrics, one row each (docs/operating.md, "Exports")."""
    cfg = state(ctx).config
    shops = [cfg.shop(name).name for name in shop or []]
    segments = list(dict.fromkeys(segment or []))
    known = known_segments(cfg, shops or [s.name for s in cfg.shops])
    unknown = [s for s in segments if s not in known]
    if unknown:
        raise UsageError(
            f"unknown segment {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})"
        )
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: give one of {', '.join(FORMATS)}")
    selection = Selection(shops=shops, segments=segments)
    with open_configured_store(ctx) as store:
        batches = customer_batches(store, selection)
        first = next(batches, None)
        if first is None:
            what = f"segment {', '.join(segments)}" if segments else "the store"
            raise NoMatch(f"no customers to export: {what} has no members for the shops asked")
        count = write_export(chain([first], batches), fmt, out)
    if out is not None:
        err.print(f"wrote {count} customers to {out}", markup=False)


@export_app.command("metrics")
def export_metrics(
    ctx: typer.Context,
    shop: Annotated[str | None, typer.Option("--shop", help="Only this shop.")] = None,
    period: Annotated[str, typer.Option("--period", help="month or day.")] = "month",
    rollup_: Annotated[
        bool,
        typer.Option("--rollup", help="Add each currency's totals across shops (shop 'all')."),
    ] = False,
    fmt: FormatOption = "csv",
    out: OutOption = None,
) -> None:
    """The CRM metrics over time, per shop, currency and period (docs/enrichment.md, "Trends")."""
    from shopcrm.store.history import metric_snapshots, rollup

    cfg = state(ctx).config
    if shop is not None:
        cfg.shop(shop)
    if period not in ("month", "day"):
        raise UsageError(f"--period {period!r}: give month or day")
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: give one of {', '.join(FORMATS)}")
    with open_configured_store(ctx) as store:
        snapshots = metric_snapshots(store, shop, period=period)
    if rollup_:
        snapshots = [*snapshots, *rollup(snapshots)]
    if not snapshots:
        raise NoMatch("no metrics to export yet: run `shopcrm enrich` (or `run`) first")
    count = write_export(snapshot_rows(snapshots), fmt, out, METRIC_COLUMNS)
    if out is not None:
        err.print(f"wrote {count} rows to {out}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")

"""`shopcrm customer EMAIL | SHOP:ID`: one person across every shop, as the store knows them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from shopcrm.cli.common import JsonOption, open_configured_store, out, state
from shopcrm.errors import NoMatch, UsageError
from shopcrm.views.profile import MAX_CANDIDATES, Candidate, Profile, find

METRICS_SHOWN = (
    ("orders_count", "orders"),
    ("total_spent", "spent (net)"),
    ("average_order_value", "average order"),
    ("first_order_at", "first order"),
    ("last_order_at", "last order"),
    ("days_since_last_order", "days since last"),
    ("recency_score", "R"),
    ("frequency_score", "F"),
    ("monetary_score", "M"),
    ("rfm_segment", "RFM group"),
    ("rfm_segment_since", "  in it since"),
    ("previous_rfm_segment", "  previous group"),
    ("p_alive", "P(alive)"),
    ("expected_purchases", "expected purchases"),
    ("predicted_clv", "predicted value"),
)


def customer(
    ctx: typer.Context,
    who: Annotated[str, typer.Argument(help="An email (or part of one), or SHOP:ID.")],
    as_json: JsonOption = False,
) -> None:
    """One person across every shop: identities, orders, metrics, segments, pushed tags."""
    cfg = state(ctx).config
    with open_configured_store(ctx) as store:
        found = find(store, who, [s.name for s in cfg.shops])
    if isinstance(found, Profile):
        if as_json:
            out.print(json.dumps(found.to_dict()), markup=False)
        else:
            _print_profile(found)
        return
    if not found:
        raise NoMatch(f"no customer matches {who!r} (give an email, or SHOP:ID)")
    raise UsageError(_choices(who, found))


def _choices(who: str, found: list[Candidate]) -> str:
    shown = found[:MAX_CANDIDATES]
    more = "more than " if len(found) > len(shown) else ""
    lines = [f"{more}{len(shown)} customers match {who!r}; give the email or SHOP:ID of one:"]
    lines += [f"  {c.email or '-'}  {c.shop}:{c.platform_id}  {c.name}" for c in shown]
    return "\n".join(lines)


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d}"
    return str(value)


def _print_profile(profile: Profile) -> None:
    out.print(f"{profile.email or 'no email'}", style="bold", markup=False)
    for i in profile.identities:
        name = " ".join(p for p in (i.first_name, i.last_name) if p) or "-"
        gone = " (deleted upstream)" if i.deleted else ""
        out.print(f"  {i.shop} ({i.platform}) {i.platform_id}: {name}{gone}", markup=False)
    table = Table("date", "shop", "number", "total", "refunded", "status", box=None)
    for o in profile.orders:
        table.add_row(
            f"{o.at:%Y-%m-%d}",
            o.shop,
            o.number or o.platform_id,
            f"{o.total} {o.currency}",
            f"{o.refunded}" if o.refunded else "-",
            o.status,
        )
    out.print(f"orders ({len(profile.orders)}):", markup=False)
    out.print(table)
    for m in profile.person_metrics:
        last = f", last {m['last_order_at']:%Y-%m-%d}" if m["last_order_at"] else ""
        out.print(
            f"all shops, {m['currency']}: {m['orders_count']} orders, "
            f"{m['total_spent']} {m['currency']} spent{last}",
            markup=False,
        )
    for i in profile.identities:
        out.print(f"{i.shop}:", style="bold", markup=False)
        if i.metrics:
            currency = i.metrics.get("currency") or ""
            for key, label in METRICS_SHOWN:
                value = i.metrics.get(key)
                money = key in ("total_spent", "average_order_value", "predicted_clv")
                suffix = f" {currency}" if money and value is not None else ""
                out.print(f"  {label:<20} {_value(value)}{suffix}", markup=False)
        else:
            out.print("  no metrics yet (run `shopcrm enrich`)", markup=False)
        segments = ", ".join(f"{s} since {d}" for s, d in i.segments.items())
        out.print(f"  segments: {segments or 'none'}", markup=False)
        for push in i.pushes[:3]:
            changes = [f"+{t}" for t in push["added"]] + [f"-{t}" for t in push["removed"]]
            out.print(
                f"  pushed {push['at']:%Y-%m-%d %H:%M}: {' '.join(changes)} ({push['outcome']})",
                markup=False,
            )


def register(app: typer.Typer) -> None:
    app.command()(customer)

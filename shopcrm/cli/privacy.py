"""`shopcrm forget` and `shopcrm export person`: the right to erasure and the right of access
(docs/privacy.md), over `store.privacy`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shopcrm.cli.common import open_configured_store, out
from shopcrm.cli.export import export_app
from shopcrm.errors import EXIT_FAILED
from shopcrm.views.export import replacing

WhoArgument = Annotated[
    str,
    typer.Argument(
        metavar="EMAIL|SHOP:ID",
        help="A person's email (every shop), or SHOP:ID for one customer of one shop.",
    ),
]


def forget(
    ctx: typer.Context,
    who: WhoArgument,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a person's personal data from the store, keeping anonymous order amounts so the
    shops' metrics stay the same; exit 1 when nobody matches."""
    from contextlib import ExitStack
    from datetime import UTC, datetime

    from shopcrm.enrich.pipeline import ENRICH_LOCK_WAIT_S, enrichment_lock
    from shopcrm.store.privacy import forget as forget_in_store
    from shopcrm.store.privacy import parse_selector
    from shopcrm.sync.lock import shop_lock

    selector = parse_selector(who)
    with open_configured_store(ctx) as store:
        with store.session() as session:
            plan = forget_in_store(session, selector, datetime.now(UTC), dry_run=True)
        summary = (
            f"{plan.customers} customer account(s), {plan.orders} order(s), "
            f"{plan.memberships} segment membership(s) in {', '.join(plan.shops)}"
        )
        if dry_run:
            out.print(f"would forget {summary}; nothing changed (dry run)", markup=False)
            return
        if not yes and not typer.confirm(f"forget {summary}?", default=False):
            out.print("nothing forgotten", markup=False)
            raise typer.Exit(EXIT_FAILED)
        with ExitStack() as held:
            # no sync of these shops may write what it read before the forget (refused at
            # once, exit 75, while one runs), and no enrichment memberships computed before it
            for name in plan.shops:
                held.enter_context(shop_lock(store, name))
            held.enter_context(enrichment_lock(store, ENRICH_LOCK_WAIT_S))
            with store.session() as session:
                done = forget_in_store(session, selector, datetime.now(UTC))
    out.print(
        f"forgot {done.customers} customer account(s) and {done.orders} order(s) in "
        f"{', '.join(done.shops)}; amounts kept anonymously",
        markup=False,
    )


@export_app.command("person")
def export_person(
    ctx: typer.Context,
    who: WhoArgument,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON here (default: stdout).")
    ] = None,
) -> None:
    """Everything the store holds about one person as JSON: identities per shop, orders with
    lines, metrics, segments, push log; exit 1 when nobody matches."""
    import json

    from shopcrm.store.privacy import export_person as export_from_store
    from shopcrm.store.privacy import parse_selector

    selector = parse_selector(who)
    with open_configured_store(ctx) as store, store.session() as session:
        data = export_from_store(session, selector)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if out_file is None:
        out.print(text, markup=False, end="")
        return
    with replacing(out_file) as temp:
        temp.write_text(text, encoding="utf-8")
    out.print(f"wrote {out_file}", markup=False)


def register(app: typer.Typer) -> None:
    app.command()(forget)  # `export person` joins the export group (cli/export.py)

"""`shopcrm enrich` and `shopcrm model`: computing what the store knows of each customer."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shopcrm.cli.common import JsonOption, ShopOption, open_configured_store, out, state
from shopcrm.errors import UsageError


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


def enrich(
    ctx: typer.Context,
    shop: ShopOption = None,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute identity, purchase history, RFM, predicted CLV and segments (idempotent)."""
    import json

    from shopcrm.enrich.pipeline import run_enrich

    cfg = state(ctx).shops_config
    cfg.selected(shop)
    day = _as_of_date(as_of)
    with open_configured_store(ctx) as store:
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

    cfg = state(ctx).shops_config
    cfg.shop(shop)
    day = _as_of_date(as_of)
    with open_configured_store(ctx) as store:
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


def register(app: typer.Typer) -> None:
    app.command()(enrich)
    app.command()(model)

"""`run_enrich`: identity, purchase history, RFM, CLV and segments for the store's shops.

Order of work: identity first (global, its own transaction), then one snapshot read of every
order, the histories of persons and of each selected shop's customers, the order lines of the
groups whose histories changed (top products), then person metrics (global) and each selected
shop in its own transaction (metrics and memberships together). Every metric is recomputed
from each customer's full history, so a rerun with the same data and as-of date writes the
same rows (idempotent).

One enrichment of a store runs at a time (a lock on the store, `store.locks`): a second one
waits for the first to finish, then works from its own snapshot, so no enrichment ever writes
results computed from data older than what another has already written.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shopcrm.config.schema import AppConfig, ShopConfig
from shopcrm.enrich import clv, history, rfm, segments, trends
from shopcrm.enrich.codes import distinct_codes
from shopcrm.enrich.dbio import executor_for
from shopcrm.enrich.history import History
from shopcrm.enrich.identity import (
    IdentityReport,
    count_persons,
    delete_orphans,
    link_customers,
    link_guest_orders,
)
from shopcrm.enrich.load import (
    Customers,
    LineColumns,
    Lines,
    Orders,
    ShopInfo,
    load_lines,
    load_shops,
    load_store,
    metrics_stored,
)
from shopcrm.enrich.purchases import (
    MICROS_PER_DAY,
    day_number,
    day_of,
    is_purchase,
    local_days,
    today_in,
)
from shopcrm.enrich.rules import Column, parse_rule
from shopcrm.enrich.snapshots import write_cohorts, write_snapshots
from shopcrm.enrich.write import (
    MetricsRows,
    ScoreRows,
    StoredRows,
    customer_rows,
    metrics_rows_for,
    next_rfm_state,
    order_set_digests,
    stale_histories,
    stored_customer_metrics,
    stored_person_metrics,
    stored_rfm_state,
    sync_memberships,
    with_top_products,
    write_customer_metrics,
    write_person_metrics,
)
from shopcrm.errors import LockHeld, UsageError
from shopcrm.store.db import Store
from shopcrm.store.locks import store_lock
from shopcrm.store.types import from_micros

Ints = NDArray[np.int64]
ENRICH_LOCK_WAIT_S = 600.0  # how long an enrichment waits for another one to finish
# "write_persons" runs on a second thread, beside "history" .. "segments" of the first shop.
STAGES = (
    "identity",
    "load",
    "history",
    "rfm",
    "changes",
    "fit",
    "segments",
    "snapshots",
    "write",
    "write_persons",
)
HISTORY_MONTHS = 24  # months of metric snapshots and cohorts computed from the orders


class Timings:
    """Seconds spent per stage, summed over shops."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class ShopReport:
    shop: str
    as_of: date
    currency: str | None
    customers: int
    buyers: int
    other_currency_orders: int
    model_status: str
    model_message: str
    segments: dict[str, int]
    joined: int
    left: int


@dataclass(frozen=True, slots=True)
class EnrichReport:
    identity: IdentityReport
    person_metrics: int
    shops: list[ShopReport]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for shop in data["shops"]:
            shop["as_of"] = shop["as_of"].isoformat()
        return data


@dataclass(frozen=True, slots=True)
class _Snapshot:
    shops: dict[str, ShopInfo]
    customers: Customers
    orders: Orders
    local_day: Ints
    lines: LineColumns | None  # every order line, read beside the orders on a first run


def _snapshot(store: Store) -> _Snapshot:
    with store.engine.connect() as conn:
        shops = {s.name: s for s in load_shops(conn)}
        first = not metrics_stored(conn)
    customers, orders, lines = load_store(store.engine, every_line=first)
    day = np.zeros(len(orders), dtype=np.int64)
    for shop in shops.values():
        mask = orders.shop_id == shop.id
        day[mask] = local_days(orders.created_us[mask], shop.timezone)
    return _Snapshot(shops, customers, orders, day, lines)


def _identity_and_snapshot(
    store: Store, now: datetime, timings: Timings
) -> tuple[IdentityReport, _Snapshot]:
    """Link customers, read the snapshot through those links, then fix the guest orders it
    found unlinked (identity.py: only what is wrong is written)."""
    with store.engine.begin() as conn, timings.stage("identity"):
        before = count_persons(conn)
        relinked = link_customers(conn, now)
    with timings.stage("load"):
        snap = _snapshot(store)
    with store.engine.begin() as conn, timings.stage("identity"):
        o = snap.orders
        where = np.flatnonzero(o.relink)
        guests = link_guest_orders(conn, o.order_id[where], now)
        for i, order_id in zip(where.tolist(), o.order_id[where].tolist(), strict=True):
            if order_id in guests:
                o.person_id[i] = guests[order_id]
        deleted = delete_orphans(conn)
        after = count_persons(conn)
    return IdentityReport(relinked + len(where), after - before + deleted, deleted, after), snap


@dataclass(frozen=True, slots=True)
class _Groups:
    """Purchase histories of groups of orders (persons by currency, or a shop's customers)."""

    group: Ints  # per order: its group, -1 for none
    rows: MetricsRows  # without top products yet


def _with_top_products(lines: Lines, groups: _Groups, stale: NDArray[np.bool_]) -> MetricsRows:
    """The groups' rows with the top products of those whose history changed (`stale`): only
    their orders' lines were read, and only their rows are written whole."""
    line_group = groups.group[lines.order_index] if len(lines.order_index) else lines.order_index
    texts = history.top_products_json(
        line_group, lines.product, lines.quantity, lines.labels, len(stale)
    )
    tops = [text if needed else None for text, needed in zip(texts, stale.tolist(), strict=True)]
    return with_top_products(groups.rows, tops)


def _shop_currency(snap: _Snapshot, shop: ShopInfo, cfg: ShopConfig) -> str | None:
    """The shop's currency: from the store, the config, or else its most used order currency."""
    if shop.currency:
        return shop.currency
    configured = getattr(cfg, "currency", None)
    if configured:
        return str(configured)
    used = Counter(snap.orders.currency[snap.orders.shop_id == shop.id].tolist())
    if not used:
        return None
    code = min(used, key=lambda c: (-used[c], snap.orders.currencies[c]))
    return snap.orders.currencies[code]


def _person_groups(snap: _Snapshot, as_of_day: int, timings: Timings) -> _Groups:
    o = snap.orders
    with timings.stage("history"):
        counted = is_purchase(o.cancelled, o.void_status, o.net_micros, snap.local_day, as_of_day)
        counted &= o.person_id >= 0
        width = max(len(o.currencies), 1)
        keys, inverse = distinct_codes(o.person_id[counted] * width + o.currency[counted])
        group = np.full(len(o), -1, dtype=np.int64)
        group[counted] = inverse
        h = history.purchase_history(
            group[counted],
            o.created_us[counted],
            snap.local_day[counted],
            o.net_micros[counted],
            len(keys),
            as_of_day,
        )
        # A person spans shops and timezones: their days since the last order are UTC days,
        # which the store can recount by itself each day (write.write_person_metrics).
        h = replace(h, days_since_last=as_of_day - h.last_us // MICROS_PER_DAY)
        rows = metrics_rows_for(
            keys // width,
            [o.currencies[c] for c in (keys % width).tolist()],
            h,
            order_set_digests(group, o.order_id, o.version_us, len(keys)),
        )
    return _Groups(group, rows)


@dataclass(frozen=True, slots=True)
class _ShopData:
    customer_ids: Ints
    counted: NDArray[np.bool_]  # over all orders: this shop's customers' purchases
    group: Ints  # over all orders: customer index, -1 elsewhere
    as_of_day: int
    currency: str | None
    other_currency: int


def _shop_data(
    snap: _Snapshot, shop: ShopInfo, customer_ids: Ints, currency: str | None, as_of_day: int
) -> _ShopData:
    o = snap.orders
    mine = (o.shop_id == shop.id) & (o.customer_id >= 0)
    counted = mine & is_purchase(
        o.cancelled, o.void_status, o.net_micros, snap.local_day, as_of_day
    )
    code = snap.orders.currencies.index(currency) if currency in o.currencies else -1
    same = o.currency == code
    other = int(np.count_nonzero(counted & ~same))
    counted &= same
    group = np.full(len(o), -1, dtype=np.int64)
    group[counted] = np.searchsorted(customer_ids, o.customer_id[counted])
    return _ShopData(customer_ids, counted, group, as_of_day, currency, other)


def summarise_shop(snap: _Snapshot, data: _ShopData) -> tuple[Ints, clv.RepeatSummary]:
    o = snap.orders
    c = data.counted
    return history.repeat_summary(
        data.group[c],
        o.created_us[c],
        snap.local_day[c],
        o.net_micros[c],
        len(data.customer_ids),
        data.as_of_day,
    )


def _money_micros(values: NDArray[np.float64]) -> Ints:
    """Model estimates as micro-units, rounded to 0.01 of the currency (they are estimates)."""
    return (np.rint(values * 100).astype(np.int64)) * 10_000


@dataclass(frozen=True, slots=True)
class _ShopHistory:
    cfg: ShopConfig
    shop: ShopInfo
    as_of: date
    data: _ShopData  # with the shop's currency
    history: History
    groups: _Groups


def _shop_history(
    snap: _Snapshot, cfg: ShopConfig, shop: ShopInfo, as_of: date, timings: Timings
) -> _ShopHistory:
    o = snap.orders
    with timings.stage("load"):
        customer_ids = snap.customers.of_shop(shop.id)
    with timings.stage("history"):
        currency = _shop_currency(snap, shop, cfg)
        data = _shop_data(snap, shop, customer_ids, currency, day_number(as_of))
        c = data.counted
        n = len(customer_ids)
        h = history.purchase_history(
            data.group[c],
            o.created_us[c],
            snap.local_day[c],
            o.net_micros[c],
            n,
            data.as_of_day,
        )
        digests = order_set_digests(data.group, o.order_id, o.version_us, n)
        rows = metrics_rows_for(customer_ids, [currency] * n, h, digests)
    return _ShopHistory(cfg, shop, as_of, data, h, _Groups(data.group, rows))


def _stale_and_lines(
    store: Store, snap: _Snapshot, persons: _Groups, shops: list[_ShopHistory]
) -> tuple[list[StoredRows], list[NDArray[np.bool_]], Lines]:
    """The stored metrics rows (persons first, then each shop's), which groups' histories
    changed since, and the lines of their orders: a rerun reads the lines of changed groups
    only. The writes use the same stored rows (the enrichment lock keeps them current)."""
    with store.engine.connect() as conn:
        stored = [stored_person_metrics(conn, persons.rows)]
        stored += [stored_customer_metrics(conn, sh.shop.id, sh.groups.rows) for sh in shops]
    groups = [persons, *(sh.groups for sh in shops)]
    stale = [
        stale_histories(rows, g.rows.history_prints) for rows, g in zip(stored, groups, strict=True)
    ]
    wanted = np.zeros(len(snap.orders), dtype=bool)
    for g, changed in zip(groups, stale, strict=True):
        mine = g.group >= 0
        wanted[mine] |= changed[g.group[mine]]
    return stored, stale, load_lines(store.engine, snap.orders, wanted, snap.lines)


def _enrich_shop(
    store: Store,
    config: AppConfig,
    snap: _Snapshot,
    sh: _ShopHistory,
    rows: MetricsRows,
    stored: StoredRows,
    now: datetime,
    timings: Timings,
    before_write: Callable[[], object],
) -> ShopReport:
    """One shop's scores, model and segments, computed outside any transaction and written
    in one, after `before_write` returns (the person metrics writer's turn)."""
    cfg, shop, as_of, data, h = sh.cfg, sh.shop, sh.as_of, sh.data, sh.history
    currency = data.currency
    customer_ids = data.customer_ids
    n = len(customer_ids)
    buyers = np.flatnonzero(h.buyers)
    with timings.stage("rfm"):
        r = np.zeros(n, dtype=np.int64)
        f, m = r.copy(), r.copy()
        seg = np.full(n, None, dtype=object)
        r[buyers], f[buyers], m[buyers] = rfm.rfm_scores(
            h.days_since_last[buyers], h.orders_count[buyers], h.total_micros[buyers]
        )
        seg[buyers] = rfm.segment_names(r[buyers], f[buyers], m[buyers])
    with timings.stage("changes"):
        with store.engine.connect() as conn:
            stored_rfm = stored_rfm_state(conn, shop.id, customer_ids)
        now_us = (now - _EPOCH) // timedelta(microseconds=1)
        rfm_state = next_rfm_state(stored_rfm, seg, now_us)
        in_group = rfm_state.since_us >= 0
        since_day = local_days(rfm_state.since_us, shop.timezone)
        days_in_group = np.where(in_group, np.maximum(data.as_of_day - since_day, 0), 0)
    with timings.stage("fit"):
        owners, summary = summarise_shop(snap, data)
        model = clv.fit_shop(summary, config.defaults.clv)
        p_alive = np.full(n, np.nan)
        expected = np.full(n, np.nan)
        eov = np.full(n, -1, dtype=np.int64)
        value = eov.copy()
        if model.fitted:
            assert model.bgnbd is not None
            assert model.gamma_gamma is not None
            settings = config.defaults.clv
            pred = clv.predict(
                model.bgnbd,
                model.gamma_gamma,
                summary,
                settings.horizon_days,
                settings.annual_discount_rate,
            )
            if _usable(pred):
                p_alive[owners] = pred.p_alive
                expected[owners] = pred.expected_purchases
                eov[owners] = _money_micros(pred.expected_order_value)
                value[owners] = _money_micros(pred.clv)
            else:
                model = clv.ShopModel(
                    "failed",
                    "model predictions are not finite (parameters at the edge of the formulas)",
                    model.customers,
                    model.repeat_customers,
                    model.bgnbd,
                    model.gamma_gamma,
                    model.log_likelihood,
                    model.fit_seconds,
                )
    with timings.stage("segments"):
        bought = h.orders_count > 0
        scored = r > 0
        modelled = ~np.isnan(p_alive)
        cols = {
            "orders_count": Column(h.orders_count, np.ones(n, bool)),
            "total_spent": Column(h.total_micros, np.ones(n, bool)),
            "average_order_value": Column(h.aov_micros, bought),
            "mean_days_between_orders": Column(h.mean_days_between, ~np.isnan(h.mean_days_between)),
            "days_since_last_order": Column(h.days_since_last, bought),
            "days_since_first_order": Column(data.as_of_day - h.first_day, bought),
            "recency_score": Column(r, scored),
            "frequency_score": Column(f, scored),
            "monetary_score": Column(m, scored),
            "rfm_segment": Column(seg, scored),
            "p_alive": Column(p_alive, modelled),
            "expected_purchases": Column(expected, modelled),
            "expected_order_value": Column(eov, eov >= 0),
            "predicted_clv": Column(value, value >= 0),
            "currency": Column(
                np.full(n, currency, dtype=object), np.full(n, currency is not None)
            ),
            "previous_rfm_segment": Column(rfm_state.previous, rfm_state.previous != None),  # noqa: E711
            "days_in_rfm_segment": Column(days_in_group, in_group),
        }
        masks = segments.built_in(cols, model.fitted)
        rules = [(rule.name, parse_rule(rule.rule)) for rule in config.segment_rules(cfg)]
        masks.update(segments.user_defined(rules, cols))
        # a forgotten customer counts in the shop's metrics but is in no segment
        forgotten = snap.customers.redacted_of_shop(shop.id)
        masks = {name: mask & ~forgotten for name, mask in masks.items()}
    with timings.stage("snapshots"):
        snapshot_rows, cohort_cells = _trends(snap, shop, currency, data.as_of_day, masks, seg)
    with timings.stage("write"):
        scores = ScoreRows(
            r, f, m, seg, p_alive, expected, eov, value, rfm_state.previous, rfm_state.since_us
        )
        digested = customer_rows(rows, scores)
        before_write()
        with store.engine.begin() as conn:
            write_customer_metrics(conn, shop.id, digested, now, stored)
            changes = sync_memberships(conn, shop.id, customer_ids, masks, as_of, now)
            write_snapshots(conn, shop.id, snapshot_rows, as_of, now)
            write_cohorts(conn, shop.id, cohort_cells)
    return ShopReport(
        shop=shop.name,
        as_of=as_of,
        currency=currency,
        customers=n,
        buyers=len(buyers),
        other_currency_orders=data.other_currency,
        model_status=model.status,
        model_message=model.message,
        segments=changes.members,
        joined=changes.joined,
        left=changes.left,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _trends(
    snap: _Snapshot,
    shop: ShopInfo,
    currency: str | None,
    as_of_day: int,
    masks: segments.Masks,
    seg: NDArray[np.object_],
) -> tuple[list[dict[str, Any]], dict[tuple[date, int], tuple[int, int]]]:
    """The shop's snapshot rows per currency (its months up to `HISTORY_MONTHS` back, and the
    as-of day) and its cohort cells, from the orders already loaded (docs/enrichment.md
    "Trends"). Segment and RFM group counts are those of this enrichment: only the rows of
    the periods holding the as-of date, in the shop's currency, get them."""
    o = snap.orders
    counted = (o.shop_id == shop.id) & is_purchase(
        o.cancelled, o.void_status, o.net_micros, snap.local_day, as_of_day
    )
    buyer, day, net = o.person_id[counted], snap.local_day[counted], o.net_micros[counted]
    month, code = trends.month_numbers(day), o.currency[counted]
    last = int(trends.month_numbers(np.array([as_of_day]))[0])
    as_of = day_of(as_of_day)
    groups = Counter(s for s in seg.tolist() if s is not None)
    state = {
        "segments": {name: int(np.count_nonzero(mask)) for name, mask in sorted(masks.items())},
        "rfm_groups": {name: groups[name] for name in rfm.SEGMENTS},
    }
    rows: list[dict[str, Any]] = []
    for c in np.unique(code).tolist():
        mine = code == c
        name = o.currencies[c]
        months = np.arange(max(int(month[mine].min()), last - HISTORY_MONTHS + 1), last + 1)
        b = trends.buyers(buyer[mine], day[mine])
        for period, ends, measures in (
            (
                "month",
                [trends.month_end(m) for m in months.tolist()],
                trends.period_measures(b, month[mine], net[mine], months, trends.month_numbers),
            ),
            (
                "day",
                [as_of],
                trends.period_measures(b, day[mine], net[mine], np.array([as_of_day])),
            ),
        ):
            for i, end in enumerate(ends):
                now_state = name == currency and end >= as_of
                rows.append(_snapshot_row(name, period, end, as_of, measures, i, state, now_state))
    cohorts = trends.cohort_retention(buyer, month, last, HISTORY_MONTHS)
    cells = {
        (trends.month_start(c), k): (n, a)
        for c, k, n, a in zip(
            cohorts.cohort_month.tolist(),
            cohorts.months_since.tolist(),
            cohorts.customers.tolist(),
            cohorts.active.tolist(),
            strict=True,
        )
    }
    return rows, cells


def _snapshot_row(
    currency: str,
    period: str,
    end: date,
    as_of: date,
    m: trends.Measures,
    i: int,
    state: dict[str, dict[str, int]],
    with_state: bool,
) -> dict[str, Any]:
    aov = int(m.aov_micros[i])
    frequency, repeat = float(m.purchase_frequency[i]), float(m.repeat_purchase_rate[i])
    return {
        "currency": currency,
        "period": period,
        "period_end": end,
        "as_of": as_of,
        "customers": int(m.customers[i]),
        "new_customers": int(m.new_customers[i]),
        "returning_customers": int(m.returning_customers[i]),
        "orders": int(m.orders[i]),
        "net_revenue": from_micros(int(m.net_micros[i])),
        "average_order_value": from_micros(aov) if aov >= 0 else None,
        "purchase_frequency": None if np.isnan(frequency) else frequency,
        "customers_to_date": int(m.customers_to_date[i]),
        "repeat_customers_to_date": int(m.repeat_to_date[i]),
        "repeat_purchase_rate": None if np.isnan(repeat) else repeat,
        "segments": state["segments"] if with_state else None,
        "rfm_groups": state["rfm_groups"] if with_state else None,
    }


def _usable(pred: clv.Predictions) -> bool:
    arrays = (pred.p_alive, pred.expected_purchases, pred.expected_order_value, pred.clv)
    return all(bool(np.all(np.isfinite(a))) and bool(np.all(a >= 0)) for a in arrays)


def run_enrich(
    store: Store,
    config: AppConfig,
    *,
    shop_name: str | None = None,
    as_of: date | None = None,
    now: datetime | None = None,
    lock_wait_s: float | None = None,
) -> EnrichReport:
    """Compute identity, history, RFM, CLV and segments and write them to the store.

    Args:
        store: the open store.
        config: the app config (shops, CLV settings, segment rules).
        shop_name: only this shop's customers (identity and person metrics stay global).
        as_of: the date metrics are computed at; orders after it are ignored. Default: today
            in each shop's timezone (UTC for person metrics).
        now: the current time (tests pin it).
        lock_wait_s: how long to wait for another enrichment of the store to finish
            (default `ENRICH_LOCK_WAIT_S`).

    Returns:
        Per-shop counts, segment sizes and model status, and seconds per stage.

    Raises:
        UsageError: `shop_name` is not in the config.
        LockHeld: another enrichment still held the store after the wait.
    """
    now = now or datetime.now(UTC)
    selected = config.selected(shop_name)
    with enrichment_lock(store, ENRICH_LOCK_WAIT_S if lock_wait_s is None else lock_wait_s):
        return _enrich(store, config, selected, shop_name, as_of, now)


def enrichment_lock(store: Store, wait_s: float) -> AbstractContextManager[None]:
    """The store's enrichment lock, waited for up to `wait_s` (see the module's docstring)."""
    return store_lock(
        store,
        # `.shop.db.shopcrm-enrich.lock` beside `shop.db`: another store in that folder is
        # enriched independently
        file=f"{Path(store.engine.url.database or 'memory').name}.shopcrm-enrich",
        advisory="shopcrm-enrich",  # advisory locks are per database already
        wait_s=wait_s,
        what="another enrichment of this store",
        refused=lambda holder: LockHeld(
            f"another enrichment of this store was still running after {wait_s:g} s "
            f"({holder}); this one gave up waiting (retry later)"
        ),
    )


def _enrich(
    store: Store,
    config: AppConfig,
    selected: list[ShopConfig],
    shop_name: str | None,
    as_of: date | None,
    now: datetime,
) -> EnrichReport:
    timings = Timings()
    identity, snap = _identity_and_snapshot(store, now, timings)
    person_day = as_of or now.date()
    persons = _person_groups(snap, day_number(person_day), timings)
    shops = []
    for cfg in selected:
        shop = snap.shops.get(cfg.name)
        if shop is None:
            if shop_name is not None:
                raise UsageError(
                    f"shop {cfg.name!r} has no data in the store yet: run a sync first"
                )
            continue
        shop_as_of = as_of or today_in(shop.timezone, now)
        shops.append(_shop_history(snap, cfg, shop, shop_as_of, timings))
    with timings.stage("load"):
        stored, stale, lines = _stale_and_lines(store, snap, persons, shops)
    with timings.stage("history"):
        person_rows = _with_top_products(lines, persons, stale[0])

    def write_persons() -> None:
        with store.engine.begin() as conn, timings.stage("write_persons"):
            write_person_metrics(conn, person_rows, person_day, now, stored[0])

    reports = []
    # The person metrics are written on a second thread while the shops are computed: SQLite
    # works without the GIL, so that part of the write overlaps the computation (binding the
    # values does not; BENCHMARKS.md measures what the overlap gains).
    with executor_for(store.engine, 1) as writer:
        persons_written = writer.submit(write_persons)
        for sh, shop_stored, changed in zip(shops, stored[1:], stale[1:], strict=True):
            with timings.stage("history"):
                rows = _with_top_products(lines, sh.groups, changed)
            reports.append(
                _enrich_shop(
                    store, config, snap, sh, rows, shop_stored, now, timings, persons_written.result
                )
            )
        persons_written.result()
    return EnrichReport(identity, len(person_rows.key), reports, dict(timings.seconds))


def model_shop(
    store: Store,
    config: AppConfig,
    shop_name: str,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> tuple[date, clv.ShopModel]:
    """Fit one shop's CLV models without writing anything (for `shopcrm model`).

    Raises:
        UsageError: the shop is not in the config or has no data in the store.
    """
    now = now or datetime.now(UTC)
    cfg = config.shop(shop_name)
    snap = _snapshot(store)
    shop = snap.shops.get(cfg.name)
    if shop is None:
        raise UsageError(f"shop {cfg.name!r} has no data in the store yet: run a sync first")
    customer_ids = snap.customers.of_shop(shop.id)
    shop_as_of = as_of or today_in(shop.timezone, now)
    currency = _shop_currency(snap, shop, cfg)
    data = _shop_data(snap, shop, customer_ids, currency, day_number(shop_as_of))
    _, summary = summarise_shop(snap, data)
    return shop_as_of, clv.fit_shop(summary, config.defaults.clv)

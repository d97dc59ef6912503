"""Idempotent upserts and checkpoints (`shopcrm.store.upsert.write_page`) on SQLite and PostgreSQL.

The property test plays a source whose records change over time against the store: honest sync
passes (sorted by `updated_at`, or in any order with only the last page vouching for a
high-water mark), crashes (a page's transaction rolled back) followed by a retry or a resume
from the checkpoint, duplicated pages, stale pages replayed late and stray old versions. After
every step the store must hold exactly the newest version seen of every record, once, with its
order lines replaced as a whole, and the checkpoint must never claim data the store lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from shopcrm.records import CustomerRecord, OrderLineRecord, OrderRecord, Page
from shopcrm.store.db import Store
from shopcrm.store.upsert import CUSTOMERS, ORDERS, ensure_shop, write_page
from tests._factories import (
    NOW,
    UPDATED_AT_INDEX,
    at,
    customer,
    customer_key,
    high_water_mark,
    order,
    order_key,
    reset,
    snapshot,
)

Record = CustomerRecord | OrderRecord
KEY = {CUSTOMERS: customer_key, ORDERS: order_key}


class Crash(Exception):
    """Stands for the process dying in the middle of a page's transaction."""


def _write(store: Store, shop_id: int, stream: str, page: Page[Any], cap: datetime | None) -> None:
    with store.session() as session:
        write_page(session, shop_id, stream, page, now=NOW, cap=cap)


def _crash(store: Store, shop_id: int, stream: str, page: Page[Any], cap: datetime | None) -> None:
    def die_mid_page() -> None:
        with store.session() as session:
            write_page(session, shop_id, stream, page, now=NOW, cap=cap)
            raise Crash

    with pytest.raises(Crash):
        die_mid_page()


# ---- strategies: every record has 1-3 versions with distinct updated_at --------------------

_money = st.decimals(min_value=0, max_value=Decimal("99999.999"), places=3)
_text = st.sampled_from([None, "", "Ann", "Bob", "Zoë", "O'Brien"])


# Built once (building strategies is slow); id and updated_at are set per version.
_CUSTOMER = st.builds(
    CustomerRecord,
    platform_id=st.just("?"),
    updated_at=st.just(at(0)),
    email=st.sampled_from([None, "a@example.com", "B@Example.com"]),
    first_name=_text,
    last_name=_text,
    created_at=st.sampled_from([None, at(0)]),
    accepts_marketing=st.sampled_from([None, True, False]),
    tags=st.lists(st.sampled_from(["crm:vip", "crm:lapsed", "wholesale"]), unique=True).map(tuple),
    deleted=st.booleans(),
    redacted=st.booleans(),
)


_line = st.builds(
    OrderLineRecord,
    quantity=st.integers(1, 5),
    unit_price=_money,
    platform_id=st.sampled_from([None, "l1", "l2"]),
    sku=st.sampled_from([None, "SKU-1", "SKU-2"]),
    product_id=st.sampled_from([None, "p1"]),
    title=_text,
)


_ORDER = st.builds(
    OrderRecord,
    platform_id=st.just("?"),
    created_at=st.just(at(0)),
    updated_at=st.just(at(0)),
    currency=st.sampled_from(["EUR", "KWD", "JPY"]),
    total=_money,
    refunded=_money,
    customer_platform_id=st.sampled_from([None, "c0", "c1"]),
    email=st.sampled_from([None, "a@example.com"]),
    number=st.sampled_from([None, "#1001"]),
    processed_at=st.sampled_from([None, at(1)]),
    cancelled_at=st.sampled_from([None, at(2)]),
    financial_status=st.sampled_from([None, "paid", "refunded"]),
    lines=st.lists(_line, max_size=3).map(tuple),
)
VERSION: dict[str, st.SearchStrategy[Any]] = {CUSTOMERS: _CUSTOMER, ORDERS: _ORDER}


def _draw_universe(data: st.DataObject) -> dict[str, dict[str, list[Record]]]:
    universe: dict[str, dict[str, list[Record]]] = {}
    for stream, prefix in ((CUSTOMERS, "c"), (ORDERS, "o")):
        ids = data.draw(st.integers(1, 4), label=f"{stream} ids")
        universe[stream] = {}
        for i in range(ids):
            # Distinct per record; different records may share a timestamp.
            times = data.draw(st.lists(st.integers(0, 240), min_size=1, max_size=3, unique=True))
            versions = [
                replace(data.draw(VERSION[stream]), platform_id=f"{prefix}{i}", updated_at=at(t))
                for t in sorted(times)
            ]
            universe[stream][f"{prefix}{i}"] = versions
    return universe


# ---- the model: what the store and the checkpoint must be ---------------------------------


@dataclass
class Model:
    universe: dict[str, dict[str, list[Record]]]
    clock: int = 0  # minutes; the newest instant any pass has looked at the source
    newest: dict[str, dict[str, Record]] = field(
        default_factory=lambda: {CUSTOMERS: {}, ORDERS: {}}
    )
    mark: dict[str, datetime | None] = field(
        default_factory=lambda: {CUSTOMERS: None, ORDERS: None}
    )
    committed: list[tuple[str, Page[Any], datetime | None]] = field(default_factory=list)

    def commit(self, stream: str, page: Page[Any], cap: datetime | None) -> None:
        for record in page.records:
            held = self.newest[stream].get(record.platform_id)
            if held is None or record.updated_at > held.updated_at:
                self.newest[stream][record.platform_id] = record
        mark = page.high_water_mark
        if mark is not None and cap is not None:
            mark = min(mark, cap)
        current = self.mark[stream]
        if mark is not None and (current is None or mark > current):
            self.mark[stream] = mark
        self.committed.append((stream, page, cap))

    def source_as_of(self, stream: str, minutes: int) -> list[Record]:
        """The newest version of every record that exists at `minutes`."""
        out = []
        for versions in self.universe[stream].values():
            seen = [v for v in versions if v.updated_at <= at(minutes)]
            if seen:
                out.append(seen[-1])
        return out


def _check(store: Store, shop_id: int, model: Model) -> None:
    with store.session() as session:
        snap = snapshot(session, shop_id)
        marks = {s: high_water_mark(session, shop_id, s) for s in (CUSTOMERS, ORDERS)}
    for stream in (CUSTOMERS, ORDERS):
        expected = {pid: KEY[stream](r) for pid, r in model.newest[stream].items()}
        assert snap[stream] == expected, f"{stream}: store differs from the newest versions"
        assert marks[stream] == model.mark[stream], f"{stream}: checkpoint"
        # The checkpoint vouches that every record updated before it is stored, as of now.
        mark = marks[stream]
        if mark is None:
            continue
        for current in model.source_as_of(stream, model.clock):
            if current.updated_at < mark:
                stored = snap[stream].get(current.platform_id)
                assert stored is not None, f"checkpoint {mark} ahead of {current.platform_id}"
                assert stored[UPDATED_AT_INDEX[stream]] >= current.updated_at
    # Each order points at the stored customer its platform id names, whichever came first.
    with store.engine.connect() as conn:
        links = conn.execute(
            text(
                "SELECT o.customer_id, c.id FROM orders AS o LEFT JOIN customer AS c "
                "ON c.shop_id = o.shop_id AND c.platform_id = o.customer_platform_id "
                "WHERE o.shop_id = :shop"
            ),
            {"shop": shop_id},
        ).all()
    assert all(linked == named for linked, named in links), "orders.customer_id"


def _pass_pages(data: st.DataObject, model: Model, stream: str) -> tuple[list[Page[Any]], datetime]:
    """One honest pass from the checkpoint (minus an overlap) or from the start."""
    model.clock = data.draw(st.integers(model.clock, 300), label="pass snapshot at")
    cap = at(model.clock)
    mark = model.mark[stream]
    full = mark is None or data.draw(st.booleans(), label="full")
    overlap = data.draw(st.integers(0, 30), label="overlap")
    records = [
        r
        for r in model.source_as_of(stream, model.clock)
        if full or r.updated_at >= mark - timedelta(minutes=overlap)  # type: ignore[operator]
    ]
    ordered = data.draw(st.booleans(), label="sorted by updated_at")
    if ordered:
        records.sort(key=lambda r: (r.updated_at, r.platform_id))
    else:
        records = data.draw(st.permutations(records))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=len(records), max_size=len(records)))
    pages: list[Page[Any]] = []
    i = 0
    for size in sizes:
        if i >= len(records):
            break
        chunk = records[i : i + size]
        i += size
        # Sorted: all before the last record's updated_at is delivered. Unsorted: no claim.
        pages.append(Page(chunk, chunk[-1].updated_at if ordered else None, cursor=f"p{i}"))
    # The pass's end vouches for "now", which the cap brings back to the pass's start.
    end = at(model.clock + data.draw(st.integers(0, 60), label="end claim past cap"))
    pages.append(Page([], end, cursor=None))
    return pages, cap


def _run_pass(data: st.DataObject, store: Store, shop_id: int, model: Model, stream: str) -> None:
    pages, cap = _pass_pages(data, model, stream)
    for page in pages:
        action = data.draw(
            st.sampled_from(["commit", "commit", "commit", "duplicate", "retry", "abandon"])
        )
        if action in ("retry", "abandon"):
            _crash(store, shop_id, stream, page, cap)
            _check(store, shop_id, model)
            if action == "abandon":
                return  # the process died; a later pass resumes from the checkpoint
        _write(store, shop_id, stream, page, cap)
        model.commit(stream, page, cap)
        if action == "duplicate":
            _write(store, shop_id, stream, page, cap)
            model.commit(stream, page, cap)
        _check(store, shop_id, model)


@pytest.fixture
def store_for_examples(store: Store) -> Store:
    """The parametrized store, emptied before every hypothesis example by the test itself."""
    return store


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_sequence_of_pages_leaves_the_newest_versions(
    store_for_examples: Store, data: st.DataObject
) -> None:
    store = store_for_examples
    reset(store)
    with store.session() as session:
        shop_id = ensure_shop(session, "main", "shopify", now=NOW)
    model = Model(_draw_universe(data))
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        step = data.draw(st.sampled_from(["pass", "pass", "replay", "late"]), label="step")
        stream = data.draw(st.sampled_from([CUSTOMERS, ORDERS]), label="stream")
        if step == "pass":
            _run_pass(data, store, shop_id, model, stream)
        elif step == "replay" and model.committed:
            # A page delivered again later (a retried request, a duplicated webhook batch).
            replayed_stream, page, cap = data.draw(st.sampled_from(model.committed))
            _write(store, shop_id, replayed_stream, page, cap)
            model.commit(replayed_stream, page, cap)
        elif step == "late":
            # Old versions arriving late, with no claim about completeness.
            old = [
                v
                for versions in model.universe[stream].values()
                for v in versions
                if v.updated_at <= at(model.clock)
            ]
            chunk = data.draw(st.lists(st.sampled_from(old), max_size=4)) if old else []
            page = Page(chunk, None)
            _write(store, shop_id, stream, page, None)
            model.commit(stream, page, None)
        _check(store, shop_id, model)


# ---- plain examples --------------------------------------------------------------------------


def _state(store: Store, shop_id: int) -> tuple[Any, ...]:
    with store.session() as session:
        return (
            snapshot(session, shop_id),
            high_water_mark(session, shop_id, CUSTOMERS),
            high_water_mark(session, shop_id, ORDERS),
        )


def _shop(store: Store, name: str = "main") -> int:
    with store.session() as session:
        return ensure_shop(session, name, "shopify", now=NOW)


def test_writing_the_same_page_twice_is_a_noop(store: Store) -> None:
    shop_id = _shop(store)
    customers = Page(
        [customer("c1", 5, email="a@example.com", tags=("crm:vip",)), customer("c2", 6)], at(6)
    )
    orders = Page([order("o1", 7, lines=3), order("o2", 8, lines=0)], at(8))
    _write(store, shop_id, CUSTOMERS, customers, None)
    _write(store, shop_id, ORDERS, orders, None)
    before = _state(store, shop_id)
    assert len(before[0]["customers"]) == 2
    assert len(before[0]["orders"]["o1"][-1]) == 3

    _write(store, shop_id, CUSTOMERS, customers, None)
    _write(store, shop_id, ORDERS, orders, None)

    assert _state(store, shop_id) == before


def test_an_older_version_never_overwrites_a_newer_one(store: Store) -> None:
    shop_id = _shop(store)
    new_c = customer("c1", 10, email="new@example.com", tags=("crm:vip",))
    old_c = customer("c1", 5, email="old@example.com", tags=())
    new_o = order("o1", 10, total="20.000", lines=1)
    old_o = order("o1", 5, total="10.000", lines=3)
    _write(store, shop_id, CUSTOMERS, Page([new_c], at(10)), None)
    _write(store, shop_id, ORDERS, Page([new_o], at(10)), None)

    _write(store, shop_id, CUSTOMERS, Page([old_c], at(5)), None)  # a stale page, late
    _write(store, shop_id, ORDERS, Page([old_o], at(5)), None)
    _write(store, shop_id, ORDERS, Page([new_o, old_o], None), None)  # both in one page
    _write(store, shop_id, ORDERS, Page([old_o, new_o], None), None)

    snap, c_mark, o_mark = _state(store, shop_id)
    assert snap["customers"] == {"c1": customer_key(new_c)}
    assert snap["orders"] == {"o1": order_key(new_o)}
    assert len(snap["orders"]["o1"][-1]) == 1, "the old version's lines came back"
    assert (c_mark, o_mark) == (at(10), at(10)), "a checkpoint moved backwards"


def test_a_newer_order_replaces_its_lines_as_a_whole(store: Store) -> None:
    shop_id = _shop(store)
    _write(store, shop_id, ORDERS, Page([order("o1", 1, lines=3)], at(1)), None)
    newer = order("o1", 2, lines=1)
    _write(store, shop_id, ORDERS, Page([newer], at(2)), None)
    snap, _, _ = _state(store, shop_id)
    assert snap["orders"]["o1"] == order_key(newer)
    _write(store, shop_id, ORDERS, Page([order("o1", 3, lines=0)], at(3)), None)
    snap, _, _ = _state(store, shop_id)
    assert snap["orders"]["o1"][-1] == ()


def test_a_rolled_back_page_leaves_neither_records_nor_checkpoint(store: Store) -> None:
    shop_id = _shop(store)
    _write(store, shop_id, CUSTOMERS, Page([customer("c1", 1)], at(1)), None)
    before = _state(store, shop_id)
    _crash(store, shop_id, CUSTOMERS, Page([customer("c1", 9), customer("c2", 9)], at(9)), None)
    assert _state(store, shop_id) == before


def test_the_checkpoint_is_capped_at_the_sync_start(store: Store) -> None:
    shop_id = _shop(store)
    _write(store, shop_id, CUSTOMERS, Page([customer("c1", 1)], at(60)), at(30))
    assert _state(store, shop_id)[1] == at(30)


def test_shops_are_kept_apart(store: Store) -> None:
    a, b = _shop(store, "a"), _shop(store, "b")
    _write(store, a, CUSTOMERS, Page([customer("c1", 1, email="a@example.com")], at(1)), None)
    _write(store, b, CUSTOMERS, Page([customer("c1", 2, email="b@example.com")], at(2)), None)
    _write(store, b, ORDERS, Page([order("o1", 2, lines=2)], at(2)), None)
    snap_a, c_a, o_a = _state(store, a)
    snap_b, c_b, _ = _state(store, b)
    assert snap_a["customers"]["c1"][0] == "a@example.com"
    assert snap_b["customers"]["c1"][0] == "b@example.com"
    assert snap_a["orders"] == {}
    assert len(snap_b["orders"]["o1"][-1]) == 2
    assert (c_a, o_a, c_b) == (at(1), None, at(2))


def _customer_links(store: Store) -> dict[str, str | None]:
    """Order platform id -> platform id of the customer its `customer_id` points at."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT o.platform_id, c.platform_id FROM orders AS o "
                "LEFT JOIN customer AS c ON c.id = o.customer_id"
            )
        ).all()
    return dict(rows)


def test_orders_point_at_their_customer_whichever_is_stored_first(store: Store) -> None:
    shop_id = _shop(store)
    _write(store, shop_id, CUSTOMERS, Page([customer("c2", 1)], at(1)), None)
    early = [
        order("o1", 1, customer_platform_id="c1"),
        order("o2", 1),
        order("o3", 1, customer_platform_id="c2"),
    ]
    _write(store, shop_id, ORDERS, Page(early, at(1)), None)
    assert _customer_links(store) == {"o1": None, "o2": None, "o3": "c2"}
    _write(store, shop_id, CUSTOMERS, Page([customer("c1", 2)], at(2)), None)  # arrives late
    assert _customer_links(store) == {"o1": "c1", "o2": None, "o3": "c2"}
    moved = order("o3", 3, customer_platform_id="c9")  # now names one not stored
    _write(store, shop_id, ORDERS, Page([moved], at(3)), None)
    assert _customer_links(store) == {"o1": "c1", "o2": None, "o3": None}

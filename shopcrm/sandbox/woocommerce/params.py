"""WordPress REST parameter validation and response shaping, as WooCommerce's routes do it.

Validation failures are WP core's `rest_invalid_param` 400 with `data.params` and
`data.details`; `modified_after` and friends follow `rest_parse_date` and WP_Date_Query,
including the real server's quirk that an explicit offset ("Z", "+00:00") is converted to the
site's time zone before being compared, even with the GMT column (`dates_are_gmt=true`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from shopcrm.sandbox.woocommerce.oauth import PhpParams

MAX_PER_PAGE = 100
_DATE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")


class WooError(Exception):
    """An error answer in WooCommerce's body shape: {code, message, data: {status, ...}}."""

    def __init__(self, status: int, code: str, message: str, **data: Any) -> None:
        self.status = status
        self.code = code
        self.data = data
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": str(self),
            "data": {"status": self.status, **self.data},
        }


@dataclass
class _Problems:
    params: dict[str, str] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, code: str, message: str) -> None:
        self.params[name] = message
        self.details[name] = {"code": code, "message": message, "data": None}

    def raise_any(self) -> None:
        if self.params:
            raise WooError(
                400,
                "rest_invalid_param",
                f"Invalid parameter(s): {', '.join(self.params)}",
                params=self.params,
                details=self.details,
            )


@dataclass(frozen=True)
class DateFilter:
    """A parsed WP date parameter: the naive value WordPress compares with a date column."""

    naive: datetime

    def instant(self, column_zone: ZoneInfo | timezone) -> datetime:
        """The value as an instant, read in the zone of the column it is compared with."""
        return self.naive.replace(tzinfo=column_zone)


def parse_date(text: str, zone: ZoneInfo) -> DateFilter | None:
    """WP's `rest_parse_date` then WP_Date_Query: an explicit offset is moved to site time."""
    match = _DATE.match(text)
    if not match:
        return None
    day, clock, _fraction, offset = match.groups()
    naive = datetime.fromisoformat(f"{day}T{clock}")
    if offset:
        suffix = "+00:00" if offset in ("Z", "z") else offset
        instant = datetime.fromisoformat(f"{day}T{clock}{suffix}")
        naive = instant.astimezone(zone).replace(tzinfo=None)
    return DateFilter(naive)


@dataclass
class ListQuery:
    """The validated parameters of a collection GET."""

    page: int = 1
    per_page: int = 10
    offset: int | None = None
    order: str = "asc"
    orderby: str = "id"
    include: list[int] | None = None
    exclude: list[int] = field(default_factory=list)
    fields: list[str] | None = None
    dates: dict[str, DateFilter] = field(default_factory=dict)
    dates_are_gmt: bool = False
    text: dict[str, str] = field(default_factory=dict)  # role, email, search, customer, status

    def selection(self) -> tuple[Any, ...]:
        """What decides which records match and in which order (not which page of them)."""
        return (
            self.orderby,
            self.order,
            None if self.include is None else tuple(self.include),
            tuple(self.exclude),
            self.dates_are_gmt,
            tuple(sorted((name, value.naive) for name, value in self.dates.items())),
            tuple(sorted(self.text.items())),
        )


def _ints(value: str | Mapping[str, str]) -> list[int] | None:
    items = list(value.values()) if isinstance(value, Mapping) else value.split(",")
    try:
        return [int(item) for item in items if str(item).strip() != ""]
    except ValueError:
        return None


def _int(params: PhpParams, name: str, problems: _Problems) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw.strip()):
        problems.add(name, "rest_invalid_type", f"{name} is not of type integer.")
        return None
    return int(raw)


@dataclass(frozen=True)
class Listing:
    """What one collection route accepts: its `orderby` values, defaults and date filters."""

    orderby: tuple[str, ...]
    default_orderby: str
    default_order: str
    dates: tuple[str, ...] = ()


def parse_list_query(params: PhpParams, listing: Listing, *, zone: ZoneInfo) -> ListQuery:
    """Validate a collection request like WP's `rest_validate_request_arg`.

    Raises:
        WooError: 400 rest_invalid_param naming every bad parameter.
    """
    problems = _Problems()
    query = ListQuery(orderby=listing.default_orderby, order=listing.default_order)
    orderby, dates = listing.orderby, listing.dates
    page = _int(params, "page", problems)
    if page is not None:
        if page < 1:
            problems.add("page", "rest_out_of_bounds", "page must be greater than or equal to 1")
        query.page = page
    per_page = _int(params, "per_page", problems)
    if per_page is not None:
        if not 1 <= per_page <= MAX_PER_PAGE:
            problems.add(
                "per_page",
                "rest_out_of_bounds",
                f"per_page must be between 1 (inclusive) and {MAX_PER_PAGE} (inclusive)",
            )
        query.per_page = per_page
    query.offset = _int(params, "offset", problems)
    order = params.get("order")
    if order is not None:
        if order not in ("asc", "desc"):
            problems.add("order", "rest_not_in_enum", "order is not one of asc and desc.")
        else:
            query.order = order
    by = params.get("orderby")
    if by is not None:
        if by not in orderby:
            choices = ", ".join(orderby[:-1]) + f", and {orderby[-1]}"
            problems.add("orderby", "rest_not_in_enum", f"orderby is not one of {choices}.")
        else:
            query.orderby = str(by)
    for name in ("include", "exclude"):
        if name in params:
            ids = _ints(params[name])
            if ids is None:
                problems.add(name, "rest_invalid_type", f"{name}[0] is not of type integer.")
            elif name == "include":
                query.include = ids
            else:
                query.exclude = ids
    gmt = params.get("dates_are_gmt")
    if gmt is not None:
        if str(gmt).lower() not in _TRUE + _FALSE:
            problems.add(
                "dates_are_gmt", "rest_invalid_type", "dates_are_gmt is not of type boolean."
            )
        query.dates_are_gmt = str(gmt).lower() in _TRUE
    for name in dates:
        raw = params.get(name)
        if raw is None:
            continue
        parsed = parse_date(raw, zone) if isinstance(raw, str) else None
        if parsed is None:
            problems.add(name, "rest_invalid_date", "Invalid date.")
        else:
            query.dates[name] = parsed
    fields = params.get("_fields")
    if isinstance(fields, str):
        query.fields = [f.strip() for f in fields.split(",") if f.strip()]
    elif isinstance(fields, Mapping):
        query.fields = [str(f) for f in fields.values()]
    for name in ("role", "email", "search", "customer", "status"):
        raw = params.get(name)
        if isinstance(raw, str):
            query.text[name] = raw
    if "customer" in query.text:
        _int(params, "customer", problems)
    problems.raise_any()
    return query


def only_fields(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """WP's `_fields` filter: keep the named keys, dotted names reach into objects."""
    if not fields:
        return item
    mask: dict[str, Any] = {}
    for name in fields:
        node = mask
        parts = name.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is True:
                break
            node = node.setdefault(part, {})
        else:
            node[parts[-1]] = True
    return _masked(item, mask)


def _masked(item: dict[str, Any], mask: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        rule = mask.get(key)
        if rule is True:
            out[key] = value
        elif isinstance(rule, dict) and isinstance(value, dict):
            out[key] = _masked(value, rule)
    return out

"""The subset of Shopify's search syntax the sandbox filters on: date comparisons.

Shopify accepts `updated_at:>'2025-01-01T00:00:00Z'`, `updated_at:>='2025-01-01 00:00:00+00:00'`
and bare dates (`updated_at:<2025-01-01`); a date or time without an offset is read in the shop's
timezone, and an unquoted value loses its time part. `:>` is inclusive on Shopify (it behaves like
`:>=` at second resolution), which is why clients overlap their high-water marks; the sandbox
does the same. Terms are ANDed; a term on a field the sandbox does not filter is reported back
as a search warning, the way Shopify reports fields it does not know, instead of failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DATE_FIELDS = ("updated_at", "created_at", "processed_at")
_TERM = re.compile(
    r"""(?P<field>[A-Za-z_]+):(?P<op><=|>=|<|>)?"""
    r"""(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)"|(?P<bare>\S+))|(?P<word>\S+)"""
)
_DAY = timedelta(days=1)


class SearchError(ValueError):
    """A search term the sandbox cannot read (a malformed date)."""


@dataclass(frozen=True)
class DateFilter:
    field: str  # "updated_at", "created_at" or "processed_at"
    op: str  # ">=", "<=", "<" (">" is read as ">=", ":" as the whole day)
    at: datetime

    def accepts(self, value: datetime) -> bool:
        if self.op == ">=":
            return value >= self.at
        if self.op == "<=":
            return value <= self.at
        return value < self.at


@dataclass(frozen=True)
class Search:
    filters: tuple[DateFilter, ...]
    warnings: tuple[str, ...]  # fields the sandbox ignores

    def accepts(self, values: dict[str, datetime]) -> bool:
        return all(f.accepts(values[f.field]) for f in self.filters)


def _parse_when(raw: str, quoted: bool, tz: ZoneInfo) -> datetime:
    text = raw.strip()
    if not quoted:
        text = text[:10]  # Shopify ignores the time of an unquoted value
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(0))
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SearchError(f"cannot read the date {raw!r} in the search query") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC).replace(microsecond=0)


def parse_search(query: str | None, timezone: str) -> Search:
    """Read a `query:` argument.

    Args:
        query: the search string, e.g. `updated_at:>'2025-01-01T00:00:00Z'`.
        timezone: the shop's IANA timezone, for dates without an offset.

    Returns:
        The date filters (ANDed) and the terms the sandbox ignores.

    Raises:
        SearchError: a date filter's value is not a date.
    """
    if not query or not query.strip():
        return Search((), ())
    tz = ZoneInfo(timezone)
    filters: list[DateFilter] = []
    warnings: list[str] = []
    for term in _TERM.finditer(query):
        field = term["field"]
        if field is None or field not in DATE_FIELDS:
            if term[0] not in ("AND", "and"):
                warnings.append(term[0])
            continue
        quoted = term["bare"] is None
        raw = term["single"] if term["single"] is not None else term["double"] or term["bare"]
        at = _parse_when(raw, quoted, tz)
        op = term["op"] or ""
        if op == "":  # one day: [that midnight, the next)
            filters += [DateFilter(field, ">=", at), DateFilter(field, "<", at + _DAY)]
        else:
            filters.append(DateFilter(field, ">=" if op == ">" else op, at))
    return Search(tuple(filters), tuple(warnings))

"""Cell values of a CSV export: amounts, dates, quantities, emails, as the shop configures them.

Every parser raises `CellError` with a reason a person can act on. Only dates and amounts are
quoted back (shortened); names and emails never are, since the error may end up in a log.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from shopcrm.config.schema import CsvShop
from shopcrm.connectors.csv.columns import MAX_LENGTH, MAX_SHOWN_VALUE

MONEY_PLACES = 6  # the store keeps six decimal places (shopcrm/store/types.py)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_QUANTITY = re.compile(r"^\+?\d+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class CellError(ValueError):
    """One cell cannot be used; `reason` says why without quoting personal data."""

    def __init__(self, column: str, reason: str) -> None:
        self.column = column
        self.reason = reason
        super().__init__(f"{column}: {reason}")


def shown(text: str) -> str:
    """A bad date or amount as quoted in an error: repr, shortened."""
    if len(text) > MAX_SHOWN_VALUE:
        text = text[: MAX_SHOWN_VALUE - 1] + "…"
    return repr(text)


def _money_pattern(decimal: str) -> re.Pattern[str]:
    group = re.escape("," if decimal == "." else ".")
    point = re.escape(decimal)
    return re.compile(
        rf"^(?P<sign>[+-]?)(?:(?P<grouped>\d{{1,3}}(?:{group}\d{{3}})+)|(?P<plain>\d+))"
        rf"(?:{point}(?P<fraction>\d+))?$"
    )


class CellParser:
    """Parses cells the way one csv shop's export writes them (decimal mark, dates, zone)."""

    def __init__(self, shop: CsvShop) -> None:
        self.currency = shop.currency
        self.zone = ZoneInfo(shop.timezone)
        self.date_format = shop.date_format
        self.decimal = shop.decimal
        self._money = _money_pattern(shop.decimal)
        self._group = "," if shop.decimal == "." else "."

    def text(self, column: str, value: str) -> str:
        """A free-text cell within the store's length limit."""
        limit = MAX_LENGTH.get(column)
        if limit is not None and len(value) > limit:
            raise CellError(column, f"longer than {limit} characters")
        return value

    def money(self, column: str, value: str) -> Decimal:
        """A non-negative amount with the shop's decimal mark (grouping by thousands allowed)."""
        if value.isascii() and value.isdigit():  # the common case, without the regex
            return Decimal(value)
        match = self._money.match(value)
        if match is None:
            raise CellError(
                column,
                f"{shown(value)} is not an amount like 1234{self.decimal}50 "
                f"(decimal mark {self.decimal!r}, no currency sign)",
            )
        digits = (match["grouped"] or match["plain"]).replace(self._group, "")
        fraction = match["fraction"] or ""
        if len(fraction) > MONEY_PLACES:
            raise CellError(column, f"{shown(value)} has more than {MONEY_PLACES} decimal places")
        amount = Decimal(
            f"{match['sign']}{digits}.{fraction}" if fraction else match["sign"] + digits
        )
        if amount < 0:
            hint = "; put refunds in the refunded column" if column == "total" else ""
            raise CellError(column, f"negative amount {shown(value)}{hint}")
        return amount

    def when(self, column: str, value: str) -> datetime:
        """An aware UTC datetime; a value without an offset is in the shop's time zone."""
        try:
            if self.date_format is None:
                parsed = datetime.fromisoformat(value)
            else:
                parsed = datetime.strptime(value, self.date_format)
        except ValueError as exc:
            raise CellError(column, self._date_problem(value, str(exc))) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.zone)
        return parsed.astimezone(UTC)

    def _date_problem(self, value: str, detail: str) -> str:
        if value not in detail:  # the layout fits, a field does not (day 30 in February)
            return f"{shown(value)} is not a real date ({detail})"
        if self.date_format is None:
            return (
                f"{shown(value)} is not an ISO 8601 date like 2024-03-01 or 2024-03-01T14:30:00 "
                "(set date_format for other layouts)"
            )
        return f"{shown(value)} does not match date_format {self.date_format!r}"

    def quantity(self, column: str, value: str) -> int:
        """A whole number of items, at least 1 (returns are refunds, not negative lines)."""
        if not _QUANTITY.match(value) or int(value) < 1:
            raise CellError(column, f"{shown(value)} is not a whole number of items (1 or more)")
        return int(value)

    def email(self, column: str, value: str) -> str:
        """An email address (checked for shape only; never quoted back)."""
        if not _EMAIL.match(value):
            raise CellError(column, "not an email address")
        return self.text(column, value)

    def currency_code(self, column: str, value: str) -> str:
        """The shop's ISO 4217 code: one csv shop holds one currency."""
        code = value.upper()
        if not _CURRENCY.match(code):
            raise CellError(column, f"{shown(value)} is not an ISO 4217 code like EUR")
        if code != self.currency:
            raise CellError(
                column,
                f"{code} differs from the shop's currency {self.currency} "
                "(configure one csv shop per currency)",
            )
        return code

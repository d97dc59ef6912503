"""One CSV export read as a stream of orders: adjacent rows with one order_id are one order.

Reading is streaming (the csv module, one order's rows in memory at a time). Each `Group` is an
order's rows with their line numbers and either the parsed records or the issues found, so
both the validation pass and the import pass use the same rules.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from shopcrm.config.schema import CsvShop
from shopcrm.connectors.csv.columns import (
    CANCELLED_STATUSES,
    COLUMNS,
    CUSTOMER_COLUMNS,
    LINE_COLUMNS,
    MAX_LENGTH,
    ORDER_COLUMNS,
    REQUIRED,
)
from shopcrm.connectors.csv.values import CellError, CellParser
from shopcrm.records import CustomerRecord, OrderLineRecord, OrderRecord


class FileRejected(Exception):
    """The file as a whole cannot be read (header, encoding, quoting); no row is usable."""


@dataclass(frozen=True, slots=True)
class Issue:
    """Why one row cannot be imported."""

    line: int
    column: str | None
    reason: str

    @property
    def detail(self) -> str:
        """`column: reason` (or the reason alone for a problem of the whole row)."""
        return f"{self.column}: {self.reason}" if self.column else self.reason

    def __str__(self) -> str:
        return f"{self.line}: {self.detail}"


@dataclass(slots=True)
class Group:
    """The adjacent rows of one order, and what they parse to."""

    order_id: str
    lines: list[int]
    rows: list[list[str]]
    issues: list[Issue] = field(default_factory=list)
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (line, repeats line)
    order: OrderRecord | None = None


class ExportFile:
    """A CSV export of one csv shop; `updated_at` is stamped on every record it yields."""

    def __init__(self, path: Path, shop: CsvShop, updated_at: datetime) -> None:
        self.path = path
        self.shop = shop
        self.updated_at = updated_at
        self.header: list[str] = []
        self._index: dict[str, int] = {}
        self._at: dict[str, list[tuple[str, int | None]]] = {}  # set by the header
        cells = CellParser(shop)
        self._parse: dict[str, Callable[[str, str], Any]] = {
            "customer_id": cells.text,
            "first_name": cells.text,
            "last_name": cells.text,
            "status": cells.text,
            "sku": cells.text,
            "email": cells.email,
            "created_at": cells.when,
            "total": cells.money,
            "refunded": cells.money,
            "unit_price": cells.money,
            "currency": cells.currency_code,
            "quantity": cells.quantity,
        }

    def groups(self) -> Iterator[Group]:
        """Every order of the file in file order, parsed; raises FileRejected."""
        current: Group | None = None
        for line, row in self.rows():
            order_id = self._cell(row, "order_id")
            if current is not None and order_id and order_id == current.order_id:
                current.lines.append(line)
                current.rows.append(row)
                continue
            if current is not None:
                yield self._parsed(current)
            current = Group(order_id, [line], [row])
        if current is not None:
            yield self._parsed(current)

    def customers(
        self, rejected: Container[int], scattered: Container[str]
    ) -> Iterator[tuple[int, CustomerRecord]]:
        """(line, customer) of each order with a customer_id, from a validated file.

        Reads only the customer columns of each order's first row: validation already parsed
        them (as plain text) and made later rows agree. `rejected` holds the first lines of
        rejected orders and `scattered` the ids of orders split across the file.
        """
        previous = None
        for line, row in self.rows():
            order_id = self._cell(row, "order_id")
            if order_id and order_id == previous:
                continue
            previous = order_id
            if line in rejected or order_id in scattered:
                continue
            texts = self._texts(row, "customer")
            if texts["customer_id"]:
                yield (
                    line,
                    CustomerRecord(
                        platform_id=texts["customer_id"],
                        updated_at=self.updated_at,
                        email=texts["email"] or None,
                        first_name=texts["first_name"] or None,
                        last_name=texts["last_name"] or None,
                    ),
                )

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(first line number, cells) of every non-blank row after the header."""
        line = 0
        header_read = False
        try:
            with self.path.open(encoding=self.shop.encoding, newline="") as handle:
                reader = csv.reader(handle, delimiter=self.shop.delimiter)
                for row in reader:
                    start, line = line + 1, reader.line_num
                    if not "".join(row).strip():
                        continue
                    if not header_read:
                        self._read_header(start, row)
                        header_read = True
                        continue
                    yield start, row
        except UnicodeDecodeError as exc:
            raise FileRejected(
                f"line {self._undecodable_line()}: not readable as {self.shop.encoding} "
                f"({exc.reason}); set the shop's encoding"
            ) from None
        except csv.Error as exc:
            raise FileRejected(f"line {line + 1}: not valid CSV ({exc})") from None
        except OSError as exc:
            raise FileRejected(f"cannot read the file ({exc.strerror})") from None
        if not header_read:
            raise FileRejected("the file is empty: it has no header row")

    def _undecodable_line(self) -> int:
        """The physical line of the first undecodable byte (text is decoded in large chunks)."""
        decoder = codecs.getincrementaldecoder(self.shop.encoding)()
        number = 0
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    decoder.decode(raw)
                except UnicodeDecodeError:
                    return number
        return number

    def _read_header(self, line: int, row: list[str]) -> None:
        self.header = row
        self._index = {}
        names = [cell.strip().lstrip("\ufeff").casefold() for cell in row]
        wanted = {ours: self.shop.columns.get(ours, ours).strip().casefold() for ours in COLUMNS}
        for ours, theirs in wanted.items():
            if names.count(theirs) > 1:
                raise FileRejected(f"line {line}: the header names column {theirs!r} twice")
            if theirs in names:
                self._index[ours] = names.index(theirs)
        self._at = {
            kind: [(c, self._index.get(c)) for c in columns]
            for kind, columns in (
                ("order", ORDER_COLUMNS),
                ("line", LINE_COLUMNS),
                ("customer", CUSTOMER_COLUMNS),
            )
        }
        missing = [wanted[ours] for ours in REQUIRED if ours not in self._index]
        if missing:
            raise FileRejected(
                f"line {line}: the header lacks the column(s) {', '.join(map(repr, missing))} "
                "(map your export's names with the shop's `columns`)"
            )

    def _cell(self, row: list[str], column: str) -> str:
        index = self._index.get(column)
        return row[index].strip() if index is not None and index < len(row) else ""

    def _texts(self, row: list[str], kind: str) -> dict[str, str]:
        """The stripped cells of the `kind` columns ("" for a column the file lacks)."""
        return {c: row[i].strip() if i is not None else "" for c, i in self._at[kind]}

    def _values(self, line: int, texts: dict[str, str], issues: list[Issue]) -> dict[str, Any]:
        """Parsed cells (None when empty); a bad cell becomes an issue and is left out."""
        values: dict[str, Any] = {}
        for column, text in texts.items():
            if not text:
                values[column] = None
                continue
            try:
                values[column] = self._parse[column](column, text)
            except CellError as exc:
                issues.append(Issue(line, exc.column, exc.reason))
        return values

    def _parsed(self, group: Group) -> Group:
        issues = group.issues
        width = len(self.header)
        if not group.order_id:
            issues.append(Issue(group.lines[0], "order_id", "missing"))
        elif len(group.order_id) > MAX_LENGTH["order_id"]:
            reason = f"longer than {MAX_LENGTH['order_id']} characters"
            issues.append(Issue(group.lines[0], "order_id", reason))
        head_line = group.lines[0]
        head: dict[str, Any] = {}
        head_texts: dict[str, str] = {}
        lines: list[OrderLineRecord] = []
        seen: dict[tuple[str, ...], int] = {}
        for line, row in zip(group.lines, group.rows, strict=True):
            if len(row) != width:
                issues.append(
                    Issue(
                        line,
                        None,
                        f"has {len(row)} fields, the header has {width} (quote values "
                        f"that contain the delimiter {self.shop.delimiter!r})",
                    )
                )
                continue
            key = tuple(row)
            if key in seen:
                group.duplicates.append((line, seen[key]))
                continue
            seen[key] = line
            texts = self._texts(row, "order")
            if line == head_line:
                head, head_texts = self._values(line, texts, issues), texts
            else:
                self._agree(line, head_line, head, head_texts, texts, issues)
            order_line = self._line(line, self._texts(row, "line"), issues)
            if order_line is not None:
                lines.append(order_line)
        if head:
            self._check_head(head_line, head, issues)
        if not issues:
            self._records(group, head, tuple(lines))
        return group

    def _agree(
        self,
        line: int,
        head_line: int,
        head: dict[str, Any],
        head_texts: dict[str, str],
        texts: dict[str, str],
        issues: list[Issue],
    ) -> None:
        """A later row repeats the order's columns (same value, maybe written differently)."""
        changed = {c: t for c, t in texts.items() if t and t != head_texts.get(c)}
        for column, value in self._values(line, changed, issues).items():
            if column in head and value != head[column]:
                issues.append(
                    Issue(
                        line,
                        column,
                        f"differs from line {head_line}, the order's first row (rows of one "
                        "order repeat its order columns or leave them empty)",
                    )
                )

    @staticmethod
    def _check_head(line: int, head: dict[str, Any], issues: list[Issue]) -> None:
        for column in REQUIRED:
            if column in head and head[column] is None:
                issues.append(Issue(line, column, "missing"))
        total, refunded = head.get("total"), head.get("refunded")
        if total is not None and refunded is not None and refunded > total:
            issues.append(Issue(line, "refunded", "more than the order's total"))

    def _line(
        self, line: int, texts: dict[str, str], issues: list[Issue]
    ) -> OrderLineRecord | None:
        if not any(texts.values()):
            return None
        values = self._values(line, texts, issues)
        if not texts["unit_price"]:
            issues.append(Issue(line, "unit_price", "missing (a row with a sku or quantity)"))
        if len(values) < len(LINE_COLUMNS) or values["unit_price"] is None:
            return None
        return OrderLineRecord(
            quantity=values["quantity"] or 1, unit_price=values["unit_price"], sku=values["sku"]
        )

    def _records(
        self, group: Group, head: dict[str, Any], lines: tuple[OrderLineRecord, ...]
    ) -> None:
        status = head["status"]
        created_at: datetime = head["created_at"]
        customer_id = head["customer_id"]
        group.order = OrderRecord(
            platform_id=group.order_id,
            created_at=created_at,
            updated_at=self.updated_at,
            currency=head["currency"] or self.shop.currency,
            total=head["total"],
            refunded=head["refunded"] or Decimal(0),
            customer_platform_id=customer_id,
            email=head["email"],
            number=group.order_id,
            cancelled_at=created_at if status and status.casefold() in CANCELLED_STATUSES else None,
            financial_status=status,
            lines=lines,
        )

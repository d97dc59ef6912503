"""The CSV import's columns and limits: the one place that names them.

`shopcrm.config` checks a csv shop's `columns` mapping through `mapping_problem`, so this module
holds plain constants and that one check, and imports nothing from shopcrm.
"""

from __future__ import annotations

# The columns of the default layout, in the order docs/csv.md lists them.
REQUIRED = ("order_id", "created_at", "total")
OPTIONAL = (
    "customer_id",
    "email",
    "currency",
    "first_name",
    "last_name",
    "refunded",
    "status",
    "sku",
    "quantity",
    "unit_price",
)
COLUMNS = REQUIRED + OPTIONAL

# Columns that describe the order (every row of one order must agree on them) ...
ORDER_COLUMNS = (
    "customer_id",
    "email",
    "created_at",
    "total",
    "currency",
    "first_name",
    "last_name",
    "refunded",
    "status",
)
# ... the columns a customer record is made of ...
CUSTOMER_COLUMNS = ("customer_id", "email", "first_name", "last_name")
# ... and the columns of one order line.
LINE_COLUMNS = ("sku", "quantity", "unit_price")

# Limits of the store's columns (shopcrm/store/models.py).
MAX_LENGTH = {
    "order_id": 64,
    "customer_id": 64,
    "email": 320,
    "first_name": 255,
    "last_name": 255,
    "status": 40,
    "sku": 255,
}

PAGE_SIZE = 1_000  # records per Page handed to sync
MAX_LISTED_ERRORS = 20  # bad rows quoted in a rejected file's error; the rest are counted
MAX_SHOWN_VALUE = 40  # characters of a bad date or amount quoted in an error
REJECTS_SUFFIX = ".rejects.csv"  # written beside the source with --skip-invalid
REJECTS_EXTRA = ("line", "reason")  # columns the rejects file adds to the original header
# A status that means the sale was voided: the order is imported as cancelled.
CANCELLED_STATUSES = frozenset({"cancelled", "canceled", "void", "voided"})


def mapping_problem(columns: dict[str, str]) -> str | None:
    """Why a `columns:` mapping (our column -> the export's header) is not usable, or None."""
    for ours, theirs in columns.items():
        if ours not in COLUMNS:
            return f"unknown column {ours!r} (known: {', '.join(COLUMNS)})"
        if not theirs.strip():
            return f"{ours}: the export's header name is empty"
    headers = [h.strip().casefold() for h in columns.values()]
    if len(set(headers)) != len(headers):
        return "two columns are mapped to the same header"
    return None

"""Values as JSON carries them: what every `--json` output and JSON export writes.

Dates and times become ISO 8601 text; money (`Decimal`) its exact decimal text, since most JSON
readers turn numbers into floats. Imports nothing of shopcrm, so every stage may use it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any


def jsonable(value: Any) -> Any:
    """`value` with every date, time and Decimal in it (in dicts and lists too) made text."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value

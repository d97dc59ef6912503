"""The validation pass over one CSV export, and the rejects file `--skip-invalid` writes.

Validation streams the whole file before anything is imported, so a rejected file writes
nothing. Memory stays flat: besides the issues it quotes (at most MAX_LISTED_ERRORS), it keeps
one 8-byte hash per order to find an order whose rows are not adjacent (8 MB per million
orders); only orders whose hashes repeat are looked at again, by name.
"""

from __future__ import annotations

import csv
import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shopcrm.connectors.csv.columns import MAX_LISTED_ERRORS, REJECTS_EXTRA, REJECTS_SUFFIX
from shopcrm.connectors.csv.rows import ExportFile, FileRejected, Group, Issue


@dataclass(slots=True)
class Validation:
    """What the validation pass found in one file."""

    path: Path
    problem: str | None = None  # the whole file is unreadable
    issues: list[Issue] = field(default_factory=list)  # the first ones, by line
    issue_count: int = 0
    orders: int = 0
    scattered: frozenset[str] = frozenset()  # order ids whose rows are not adjacent
    rejected: set[int] = field(default_factory=set)  # first lines of bad orders, if kept
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # the first ones
    duplicate_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None and self.issue_count == 0

    def messages(self) -> list[str]:
        """`path:line: column: reason` for each listed issue (or the file's problem)."""
        if self.problem is not None:
            return [f"{self.path}: {self.problem}"]
        listed = sorted(self.issues, key=lambda issue: issue.line)[:MAX_LISTED_ERRORS]
        return [f"{self.path}:{issue}" for issue in listed]

    def rejects(self, group: Group) -> bool:
        """Whether `group` is left out of the import (its own issues or scattered rows)."""
        return bool(group.issues) or group.order_id in self.scattered

    def _add(self, issues: list[Issue]) -> None:
        self.issue_count += len(issues)
        room = MAX_LISTED_ERRORS - len(self.issues)
        if room > 0:
            self.issues.extend(issues[:room])


def validate(export: ExportFile, *, keep_rejected: bool = False) -> Validation:
    """Stream `export` once and report every bad row (and any order split across the file).

    Args:
        export: the file to check.
        keep_rejected: remember the first line of every bad order (for --skip-invalid).

    Returns:
        What was found; nothing is raised for bad rows.
    """
    result = Validation(export.path)
    hashes = array("q")
    try:
        for group in export.groups():
            result.orders += 1
            if group.order_id:
                hashes.append(hash(group.order_id))
            if group.issues:
                result._add(group.issues)
                if keep_rejected:
                    result.rejected.add(group.lines[0])
            result.duplicate_count += len(group.duplicates)
            room = MAX_LISTED_ERRORS - len(result.duplicates)
            result.duplicates.extend(group.duplicates[: max(room, 0)])
        repeated = _repeated(hashes)
        if repeated:
            result.scattered = _scattered(export, repeated, result)
    except FileRejected as exc:
        result.problem = str(exc)
    return result


def _repeated(hashes: array[int]) -> set[int]:
    ordered = np.sort(np.frombuffer(hashes, dtype=np.int64))
    return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())


def _scattered(export: ExportFile, repeated: set[int], result: Validation) -> frozenset[str]:
    """Order ids seen again after other orders; an issue at each place an order resumes."""
    first_line: dict[str, int] = {}
    scattered: set[str] = set()
    for group in export.groups():
        order_id = group.order_id
        if not order_id or hash(order_id) not in repeated:
            continue
        if order_id not in first_line:
            first_line[order_id] = group.lines[0]
            continue
        scattered.add(order_id)
        reason = (
            f"order {order_id!r} continues here after other orders (its rows start at line "
            f"{first_line[order_id]}); keep the rows of one order together"
        )
        result._add([Issue(group.lines[0], "order_id", reason)])
    return frozenset(scattered)


def rejects_path(path: Path) -> Path:
    """`sales.csv` -> `sales.rejects.csv`, beside the source."""
    stem = path.name[: -len(".csv")] if path.name.lower().endswith(".csv") else path.name
    return path.with_name(stem + REJECTS_SUFFIX)


def write_rejects(export: ExportFile, result: Validation) -> int:
    """Write the rows of rejected orders with their line and reason; returns the row count.

    The file keeps the export's header, delimiter and encoding, plus `line` and `reason`, so
    it can be corrected and dropped back in as an export of its own.
    """
    target = rejects_path(export.path)
    partial = target.with_name(f".{target.name}.partial")
    written = 0
    with partial.open("w", encoding=export.shop.encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=export.shop.delimiter)
        writer.writerow([*export.header, *REJECTS_EXTRA])
        for group in export.groups():
            if not result.rejects(group):
                continue
            for line, row in zip(group.lines, group.rows, strict=True):
                writer.writerow([*row, line, _reason(group, line, result)])
                written += 1
    os.replace(partial, target)
    return written


def _reason(group: Group, line: int, result: Validation) -> str:
    own = [issue.detail for issue in group.issues if issue.line == line]
    if own:
        return "; ".join(own)
    if group.order_id in result.scattered:
        return f"order_id: the rows of order {group.order_id!r} are not together in the file"
    first_bad = min(issue.line for issue in group.issues)
    return f"rejected with its order (see line {first_bad})"

"""In-store / POS sales from CSV exports: a csv shop's file, or every `*.csv` in its folder.

Every record of a file carries the file's modification time (UTC, whole seconds) as its
`updated_at`, so re-reading an unchanged file rewrites nothing new, a corrected file (newer
mtime) replaces what it corrects, and of two files holding one order the newer one wins.

Each stream reads the selected files twice, streaming: first every file is validated (a bad
row anywhere rejects the sync before anything is written, unless `skip_invalid`), then the
files are read again and yielded in pages. Validation results are kept per file version, so
the orders stream does not validate again what the customers stream just did.
See docs/csv.md for the layout, the rules and the choices behind them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from shopcrm.config.schema import AppConfig, CsvShop
from shopcrm.connectors.csv.columns import MAX_LISTED_ERRORS, PAGE_SIZE, REJECTS_SUFFIX
from shopcrm.connectors.csv.rows import ExportFile, FileRejected
from shopcrm.connectors.csv.validate import Validation, rejects_path, validate, write_rejects
from shopcrm.errors import InputError
from shopcrm.records import CustomerRecord, OrderRecord, Page, ShopFacts, TagChange, TagResult

log = logging.getLogger(__name__)

NO_TAGS = "csv shops have no tags to push"
R = TypeVar("R", CustomerRecord, OrderRecord)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One export as found on disk; `version` changes whenever its content may have."""

    path: Path
    version: tuple[int, int, int]  # mtime ns, size, inode
    updated_at: datetime  # mtime, whole seconds: stamped on every record of the file
    arrived_at: datetime  # the later of mtime and ctime: a copy that kept its mtime is new too

    @classmethod
    def at(cls, path: Path) -> SourceFile:
        st = path.stat()
        return cls(
            path=path,
            version=(st.st_mtime_ns, st.st_size, st.st_ino),
            updated_at=datetime.fromtimestamp(st.st_mtime_ns // 1_000_000_000, UTC),
            arrived_at=datetime.fromtimestamp(max(st.st_mtime, st.st_ctime), UTC),
        )


def skip_invalid_rows(config: AppConfig) -> AppConfig:
    """`config` with `skip_invalid` set on every csv shop (the `sync --skip-invalid` option)."""
    shops = [
        shop.model_copy(update={"skip_invalid": True}) if isinstance(shop, CsvShop) else shop
        for shop in config.shops
    ]
    return config.model_copy(update={"shops": shops})


class CsvConnector:
    """The Connector of a csv shop (see shopcrm.connectors.base.Connector)."""

    supports_tags = False

    def __init__(self, shop: CsvShop, config: AppConfig) -> None:
        self.shop = shop
        self.config = config
        self._validated: dict[Path, tuple[tuple[int, int, int], Validation]] = {}

    @property
    def requests_made(self) -> int:
        """CSV shops make no HTTP requests."""
        return 0

    def close(self) -> None:
        """Nothing is held open between calls."""

    def check(self) -> ShopFacts:
        """The shop's facts from its config.

        Raises:
            InputError: the configured path does not exist.
        """
        warnings = () if self._files(None) else (f"no .csv files in {self.shop.path} yet",)
        return ShopFacts(
            name=self.shop.name,
            currency=self.shop.currency,
            timezone=self.shop.timezone,
            warnings=warnings,
        )

    def customers(self, since: datetime | None) -> Iterator[Page[CustomerRecord]]:
        """Customers (rows with a customer_id) of every file changed at or after `since`.

        Raises:
            InputError: a file has bad rows (and skip_invalid is off) or cannot be read.
        """
        return self._pages(since, self._customers_of)

    def orders(self, since: datetime | None) -> Iterator[Page[OrderRecord]]:
        """Orders of every file changed at or after `since`, in file then row order.

        Raises:
            InputError: a file has bad rows (and skip_invalid is off) or cannot be read.
        """
        return self._pages(since, self._orders_of)

    def apply(self, changes: Sequence[TagChange]) -> Iterator[TagResult]:
        """A CSV export cannot be tagged: every change fails (push skips csv shops)."""
        for change in changes:
            yield TagResult(change.customer_platform_id, ok=False, error=NO_TAGS)

    def _pages(
        self,
        since: datetime | None,
        records: Callable[[ExportFile, Validation], Iterator[tuple[int, R]]],
    ) -> Iterator[Page[R]]:
        """Pages of records, file by file; within a file the last row of an id wins."""
        for source, export, validation in self._exports(since):
            batch: dict[str, R] = {}
            try:
                for line, record in records(export, validation):
                    batch[record.platform_id] = record
                    if len(batch) >= PAGE_SIZE:
                        yield Page(list(batch.values()), cursor=f"{source.path.name}:{line}")
                        batch = {}
            except FileRejected as exc:
                raise InputError(f"shop {self.shop.name}: {export.path}: {exc}") from None
            if batch:
                yield Page(list(batch.values()), cursor=source.path.name)

    @staticmethod
    def _customers_of(
        export: ExportFile, validation: Validation
    ) -> Iterator[tuple[int, CustomerRecord]]:
        return export.customers(validation.rejected, validation.scattered)

    @staticmethod
    def _orders_of(export: ExportFile, validation: Validation) -> Iterator[tuple[int, OrderRecord]]:
        for group in export.groups():
            if validation.rejects(group):
                if validation.ok:
                    raise FileRejected("a row changed after validation; sync again")
                continue
            if group.order is not None:
                yield group.lines[-1], group.order

    def _files(self, since: datetime | None) -> list[SourceFile]:
        path = self.shop.path
        if path.is_dir():
            names = sorted(
                p
                for p in path.iterdir()
                if p.name.lower().endswith(".csv")
                and not p.name.lower().endswith(REJECTS_SUFFIX)
                and not p.name.startswith(".")
                and p.is_file()
            )
        elif path.is_file():
            names = [path]
        else:
            raise InputError(f"shop {self.shop.name}: {path} does not exist (the shop's path)")
        files = [SourceFile.at(p) for p in names if p.exists()]  # gone since listed: skipped
        return [f for f in files if since is None or f.arrived_at >= since]

    def _exports(
        self, since: datetime | None
    ) -> Iterator[tuple[SourceFile, ExportFile, Validation]]:
        """Every selected file, all validated before the first is yielded (all or nothing)."""
        checked = [(source, *self._validate(source)) for source in self._files(since)]
        refused = [v for _, _, v in checked if v.problem or not (v.ok or self.shop.skip_invalid)]
        if refused:
            raise self._refusal(refused)
        for source, export, validation in checked:
            if not source.path.exists() or SourceFile.at(source.path).version != source.version:
                log.warning(
                    "shop %s: %s changed or vanished while syncing; the next sync reads it again",
                    self.shop.name,
                    source.path,
                    extra={"shop": self.shop.name},
                )
                continue
            yield source, export, validation

    def _validate(self, source: SourceFile) -> tuple[ExportFile, Validation]:
        export = ExportFile(source.path, self.shop, source.updated_at)
        held = self._validated.get(source.path)
        if held is not None and held[0] == source.version:
            return export, held[1]
        validation = validate(export, keep_rejected=self.shop.skip_invalid)
        self._validated[source.path] = (source.version, validation)
        self._report(export, validation)
        return export, validation

    def _report(self, export: ExportFile, validation: Validation) -> None:
        shop = self.shop.name
        if validation.duplicate_count:
            repeats = ", ".join(f"line {a} repeats line {b}" for a, b in validation.duplicates[:5])
            log.warning(
                "shop %s: %s: %d exact duplicate row(s) counted once (%s)",
                shop,
                export.path,
                validation.duplicate_count,
                repeats,
                extra={"shop": shop},
            )
        if self.shop.skip_invalid and validation.problem is None and not validation.ok:
            rows = write_rejects(export, validation)
            log.warning(
                "shop %s: %s: %d problem(s) found; %d row(s) of the orders concerned written to %s",
                shop,
                export.path,
                validation.issue_count,
                rows,
                rejects_path(export.path),
                extra={"shop": shop},
            )

    def _refusal(self, refused: list[Validation]) -> InputError:
        listed = [message for v in refused for message in v.messages()][:MAX_LISTED_ERRORS]
        total = sum(1 if v.problem else v.issue_count for v in refused)
        more = [f"... and {total - len(listed)} more"] if total > len(listed) else []
        hint = (
            "fix them and sync again"
            if any(v.problem for v in refused)
            else "fix the rows, or sync with --skip-invalid to import the valid rows and write "
            f"the orders concerned to <file>{REJECTS_SUFFIX} beside each file"
        )
        head = f"shop {self.shop.name}: {len(refused)} file(s) rejected, nothing imported; {hint}:"
        return InputError("\n".join([head, *listed, *more]))

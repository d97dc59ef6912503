"""How a sync shows its progress: a Rich bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import Progress as RichBar
from rich.progress import SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

log = logging.getLogger("shopcrm.sync")


class Progress(Protocol):
    """Told about each stored page."""

    def page(self, shop: str, stream: str, records: int, total: int) -> None: ...


class LogProgress:
    def page(self, shop: str, stream: str, records: int, total: int) -> None:
        log.info(
            "shop %s: %s page stored (%d records, %d so far)",
            shop,
            stream,
            records,
            total,
            extra={"shop": shop, "stream": stream},
        )


class BarProgress:
    """A live line per shop and stream with the running record count."""

    def __init__(self) -> None:
        self._bar = RichBar(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:>9,.0f} records"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[tuple[str, str], TaskID] = {}

    def __enter__(self) -> BarProgress:
        self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()

    def page(self, shop: str, stream: str, records: int, total: int) -> None:
        key = (shop, stream)
        if key not in self._tasks:
            self._tasks[key] = self._bar.add_task(f"{shop} {stream}", total=None)
        self._bar.update(self._tasks[key], completed=total)


def on_terminal() -> bool:
    return sys.stderr.isatty()

"""The connector contract: what `sync/` needs from a platform.

A connector is built from one shop's config. It knows HTTP and the platform's shapes and
nothing of the store; `sync/` moves its pages into the store. The records it yields are in
`shopcrm.records`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from shopcrm.records import CustomerRecord, OrderRecord, Page, ShopFacts, TagChange, TagResult


class Connector(Protocol):
    """What `sync/` needs from a platform (docs/architecture.md, "Contracts")."""

    def check(self) -> ShopFacts:
        """Shop facts; raises AuthError with a clear message when credentials are refused."""
        ...

    def customers(self, since: datetime | None) -> Iterator[Page[CustomerRecord]]:
        """Pages of customers updated at or after `since` (all when None), oldest first."""
        ...

    def orders(self, since: datetime | None) -> Iterator[Page[OrderRecord]]:
        """Pages of orders updated at or after `since` (all when None), oldest first."""
        ...

    def apply(self, changes: Sequence[TagChange]) -> Iterator[TagResult]:
        """Add/remove managed tags (or the platform's equivalent); one result per change."""
        ...

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far (for run statistics)."""
        ...

    def close(self) -> None: ...

"""Bulk operations: a first full sync of a large shop in one query instead of thousands of pages.

Flow: `bulkOperationRunQuery`, poll `bulkOperation(id:)` until COMPLETED, download the JSONL to
a temporary file (retried as a whole if the transfer breaks), then read it. Children (an
order's line items) are separate lines carrying `__parentId`, after their parent but not
necessarily right after it. A first pass notes, per parent, the line of its last child; the
second pass emits each order as soon as that line is read. Memory stays bounded by the
orders still waiting for children plus one small index, not by the size of the shop.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import requests

from shopcrm.connectors.http import HttpClient
from shopcrm.connectors.shopify.nodes import customer_record, order_record
from shopcrm.connectors.shopify.queries import (
    BULK_CUSTOMERS,
    BULK_ORDERS,
    BULK_PAGE,
    BULK_POLL_INTERVAL_S,
    BULK_POLL_MAX_INTERVAL_S,
    BULK_RUN,
    BULK_STATUS,
)
from shopcrm.errors import PlatformError, PlatformUnavailable
from shopcrm.records import CustomerRecord, OrderRecord, Page

Query = Callable[[str, Mapping[str, Any]], dict[str, Any]]
_PARENT = re.compile(rb'"__parentId"\s*:\s*"([^"]+)"')
_FAILED = ("FAILED", "CANCELED", "CANCELING", "EXPIRED")
_CHUNK = 1 << 20


class BulkReader:
    """Runs one bulk query at a time and turns its JSONL into Pages.

    Args:
        query: runs a GraphQL document and returns its `data` (the connector's paced call).
        client: downloads the result file.
        sleep: between status polls; injectable for tests.
    """

    def __init__(
        self, query: Query, client: HttpClient, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._query = query
        self._client = client
        self._sleep = sleep

    def customers(self) -> Iterator[Page[CustomerRecord]]:
        """Every customer, in pages of BULK_PAGE (no high-water mark: the file is unsorted)."""
        with self._result(BULK_CUSTOMERS) as file:
            batch: list[CustomerRecord] = []
            for raw in file:
                if raw.strip():
                    batch.append(customer_record(self._decode(raw)))
                if len(batch) >= BULK_PAGE:
                    yield Page(batch)
                    batch = []
            if batch:
                yield Page(batch)

    def orders(self) -> Iterator[Page[OrderRecord]]:
        """Every order with all its lines, in pages of BULK_PAGE."""
        with self._result(BULK_ORDERS) as file:
            last_child = _last_child_lines(file)
            file.seek(0)
            waiting: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
            early: dict[str, list[dict[str, Any]]] = {}  # children read before their parent
            batch: list[OrderRecord] = []
            for index, raw in enumerate(file):
                if not raw.strip():
                    continue
                obj = self._decode(raw)
                parent = obj.pop("__parentId", None)
                if parent is None:
                    oid = str(obj["id"])
                    waiting[oid] = (obj, early.pop(oid, []))
                    done = oid if last_child.get(oid, -1) <= index else None
                else:
                    if parent in waiting:
                        waiting[parent][1].append(obj)
                    else:
                        early.setdefault(parent, []).append(obj)
                    done = parent if last_child.get(parent) == index else None
                if done is not None and done in waiting:
                    node, lines = waiting.pop(done)
                    batch.append(order_record(node, lines))
                    if len(batch) >= BULK_PAGE:
                        yield Page(batch)
                        batch = []
            if waiting or early:
                raise PlatformError(
                    f"shop {self._client.shop}: bulk result is inconsistent "
                    f"({len(waiting)} orders incomplete, {len(early)} lines without an order)"
                )
            if batch:
                yield Page(batch)

    def _result(self, inner: str) -> IO[bytes]:
        """The finished operation's JSONL as a temporary file (empty when nothing matched)."""
        url = self._run(inner)
        file = tempfile.TemporaryFile()  # noqa: SIM115 - returned open; the caller's `with` closes it
        if url:
            self._client.retrying(lambda: self._download(url, file))
            file.seek(0)
        return file

    def _run(self, inner: str) -> str | None:
        shop = self._client.shop
        payload = self._query(BULK_RUN, {"query": inner}).get("bulkOperationRunQuery") or {}
        errors = payload.get("userErrors") or []
        operation = payload.get("bulkOperation")
        if errors or not operation:
            messages = "; ".join(str(e.get("message")) for e in errors) or "no operation returned"
            raise PlatformError(f"shop {shop}: bulk query refused: {messages}")
        op_id = operation["id"]
        interval = BULK_POLL_INTERVAL_S
        while True:
            status = self._query(BULK_STATUS, {"id": op_id}).get("bulkOperation")
            if not status:
                raise PlatformError(f"shop {shop}: bulk operation {op_id} not found")
            state = status.get("status")
            if state == "COMPLETED":
                return status.get("url")
            if state in _FAILED:
                code = status.get("errorCode") or "no error code"
                raise PlatformError(f"shop {shop}: bulk operation {op_id} {state} ({code})")
            self._sleep(interval)
            interval = min(interval * 1.5, BULK_POLL_MAX_INTERVAL_S)

    def _download(self, url: str, file: IO[bytes]) -> None:
        file.seek(0)
        file.truncate()
        response = self._client.send_once("GET", url, stream=True)
        try:
            for chunk in response.iter_content(_CHUNK):
                file.write(chunk)
        except requests.RequestException as exc:
            raise PlatformUnavailable(
                f"shop {self._client.shop}: bulk result download broke off"
            ) from exc
        finally:
            response.close()

    def _decode(self, raw: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise PlatformError(
                f"shop {self._client.shop}: bulk result has an unreadable line ({len(raw)} bytes)"
            ) from exc
        if not isinstance(obj, dict) or "id" not in obj:
            raise PlatformError(f"shop {self._client.shop}: bulk result line without an id")
        return obj


def _last_child_lines(file: IO[bytes]) -> dict[str, int]:
    """Per parent id, the index of the line holding its last child (a byte scan, no JSON)."""
    last: dict[str, int] = {}
    for index, raw in enumerate(file):
        match = _PARENT.search(raw)
        if match:
            last[match.group(1).decode()] = index
    return last

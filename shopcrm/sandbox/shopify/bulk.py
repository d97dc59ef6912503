"""Bulk query operations: `bulkOperationRunQuery`, polling, and the JSONL result file.

The inner query is parsed and validated against the sandbox schema and checked against
Shopify's bulk rules (a query, one top-level `customers` or `orders` connection, at most five
connections, nested at most two deep, parents of nested connections select `id`); problems
come back as `userErrors`. It is then executed for real by graphql-core, in chunks of
`CHUNK` root nodes walked with the same cursor paging as `customers`/`orders`, and each chunk
is flattened into JSONL lines and appended to a temporary file: root nodes as lines, nested
connection children as their own lines after their parent with `__parentId`. Memory stays
bounded by one chunk whatever the shop's size.

Status goes CREATED (the mutation's answer) -> RUNNING -> COMPLETED. A `BulkTiming` says how
long that takes the way Shopify's do: nothing for `start_delay_s`, then `records_per_s` objects
(JSONL lines) a second, so `objectCount` grows while RUNNING and the operation completes
`start_delay_s + objectCount / records_per_s` after it was created (or when the file is written,
if later). The default is instant, as tests want; `REALISTIC_BULK_*` in `state` are the figures
users report. It also stays RUNNING until it has been polled `ready_after_polls` times.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO, cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values

from shopcrm.sandbox.server import SandboxResponse
from shopcrm.sandbox.shopify.cost import flatten_fields
from shopcrm.sandbox.shopify.index import Kind, encode_cursor
from shopcrm.sandbox.shopify.projector import Projector
from shopcrm.sandbox.shopify.render import Node, gid, iso
from shopcrm.sandbox.shopify.resolvers import Call, Resolvers
from shopcrm.sandbox.shopify.state import BulkOperation, ShopState

log = logging.getLogger(__name__)

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
CHUNK = 500  # root nodes per execution
MAX_CONNECTIONS = 5
MAX_DEPTH = 2
MAX_RUNNING = 5  # bulk query operations at a time per shop (2026-01+)
ROOT_FIELDS: dict[str, tuple[Kind, str]] = {
    "customers": ("customer", "read_customers"),
    "orders": ("order", "read_orders"),
}


class BulkQueryError(ValueError):
    """A bulk query Shopify would refuse; the message becomes a userError."""


@dataclass
class Shape:
    """Where the connections are in one node's result, by response key."""

    key: str
    connections: list[tuple[str, Shape]] = field(default_factory=list)
    needs_id: bool = False


@dataclass(frozen=True, slots=True)
class BulkTiming:
    """How long a bulk operation takes: a fixed start, then objects at a steady rate.

    Args:
        start_delay_s: seconds before the first object is reported.
        records_per_s: objects (JSONL lines) a second after that; None: as fast as written.
    """

    start_delay_s: float = 0.0
    records_per_s: float | None = None

    def __post_init__(self) -> None:
        if self.start_delay_s < 0:
            raise ValueError(f"start_delay_s must be >= 0, got {self.start_delay_s}")
        if self.records_per_s is not None and self.records_per_s <= 0:
            raise ValueError(f"records_per_s must be > 0 or None, got {self.records_per_s}")

    def duration(self, objects: int) -> float:
        """Seconds from creation to completion for an operation of `objects` lines."""
        rate = self.records_per_s
        return self.start_delay_s + (objects / rate if rate else 0.0)

    def shown(self, elapsed: float, written: int) -> int:
        """`objectCount` after `elapsed` seconds, of the `written` lines in the file so far."""
        running = elapsed - self.start_delay_s
        if running < 0:
            return 0
        if self.records_per_s is None:
            return written
        return min(written, int(running * self.records_per_s))


class BulkRunner:
    """Runs and reports the bulk operations of every shop of one sandbox.

    Args:
        schema: the sandbox schema the inner queries run against.
        base_url: the server's URL, known once it listens.
        ready_after_polls: polls an operation stays RUNNING at least.
        timing: the latency model (instant by default); replaceable while running.
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        base_url: Callable[[], str],
        *,
        ready_after_polls: int = 1,
        timing: BulkTiming | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.schema = schema
        self.base_url = base_url
        self.ready_after_polls = ready_after_polls
        self.timing = timing or BulkTiming()
        self.clock = clock
        self.operations: dict[int, BulkOperation] = {}
        self._lock = threading.Lock()
        self._next_id = 5_000_000_001
        self._dir = tempfile.TemporaryDirectory(prefix="shopify-bulk-")

    def close(self) -> None:
        for op in list(self.operations.values()):
            op.finished.wait(timeout=30)
        self._dir.cleanup()

    # --- mutation --------------------------------------------------------------------------
    def run_query(self, call: Call, query: str) -> Node:
        """`bulkOperationRunQuery`: validate, then generate the file in the background."""
        shop = call.shop
        try:
            document, root = self._check(query)
        except BulkQueryError as exc:
            return {"bulkOperation": None, "userErrors": [_user_error(str(exc), "INVALID")]}
        with self._lock:
            running = [
                o
                for o in self.operations.values()
                if o.shop == shop.handle and not o.finished.is_set()
            ]
            if len(running) >= MAX_RUNNING:
                message = (
                    "A bulk query operation for this app and shop is already in progress: "
                    f"{gid('BulkOperation', running[0].id)}."
                )
                return {
                    "bulkOperation": None,
                    "userErrors": [_user_error(message, "OPERATION_IN_PROGRESS")],
                }
            op = BulkOperation(
                id=self._next_id,
                shop=shop.handle,
                query=query,
                created_at=shop.dataset.now,
                path=Path(self._dir.name) / f"{self._next_id}.jsonl",
                started=self.clock(),
            )
            self._next_id += 1
            self.operations[op.id] = op
            shop.bulk.append(op)
        call.wrote = True
        threading.Thread(
            target=self._generate,
            args=(op, call, document, root),
            name=f"bulk-{op.id}",
            daemon=True,
        ).start()
        return {"bulkOperation": self._node(op), "userErrors": []}

    def _check(self, query: str) -> tuple[DocumentNode, FieldNode]:
        schema = self.schema
        try:
            document = parse(query)
        except GraphQLError as exc:
            raise BulkQueryError(f"Invalid bulk query: {exc.message}") from exc
        errors = validate(schema, document)
        if errors:
            raise BulkQueryError(f"Invalid bulk query: {errors[0].message}")
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(ops) != 1 or ops[0].operation != OperationType.QUERY:
            raise BulkQueryError("Invalid bulk query: the document must hold exactly one query")
        fragments = _fragments(document)
        roots = flatten_fields(ops[0].selection_set, fragments)
        if len(roots) != 1 or roots[0].name.value not in ROOT_FIELDS:
            raise BulkQueryError(
                "Bulk queries must contain exactly one top-level connection field: "
                f"one of {sorted(ROOT_FIELDS)}"
            )
        shape = self.shape(roots[0], fragments)
        connections, depth = _count(shape)
        if connections > MAX_CONNECTIONS:
            raise BulkQueryError(
                f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
            )
        if depth > MAX_DEPTH:
            raise BulkQueryError(
                "Bulk queries cannot contain connections with a nesting depth greater than "
                f"{MAX_DEPTH}."
            )
        missing = _missing_id(shape)
        if missing:
            raise BulkQueryError(
                "The parent 'node' field for a nested connection must select the 'id' field: "
                f"{missing}"
            )
        return document, roots[0]

    def shape(self, field_node: FieldNode, fragments: dict[str, FragmentDefinitionNode]) -> Shape:
        """The connections under a connection field's nodes, from the query and the schema."""
        schema = self.schema
        key = field_node.alias.value if field_node.alias else field_node.name.value
        connection_type = _field_type(schema.query_type, field_node.name.value)
        return self._node_shape(key, connection_type, field_node, fragments)

    def _node_shape(
        self,
        key: str,
        connection: Any,
        node: FieldNode,
        fragments: dict[str, FragmentDefinitionNode],
    ) -> Shape:
        node_type = get_named_type(connection.fields["nodes"].type)
        shape = Shape(key)
        for selection in (f.selection_set for f in _node_fields(node, fragments)):
            names = {f.name.value for f in flatten_fields(selection, fragments)}
            for sub in flatten_fields(selection, fragments):
                sub_type = _field_type(node_type, sub.name.value)
                if isinstance(sub_type, GraphQLObjectType) and sub_type.name.endswith("Connection"):
                    child_key = sub.alias.value if sub.alias else sub.name.value
                    shape.connections.append(
                        (child_key, self._node_shape(child_key, sub_type, sub, fragments))
                    )
                    shape.needs_id = shape.needs_id or "id" not in names
        return shape

    # --- generation ------------------------------------------------------------------------
    def _generate(
        self, op: BulkOperation, call: Call, document: DocumentNode, root: FieldNode
    ) -> None:
        schema = self.schema
        fragments = _fragments(document)
        shape = self.shape(root, fragments)
        kind, scope = ROOT_FIELDS[root.name.value]
        connection = _field_type(schema.query_type, root.name.value)
        node_type = get_named_type(connection.fields["nodes"].type)
        node_fields = _node_fields(root, fragments)
        args = get_argument_values(schema.query_type.fields[root.name.value], root, {})
        sort = args.get("sortKey") or "ID"
        call.bulk_mode = True
        resolvers = Resolvers(call)
        render = resolvers.renderer(kind)
        projector = Projector(schema, document)
        try:
            if scope not in call.token.scopes:
                op.error_code, op.status = "ACCESS_DENIED", "FAILED"
                return
            with op.path.open("w", encoding="utf-8") as out:
                after = None
                while True:
                    page = resolvers.listing(kind, {**args, "after": after}, first=CHUNK)
                    for record in page.records:
                        node = projector.project(render(record), node_type, node_fields)
                        op.root_object_count += 1
                        op.object_count += _write(out, node, shape, None)
                    if not page.has_next:
                        break
                    after = encode_cursor(sort, page.keys[-1])
            op.file_size = os.path.getsize(op.path)
            op.generated_after = self.clock() - op.started
        except Exception:  # the operation fails the way Shopify's do: status, errorCode
            log.exception("bulk operation %s of shop %s failed", op.id, op.shop)
            op.error_code, op.status = "INTERNAL_SERVER_ERROR", "FAILED"
        finally:
            op.finished.set()

    # --- polling ---------------------------------------------------------------------------
    def _poll(self, op: BulkOperation) -> Node:
        op.polls += 1
        if op.status in ("CREATED", "RUNNING"):
            takes = self.timing.duration(op.object_count)
            done = (
                op.finished.is_set()
                and op.polls >= self.ready_after_polls
                and self.clock() - op.started >= takes
            )
            op.status = "COMPLETED" if done else "RUNNING"
            if done:
                after = timedelta(seconds=max(takes, op.generated_after))
                op.completed_at = (op.started_wall + after).replace(microsecond=0)
        return self._node(op)

    def node(self, shop: ShopState, ident: int) -> Node | None:
        op = self.operations.get(ident)
        return None if op is None or op.shop != shop.handle else self._poll(op)

    def current(self, shop: ShopState, kind: str = "QUERY") -> Node | None:
        """`currentBulkOperation`: the shop's latest query operation (mutations: none run here)."""
        ops = [o for o in shop.bulk if kind == "QUERY"]
        return self._poll(ops[-1]) if ops else None

    def _node(self, op: BulkOperation) -> Node:
        done = op.status == "COMPLETED"
        url = f"{self.base_url()}/bulk-results/{op.id}.jsonl" if done and op.object_count else None
        objects, roots = op.object_count, op.root_object_count
        if not done:  # what the model has reached; roots in the file's proportion
            shown = self.timing.shown(self.clock() - op.started, objects)
            objects, roots = shown, roots * shown // objects if objects else 0
        return {
            "__typename": "BulkOperation",
            "id": gid("BulkOperation", op.id),
            "status": op.status,
            "errorCode": op.error_code,
            "type": "QUERY",
            "query": op.query,
            "createdAt": iso(op.created_at),
            "completedAt": iso(op.completed_at) if done else None,
            "objectCount": str(objects),
            "rootObjectCount": str(roots),
            "fileSize": str(op.file_size) if done and op.object_count else None,
            "url": url,
            "partialDataUrl": None,
        }

    def download(self, ident: int) -> SandboxResponse:
        """The JSONL file of a completed operation (404 until then, like an unsigned URL)."""
        op = self.operations.get(ident)
        if op is None or op.status != "COMPLETED":
            return SandboxResponse.json({"errors": "Not Found"}, status=404)
        headers = {"Content-Type": "application/jsonl"}
        if not op.file_size:
            return SandboxResponse(body=b"", headers=headers)
        with op.path.open("rb") as file:
            # mapped, not read: a 100 MB result is paged in by the OS as the server sends it
            body = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        return SandboxResponse(body=cast(bytes, body), headers=headers)


def _user_error(message: str, code: str) -> Node:
    return {"field": ["query"], "message": message, "code": code}


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _field_type(parent: Any, name: str) -> Any:
    definition = parent.fields.get(name) if isinstance(parent, GraphQLObjectType) else None
    return None if definition is None else get_named_type(definition.type)


def _node_fields(node: FieldNode, fragments: dict[str, FragmentDefinitionNode]) -> list[FieldNode]:
    """The `nodes` and `edges { node }` fields of a connection field: the node selections."""
    out = []
    for sub in flatten_fields(node.selection_set, fragments):
        if sub.name.value == "nodes" and sub.selection_set:
            out.append(sub)
        elif sub.name.value == "edges":
            out += [
                e
                for e in flatten_fields(sub.selection_set, fragments)
                if e.name.value == "node" and e.selection_set
            ]
    return out


def _count(shape: Shape) -> tuple[int, int]:
    """(connections, nesting depth) of a shape, the root connection included."""
    counts = [_count(child) for _, child in shape.connections]
    return 1 + sum(c for c, _ in counts), 1 + max((d for _, d in counts), default=0)


def _missing_id(shape: Shape) -> str | None:
    if shape.needs_id:
        return shape.key
    return next((m for _, child in shape.connections if (m := _missing_id(child))), None)


def _nodes_of(connection: Any) -> list[Node]:
    if not isinstance(connection, dict):
        return []
    if isinstance(connection.get("nodes"), list):
        return connection["nodes"]
    return [e["node"] for e in connection.get("edges") or () if isinstance(e, dict)]


def _write(out: TextIO, node: Node, shape: Shape, parent: str | None) -> int:
    """Write a node and its nested connections' nodes; returns the lines written."""
    children = [(child, node.pop(key, None)) for key, child in shape.connections]
    line = dict(node)
    if parent is not None:
        line["__parentId"] = parent
    out.write(_JSON.encode(line) + "\n")
    written = 1
    for child_shape, connection in children:
        for child in _nodes_of(connection):
            written += _write(out, child, child_shape, node.get("id"))
    return written

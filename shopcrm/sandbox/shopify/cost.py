"""Shopify's calculated query cost and the leaky bucket that enforces it.

Cost rules (shopify.dev, "GraphQL Admin API rate limits"): a scalar or enum costs 0, an object 1,
an interface the most expensive of its possible selections, a connection 2 plus `first` times
the cost of one node (edges, nodes and pageInfo add nothing), a mutation field 10. The requested
cost is computed from the query before it runs and charged; after it runs the actual cost
(connections sized by the nodes they returned) is what the bucket keeps, the rest is refunded.
Example: `orders(first: 250) { nodes { id totalPriceSet { shopMoney { amount } } } }` requests
2 + 250 * 3 = 752.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)

from shopcrm.sandbox.shopify.state import CONNECTION_COST, MUTATION_COST


def flatten_fields(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    """The fields of a selection with its fragments spread (whatever their type condition)."""
    out: list[FieldNode] = []
    for sel in selection_set.selections if selection_set else ():
        if isinstance(sel, FieldNode):
            out.append(sel)
        elif isinstance(sel, InlineFragmentNode):
            out.extend(flatten_fields(sel.selection_set, fragments))
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
            out.extend(flatten_fields(fragments[sel.name.value].selection_set, fragments))
    return out


class QueryCost:
    """Requested (data=None) or actual (data given) cost of one operation."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any] | None,
        operation_name: str | None = None,
    ) -> None:
        self.schema = schema
        self.variables = variables or {}
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        named = [o for o in operations if o.name and o.name.value == operation_name]
        self.operation = (named or operations or [None])[0]

    def total(self, data: Mapping[str, Any] | None = None) -> int:
        op = self.operation
        if op is None:
            return 0
        if op.operation == OperationType.MUTATION:
            return MUTATION_COST * len(self._fields(op.selection_set))
        return self._selection(
            op.selection_set, self.schema.query_type, data, actual=data is not None
        )

    def _fields(self, selection_set: SelectionSetNode | None) -> list[FieldNode]:
        return flatten_fields(selection_set, self.fragments)

    def _selection(
        self, selection_set: SelectionSetNode | None, parent: Any, data: Any, *, actual: bool
    ) -> int:
        if selection_set is None or parent is None:
            return 0
        if isinstance(parent, GraphQLInterfaceType | GraphQLUnionType):
            # the most expensive of the possible types' selections
            return max(
                (
                    self._selection(selection_set, t, data, actual=actual)
                    for t in self.schema.get_possible_types(parent)
                ),
                default=0,
            )
        total = 0
        for node in self._fields(selection_set):
            definition = (
                parent.fields.get(node.name.value)
                if isinstance(parent, GraphQLObjectType)
                else None
            )
            if definition is None:
                continue
            key = node.alias.value if node.alias else node.name.value
            value = data.get(key) if isinstance(data, Mapping) else None
            total += self._field(node, get_named_type(definition.type), value, actual=actual)
        return total

    def _field(self, node: FieldNode, named: Any, value: Any, *, actual: bool) -> int:
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType):
            return 0
        if named.name.endswith("Connection") and isinstance(named, GraphQLObjectType):
            return self._connection(node, named, value, actual=actual)
        if isinstance(value, list):
            return 1 + max(
                (self._selection(node.selection_set, named, v, actual=actual) for v in value),
                default=0,
            )
        return 1 + self._selection(node.selection_set, named, value, actual=actual)

    def _connection(
        self, node: FieldNode, named: GraphQLObjectType, value: Any, *, actual: bool
    ) -> int:
        node_type = get_named_type(named.fields["nodes"].type)
        per_node: list[SelectionSetNode] = []
        for sub in self._fields(node.selection_set):
            if sub.name.value == "nodes" and sub.selection_set:
                per_node.append(sub.selection_set)
            elif sub.name.value == "edges":
                per_node.extend(
                    e.selection_set
                    for e in self._fields(sub.selection_set)
                    if e.name.value == "node" and e.selection_set
                )
        if not actual:
            first = self._argument(node, "first")
            one = max(
                (self._selection(s, node_type, None, actual=False) for s in per_node), default=0
            )
            return CONNECTION_COST + (first or 0) * (1 + one) if per_node else CONNECTION_COST
        nodes = _returned_nodes(value)
        return (
            CONNECTION_COST
            + sum(
                1
                + max((self._selection(s, node_type, n, actual=True) for s in per_node), default=0)
                for n in nodes
            )
            if per_node
            else CONNECTION_COST
        )

    def _argument(self, node: FieldNode, name: str) -> int | None:
        for arg in node.arguments or ():
            if arg.name.value != name:
                continue
            if isinstance(arg.value, IntValueNode):
                return int(arg.value.value)
            if isinstance(arg.value, VariableNode):
                found = self.variables.get(arg.value.name.value)
                return found if isinstance(found, int) else None
        return None


def _returned_nodes(value: Any) -> list[Any]:
    if not isinstance(value, Mapping):
        return []
    if isinstance(value.get("nodes"), list):
        return value["nodes"]
    edges = value.get("edges")
    if isinstance(edges, list):
        return [e.get("node") if isinstance(e, Mapping) else None for e in edges]
    return []


class LeakyBucket:
    """A bucket of points refilled continuously; size and rate are read live from the owner."""

    def __init__(
        self,
        size: Callable[[], float],
        rate: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = size
        self._rate = rate
        self._clock = clock
        self._available = size()
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._available = min(self._size(), self._available + (now - self._at) * self._rate())
        self._at = now

    def take(self, points: float) -> bool:
        """Charge `points` if they are available; False (nothing charged) if not."""
        with self._lock:
            self._refill()
            if points > self._available:
                return False
            self._available -= points
            return True

    def refund(self, points: float) -> None:
        with self._lock:
            self._refill()
            self._available = min(self._size(), self._available + points)

    def status(self) -> dict[str, float]:
        """Shopify's `throttleStatus`."""
        with self._lock:
            self._refill()
            return {
                "maximumAvailable": float(self._size()),
                "currentlyAvailable": float(int(self._available)),
                "restoreRate": float(self._rate()),
            }

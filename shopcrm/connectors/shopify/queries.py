"""Every GraphQL document the Shopify connector sends, and the platform's limits in one place.

Documents use only current fields (`defaultEmailAddress`, `bulkOperation(id:)`); a test
validates each of them against the published Admin schemas. Page sizes are chosen so every
query's requested cost stays well under the 1,000-point single-query cap (`estimate_cost`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import FieldNode, OperationDefinitionNode, SelectionSetNode, parse
from graphql.language import IntValueNode, VariableNode

DEFAULT_API_VERSION = "2026-10"
MAX_QUERY_COST = 1000  # Shopify refuses a single query requested above this
CUSTOMERS_PAGE = 250  # connection maximum
ORDERS_PAGE = 25
LINES_PER_ORDER = 5  # lines fetched with the order; the rest are paged with ORDER_LINES
LINES_PAGE = 100
MUTATION_COST = 10
MUTATIONS_PER_DOCUMENT = 75  # aliased tagsAdd/tagsRemove per request: 750 points + selections
TOKEN_REFRESH_MARGIN_S = 300.0  # renew a client-credentials token this long before it expires
BULK_POLL_INTERVAL_S = 0.5  # first wait; grows by half each poll up to the maximum
BULK_POLL_MAX_INTERVAL_S = 5.0
BULK_PAGE = 1000  # records per Page yielded from a bulk result
ACCESS_TOKEN_HEADER = "X-Shopify-Access-Token"  # noqa: S105 - a header name
READ_ALL_ORDERS = "read_all_orders"

_CUSTOMER_FIELDS = """
      id firstName lastName createdAt updatedAt tags
      defaultEmailAddress { emailAddress marketingState }"""

_LINE_FIELDS = """
          id quantity sku title
          product { id }
          originalUnitPriceSet { shopMoney { amount currencyCode } }"""

_ORDER_FIELDS = """
      id name email createdAt processedAt updatedAt cancelledAt displayFinancialStatus
      customer { id }
      totalPriceSet { shopMoney { amount currencyCode } }
      totalRefundedSet { shopMoney { amount currencyCode } }"""

SHOP = """
query ShopFacts {
  shop { name myshopifyDomain currencyCode ianaTimezone }
  currentAppInstallation { accessScopes { handle } }
}"""

# How many records a stream will deliver: sizes the first page (a quiet shop costs no list
# query at all) and decides whether a first sync is large enough for a bulk operation.
CUSTOMERS_COUNT = """
query CustomersCount($limit: Int, $query: String) {
  customersCount(limit: $limit, query: $query) { count }
}"""

ORDERS_COUNT = """
query OrdersCount($limit: Int, $query: String) {
  ordersCount(limit: $limit, query: $query) { count }
}"""

CUSTOMERS = f"""
query Customers($first: Int!, $after: String, $query: String) {{
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    edges {{ node {{{_CUSTOMER_FIELDS}
    }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

ORDERS = f"""
query Orders($first: Int!, $after: String, $query: String, $lines: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    edges {{ node {{{_ORDER_FIELDS}
      lineItems(first: $lines) {{
        edges {{ node {{{_LINE_FIELDS}
        }} }}
        pageInfo {{ hasNextPage endCursor }}
      }}
    }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

ORDER_LINES = f"""
query OrderLines($id: ID!, $first: Int!, $after: String) {{
  order(id: $id) {{
    lineItems(first: $first, after: $after) {{
      edges {{ node {{{_LINE_FIELDS}
      }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}"""

BULK_RUN = """
mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"""

BULK_STATUS = """
query BulkStatus($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount url partialDataUrl }
}"""

# Inner queries of bulk operations: no pagination arguments, children as `__parentId` lines.
BULK_CUSTOMERS = f"""
{{
  customers {{
    edges {{ node {{{_CUSTOMER_FIELDS}
    }} }}
  }}
}}"""

BULK_ORDERS = f"""
{{
  orders {{
    edges {{ node {{{_ORDER_FIELDS}
      lineItems {{
        edges {{ node {{{_LINE_FIELDS}
        }} }}
      }}
    }} }}
  }}
}}"""

_TAG_SELECTION = "{ node { id } userErrors { field message } }"


def updated_since(since_iso: str | None) -> str | None:
    """The search filter for records updated at or after an instant (quoted, or the time part
    would be ignored)."""
    return None if since_iso is None else f"updated_at:>='{since_iso}'"


def tags_document(ops: list[tuple[str, str]]) -> str:
    """One mutation with an aliased `tagsAdd`/`tagsRemove` per (alias, field) in `ops`.

    Each alias `a` takes variables `$a_id` and `$a_tags`, so tag strings are never spliced
    into the document.
    """
    params = ", ".join(f"${a}_id: ID!, ${a}_tags: [String!]!" for a, _ in ops)
    body = "\n".join(
        f"  {a}: {field}(id: ${a}_id, tags: ${a}_tags) {_TAG_SELECTION}" for a, field in ops
    )
    return f"mutation Tags({params}) {{\n{body}\n}}"


def estimate_cost(document: str, variables: Mapping[str, Any] | None = None) -> int:
    """Shopify's requested cost of a document, by its published rules.

    Objects cost 1, scalars 0, a connection 2 plus `first` times its nodes' cost, a mutation
    field 10. Used to pace the first call of a document; later calls use the cost Shopify
    reported for it.
    """
    variables = variables or {}
    total = 0
    for definition in parse(document).definitions:
        if isinstance(definition, OperationDefinitionNode):
            mutation = definition.operation.value == "mutation"
            for selection in definition.selection_set.selections:
                if isinstance(selection, FieldNode):
                    cost = _field_cost(selection, variables)
                    total += max(cost, MUTATION_COST) if mutation else cost
    return total


def _size(field: FieldNode, variables: Mapping[str, Any]) -> int | None:
    for argument in field.arguments:
        if argument.name.value in ("first", "last"):
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                return int(variables.get(value.name.value) or 0)
    return None


def _selection_cost(selection_set: SelectionSetNode | None, variables: Mapping[str, Any]) -> int:
    if selection_set is None:
        return 0
    return sum(
        _field_cost(s, variables) for s in selection_set.selections if isinstance(s, FieldNode)
    )


def _field_cost(field: FieldNode, variables: Mapping[str, Any]) -> int:
    if field.selection_set is None:
        return 0
    name = field.name.value
    if name == "pageInfo":
        return 0
    children = _selection_cost(field.selection_set, variables)
    if name == "edges":
        return children
    size = _size(field, variables)
    return 1 + children if size is None else 2 + size * children

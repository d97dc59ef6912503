"""Every GraphQL document the Shopify connector can send validates against the published
Admin schemas (2026-07 and 2026-10), and stays under the single-query cost cap."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema, parse, validate
from graphql.validation import NoDeprecatedCustomRule

from shopcrm.connectors.shopify import queries as q

SCHEMA_FILES = ("admin-2026-07.graphql", "admin-2026-10.graphql")

DOCUMENTS = {
    "shop": (q.SHOP, {}),
    "customers_count": (q.CUSTOMERS_COUNT, {"limit": 10_001}),
    "orders_count": (q.ORDERS_COUNT, {"limit": 10_001}),
    "customers": (q.CUSTOMERS, {"first": q.CUSTOMERS_PAGE}),
    "orders": (q.ORDERS, {"first": q.ORDERS_PAGE, "lines": q.LINES_PER_ORDER}),
    "order_lines": (q.ORDER_LINES, {"first": q.LINES_PAGE}),
    "bulk_run": (q.BULK_RUN, {}),
    "bulk_status": (q.BULK_STATUS, {}),
    "bulk_customers": (q.BULK_CUSTOMERS, {}),
    "bulk_orders": (q.BULK_ORDERS, {}),
    "tags_batch": (
        q.tags_document(
            [
                (f"c{i}{s}", f)
                for i in range(q.MUTATIONS_PER_DOCUMENT // 2)
                for s, f in (("a", "tagsAdd"), ("r", "tagsRemove"))
            ]
        ),
        {},
    ),
}


def _problems(schema: GraphQLSchema, document: str) -> list[str]:
    """Validation errors, then uses of deprecated fields (replaced ones such as Customer.email)."""
    tree = parse(document)
    errors = validate(schema, tree) or validate(schema, tree, [NoDeprecatedCustomRule])
    return [e.message for e in errors]


@pytest.mark.parametrize("schema_file", SCHEMA_FILES)
def test_every_document_validates_against_the_published_schema(
    platforms_dir: Path, schema_file: str
) -> None:
    """One test per schema file: building a 3.7 MB schema takes seconds, so build it once."""
    text = (platforms_dir / "shopify" / schema_file).read_text(encoding="utf-8")
    schema = build_schema(text, assume_valid=True)
    problems = {name: _problems(schema, doc) for name, (doc, _) in DOCUMENTS.items()}
    assert {name: p for name, p in problems.items() if p} == {}
    # the check has teeth: a misspelt field and a deprecated one are both reported
    misspelt = q.CUSTOMERS.replace("emailAddress marketingState", "emailAdress marketingState")
    assert _problems(schema, misspelt)
    deprecated = q.CUSTOMERS.replace("defaultEmailAddress { emailAddress marketingState }", "email")
    assert any("Customer.email" in m for m in _problems(schema, deprecated))


def test_money_is_never_read_from_presentment_money() -> None:
    assert not any("presentmentMoney" in doc for doc, _ in DOCUMENTS.values())


# bulk inner queries are not subject to the single-query cost cap
PAGED = sorted(n for n in DOCUMENTS if n not in ("bulk_customers", "bulk_orders"))


@pytest.mark.parametrize("name", PAGED)
def test_requested_cost_stays_under_the_single_query_cap(name: str) -> None:
    document, variables = DOCUMENTS[name]
    assert 0 < q.estimate_cost(document, variables) <= 0.9 * q.MAX_QUERY_COST

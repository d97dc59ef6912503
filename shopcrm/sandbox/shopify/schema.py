"""The Shopify sandbox's GraphQL schema: a pruned copy of Shopify's published Admin schema.

The sandbox must answer any well-behaved Admin API client, so its schema is not retyped: it is
cut out of the published SDL (`../shared/platforms/shopify/admin-<version>.graphql`) by `prune`,
keeping only the types, fields and arguments listed in `KEEP` with their published types,
descriptions and deprecations. The result is committed as `admin_subset.graphql` so the
sandbox runs without the published files; a test rebuilds it and checks it is unchanged and a
subset of every published version.

Enum values are intersected with the other published versions given, so the subset stays valid
against each of them. Regenerate after changing `KEEP`:
    cd ../shared/platforms/shopify && python -m shopcrm.sandbox.shopify.schema prune \
        admin-2026-10.graphql admin-2026-07.graphql
"""

from __future__ import annotations

import copy
import sys
from functools import cache
from pathlib import Path

from graphql import (
    DocumentNode,
    EnumTypeDefinitionNode,
    GraphQLSchema,
    SchemaDefinitionNode,
    TypeDefinitionNode,
    build_ast_schema,
    parse,
    print_ast,
)

SUBSET_PATH = Path(__file__).with_name("admin_subset.graphql")

# type name -> {field name -> optional arguments kept} (required arguments are always kept);
# None keeps the whole type (enums, scalars, interfaces we serve in full).
KEEP: dict[str, dict[str, tuple[str, ...]] | None] = {
    "QueryRoot": {
        "shop": (),
        "customers": ("first", "after", "query", "reverse", "sortKey"),
        "customer": (),
        "orders": ("first", "after", "query", "reverse", "sortKey"),
        "order": (),
        "node": (),
        "bulkOperation": (),
        "currentBulkOperation": ("type",),
        "currentAppInstallation": (),
        "customersCount": ("limit", "query"),
        "ordersCount": ("limit", "query"),
    },
    "Mutation": {"tagsAdd": (), "tagsRemove": (), "bulkOperationRunQuery": ("groupObjects",)},
    "Shop": dict.fromkeys(
        (
            "id",
            "name",
            "email",
            "contactEmail",
            "myshopifyDomain",
            "currencyCode",
            "ianaTimezone",
            "url",
        ),
        (),
    ),
    "Customer": dict.fromkeys(
        (
            "id",
            "legacyResourceId",
            "email",
            "phone",
            "firstName",
            "lastName",
            "displayName",
            "state",
            "verifiedEmail",
            "tags",
            "createdAt",
            "updatedAt",
            "numberOfOrders",
            "amountSpent",
            "defaultEmailAddress",
        ),
        (),
    ),
    "CustomerEmailAddress": {"emailAddress": (), "marketingState": ()},
    "Order": {
        **dict.fromkeys(
            (
                "id",
                "legacyResourceId",
                "name",
                "email",
                "createdAt",
                "processedAt",
                "updatedAt",
                "cancelledAt",
                "closedAt",
                "currencyCode",
                "presentmentCurrencyCode",
                "subtotalPriceSet",
                "totalShippingPriceSet",
                "totalPriceSet",
                "totalRefundedSet",
                "currentTotalPriceSet",
                "displayFinancialStatus",
                "displayFulfillmentStatus",
                "customer",
                "tags",
                "test",
            ),
            (),
        ),
        "lineItems": ("first", "after"),
    },
    "LineItem": dict.fromkeys(
        (
            "id",
            "name",
            "title",
            "sku",
            "quantity",
            "currentQuantity",
            "vendor",
            "variantTitle",
            "originalUnitPriceSet",
            "originalTotalSet",
            "product",
        ),
        (),
    ),
    "Product": {"id": (), "title": ()},
    "MoneyBag": {"shopMoney": (), "presentmentMoney": ()},
    "MoneyV2": {"amount": (), "currencyCode": ()},
    "PageInfo": dict.fromkeys(("hasNextPage", "hasPreviousPage", "startCursor", "endCursor"), ()),
    **{
        f"{kind}Connection": {"edges": (), "nodes": (), "pageInfo": ()}
        for kind in ("Customer", "Order", "LineItem")
    },
    **{f"{kind}Edge": {"cursor": (), "node": ()} for kind in ("Customer", "Order", "LineItem")},
    "TagsAddPayload": {"node": (), "userErrors": ()},
    "TagsRemovePayload": {"node": (), "userErrors": ()},
    "UserError": {"field": (), "message": ()},
    "BulkOperationRunQueryPayload": {"bulkOperation": (), "userErrors": ()},
    "BulkOperationUserError": {"field": (), "message": (), "code": ()},
    "BulkOperation": dict.fromkeys(
        (
            "id",
            "status",
            "errorCode",
            "type",
            "query",
            "createdAt",
            "completedAt",
            "objectCount",
            "rootObjectCount",
            "fileSize",
            "url",
            "partialDataUrl",
        ),
        (),
    ),
    "AppInstallation": {"id": (), "accessScopes": ()},
    "Count": {"count": (), "precision": ()},
    "AccessScope": {"handle": (), "description": ()},
    **dict.fromkeys(
        (
            "Node",
            "DisplayableError",
            "DateTime",
            "Decimal",
            "UnsignedInt64",
            "URL",
            "CurrencyCode",
            "CustomerSortKeys",
            "OrderSortKeys",
            "CustomerState",
            "CustomerEmailAddressMarketingState",
            "OrderDisplayFinancialStatus",
            "OrderDisplayFulfillmentStatus",
            "BulkOperationStatus",
            "BulkOperationErrorCode",
            "BulkOperationType",
            "BulkOperationUserErrorCode",
            "CountPrecision",
        )
    ),
}

HEADER = (
    "# Subset of Shopify's published GraphQL Admin API schema (ISC, (c) Shopify Inc.) served by\n"
    "# the shopcrm Shopify sandbox. Generated from {source};\n"
    "# do not edit, regenerate with:\n"
    "#   python -m shopcrm.sandbox.shopify.schema prune <published admin-*.graphql>...\n"
)


def _enum_values(document: DocumentNode) -> dict[str, set[str]]:
    return {
        d.name.value: {v.name.value for v in d.values or ()}
        for d in document.definitions
        if isinstance(d, EnumTypeDefinitionNode)
    }


def _prune_type(node: TypeDefinitionNode, others: list[dict[str, set[str]]]) -> TypeDefinitionNode:
    """A copy of the type definition with only the fields/arguments/interfaces `KEEP` names."""
    node = copy.copy(node)
    keep = KEEP[node.name.value]
    interfaces = getattr(node, "interfaces", None)
    if interfaces is not None:
        node.interfaces = tuple(i for i in interfaces if i.name.value in KEEP)
    if isinstance(node, EnumTypeDefinitionNode):
        name = node.name.value
        node.values = tuple(
            v for v in node.values or () if all(v.name.value in o.get(name, ()) for o in others)
        )
    if keep is None:
        return node
    published = {f.name.value: f for f in node.fields}
    missing = set(keep) - set(published)
    if missing:
        raise ValueError(f"{node.name.value}: fields {sorted(missing)} are not in the schema")
    fields = []
    for field in node.fields:
        if field.name.value not in keep:
            continue
        field = copy.copy(field)
        optional = keep[field.name.value]
        field.arguments = tuple(
            a
            for a in field.arguments or ()
            if a.name.value in optional or (a.type.kind == "non_null_type" and not a.default_value)
        )
        fields.append(field)
    node.fields = tuple(fields)
    return node


def prune(
    document: DocumentNode,
    source: str = "the published schema",
    also: tuple[DocumentNode, ...] = (),
) -> str:
    """Cut the sandbox's subset out of a published Admin schema (the inputs are not changed).

    Args:
        document: the published SDL, parsed.
        source: the file name(s) recorded in the header.
        also: other published versions (parsed) the subset must also be valid against.

    Returns:
        The subset as SDL, ready to commit.

    Raises:
        ValueError: a type or field in `KEEP` is not in the published schema, or the subset
            refers to a type it does not keep.
    """
    others = [_enum_values(other) for other in also]
    kept: list[TypeDefinitionNode | SchemaDefinitionNode] = []
    for definition in document.definitions:
        if isinstance(definition, SchemaDefinitionNode):
            kept.append(definition)
        elif isinstance(definition, TypeDefinitionNode) and definition.name.value in KEEP:
            kept.append(_prune_type(definition, others))
    found = {d.name.value for d in kept if isinstance(d, TypeDefinitionNode)}
    if found != set(KEEP):
        raise ValueError(f"types not in the schema: {sorted(set(KEEP) - found)}")
    subset = DocumentNode(definitions=tuple(kept))
    build_ast_schema(subset)  # every referenced type is kept
    return HEADER.format(source=source) + "\n" + print_ast(subset) + "\n"


@cache
def sandbox_schema() -> GraphQLSchema:
    """The sandbox's executable schema, built once from the committed subset."""
    return build_ast_schema(parse(SUBSET_PATH.read_text(encoding="utf-8")))


def prune_files(base: Path, *others: Path) -> str:
    """`prune` over published files: the first is cut, the others constrain enum values."""
    names = ", ".join(p.name for p in (base, *others))
    docs = tuple(parse_file(p) for p in others)
    return prune(parse_file(base), names, docs)


def parse_file(path: Path) -> DocumentNode:
    return parse(path.read_text(encoding="utf-8"), no_location=True)


def main(argv: list[str]) -> int:
    """`prune <published.graphql> [<other version.graphql>...]`: rewrite the committed subset."""
    if len(argv) < 2 or argv[0] != "prune":
        print(__doc__, file=sys.stderr)
        return 2
    SUBSET_PATH.write_text(prune_files(*map(Path, argv[1:])), encoding="utf-8")
    print(f"wrote {SUBSET_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

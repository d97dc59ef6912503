"""The sandbox schema is a strict subset of Shopify's published Admin schemas (2026-07, 2026-10).

Checked type by type and field by field: kinds, field types, argument names, types and defaults,
deprecations, interfaces, enum values. The committed subset is also regenerated from the
published file and must be unchanged. Needs ../shared/platforms (fixture `platforms_dir`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from graphql import (
    DocumentNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_ast_schema,
    build_schema,
)

from shopcrm.sandbox.shopify_schema import SUBSET_PATH, parse_file, prune, sandbox_schema

PUBLISHED = ("admin-2026-07.graphql", "admin-2026-10.graphql")


@cache
def document(path: Path) -> DocumentNode:
    return parse_file(path)


@cache
def published(path: Path) -> GraphQLSchema:
    return build_ast_schema(document(path), assume_valid=True, assume_valid_sdl=True)


def differences(ours: GraphQLNamedType, theirs: GraphQLNamedType | None) -> list[str]:
    """Everything in our type that the published type does not have exactly."""
    name = ours.name
    if theirs is None:
        return [f"{name}: not in the published schema"]
    if type(ours) is not type(theirs):
        return [f"{name}: is a {type(ours).__name__}, published {type(theirs).__name__}"]
    out: list[str] = []
    if isinstance(ours, GraphQLObjectType | GraphQLInterfaceType):
        mine = {i.name for i in ours.interfaces}
        out += [
            f"{name} implements {i}: not published"
            for i in mine - {i.name for i in theirs.interfaces}
        ]
        for field_name, field in ours.fields.items():
            other = theirs.fields.get(field_name)
            where = f"{name}.{field_name}"
            if other is None:
                out.append(f"{where}: not published")
                continue
            if str(field.type) != str(other.type):
                out.append(f"{where}: {field.type}, published {other.type}")
            if field.deprecation_reason != other.deprecation_reason:
                out.append(f"{where}: deprecation differs")
            for arg_name, arg in field.args.items():
                published_arg = other.args.get(arg_name)
                if published_arg is None:
                    out.append(f"{where}({arg_name}): not published")
                elif (str(arg.type), arg.default_value) != (
                    str(published_arg.type),
                    published_arg.default_value,
                ):
                    out.append(f"{where}({arg_name}): {arg.type}, published {published_arg.type}")
            required = {
                a
                for a, v in other.args.items()
                if str(v.type).endswith("!") and v.default_value is None
            }
            out += [f"{where}: required argument {a} dropped" for a in required - set(field.args)]
    elif isinstance(ours, GraphQLEnumType):
        out += [f"{name}.{v}: not published" for v in set(ours.values) - set(theirs.values)]
    elif isinstance(ours, GraphQLUnionType):
        out += [
            f"{name} | {t.name}: not published"
            for t in ours.types
            if t.name not in {x.name for x in theirs.types}
        ]
    elif isinstance(ours, GraphQLInputObjectType):
        for field_name, field in ours.fields.items():
            other = theirs.fields.get(field_name)
            if other is None or str(other.type) != str(field.type):
                out.append(f"{name}.{field_name}: differs from the published input")
    return out


@pytest.mark.parametrize("version", PUBLISHED)
def test_sandbox_schema_is_a_subset_of_the_published_one(platforms_dir: Path, version: str) -> None:
    theirs = published(platforms_dir / "shopify" / version)
    ours = sandbox_schema()
    problems = [
        problem
        for name, named in ours.type_map.items()
        if not name.startswith("__")
        for problem in differences(named, theirs.type_map.get(name))
    ]
    assert problems == []
    assert ours.query_type.name == theirs.query_type.name
    assert ours.mutation_type.name == theirs.mutation_type.name


def test_subset_check_catches_a_retyped_field(platforms_dir: Path) -> None:
    theirs = published(platforms_dir / "shopify" / PUBLISHED[1])
    wrong = build_schema("type Customer { id: ID! tags: String numberOfOrders: Int! }")
    problems = differences(wrong.type_map["Customer"], theirs.type_map["Customer"])
    assert problems == [
        "Customer.tags: String, published [String!]!",
        "Customer.numberOfOrders: Int!, published UnsignedInt64!",
    ]


def test_committed_subset_is_what_prune_makes(platforms_dir: Path) -> None:
    base, *others = (platforms_dir / "shopify" / name for name in reversed(PUBLISHED))
    names = ", ".join(p.name for p in (base, *others))
    made = prune(document(base), names, tuple(document(p) for p in others))
    assert made == SUBSET_PATH.read_text(encoding="utf-8")


def test_subset_serves_what_shopcrm_and_common_clients_use() -> None:
    schema = sandbox_schema()
    query, mutation = schema.query_type, schema.mutation_type
    assert set(query.fields) >= {
        "shop",
        "customers",
        "orders",
        "node",
        "bulkOperation",
        "currentBulkOperation",
        "currentAppInstallation",
    }
    assert set(mutation.fields) == {"tagsAdd", "tagsRemove", "bulkOperationRunQuery"}
    customer = schema.type_map["Customer"]
    assert customer.fields["email"].deprecation_reason  # deprecated, still answered
    assert str(customer.fields["numberOfOrders"].type) == "UnsignedInt64!"

"""The sandbox schema is a strict subset of Shopify's published Admin schemas (2026-07, 2026-10).

Checked type by type and field by field: kinds, field types, argument names, types and defaults,
deprecations, interfaces, enum values. The committed subset is also regenerated from the
published file and must be unchanged. Needs ../shared/platforms (fixture `platforms_dir`).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    EnumTypeDefinitionNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    TypeDefinitionNode,
    UnionTypeDefinitionNode,
    build_schema,
    parse,
    print_ast,
    specified_scalar_types,
)

from shopcrm.sandbox.shopify.schema import SUBSET_PATH, parse_file, prune, sandbox_schema

KINDS: dict[type, type] = {
    GraphQLObjectType: ObjectTypeDefinitionNode,
    GraphQLInterfaceType: InterfaceTypeDefinitionNode,
    GraphQLEnumType: EnumTypeDefinitionNode,
    GraphQLUnionType: UnionTypeDefinitionNode,
    GraphQLInputObjectType: InputObjectTypeDefinitionNode,
    GraphQLScalarType: ScalarTypeDefinitionNode,
}
SPEC_SCALARS = set(specified_scalar_types)


PUBLISHED = ("admin-2026-07.graphql", "admin-2026-10.graphql")


_START = re.compile(r"^(?:type|interface|enum|input|union|scalar) (\w+)\b", re.M)


@cache
def definitions(path: Path) -> dict[str, TypeDefinitionNode]:
    """The published definitions of the types the sandbox has, by name.

    Parsing all 3.7 MB of SDL takes most of a minute on a busy machine, so the definitions
    are cut out of the printed SDL first (each starts at column 0, ends at the first `}` line
    or, for scalars and unions, its own line) and only those are parsed.
    """
    text = path.read_text(encoding="utf-8")
    wanted = set(sandbox_schema().type_map)
    pieces = []
    for match in _START.finditer(text):
        if match[1] not in wanted:
            continue
        end = (
            text.find("\n}\n", match.start()) + 2
            if text[match.end() :].lstrip(" ").startswith(("{", "implements"))
            else text.find("\n", match.start())
        )
        pieces.append(text[match.start() : end])
    document = parse("\n\n".join(pieces), no_location=True)
    return {d.name.value: d for d in document.definitions if isinstance(d, TypeDefinitionNode)}


def _printed(node: Any) -> str:
    return "" if node is None else print_ast(node)


def _deprecation(directives: Any) -> str | None:
    for directive in directives or ():
        if directive.name.value == "deprecated":
            reason = [a.value for a in directive.arguments if a.name.value == "reason"]
            return reason[0].value if reason else "No longer supported"
    return None


def differences(ours: GraphQLNamedType, theirs: TypeDefinitionNode | None) -> list[str]:
    """Everything in our type that the published definition does not have exactly."""
    name = ours.name
    if theirs is None:
        return [f"{name}: not in the published schema"]
    if KINDS[type(ours)] is not type(theirs):
        return [f"{name}: is a {type(ours).__name__}, published {type(theirs).__name__}"]
    out: list[str] = []
    if isinstance(ours, GraphQLObjectType | GraphQLInterfaceType):
        published_interfaces = {i.name.value for i in theirs.interfaces or ()}
        out += [
            f"{name} implements {i.name}: not published"
            for i in ours.interfaces
            if i.name not in published_interfaces
        ]
        published_fields = {f.name.value: f for f in theirs.fields or ()}
        for field_name, field in ours.fields.items():
            where = f"{name}.{field_name}"
            other = published_fields.get(field_name)
            if other is None:
                out.append(f"{where}: not published")
                continue
            if str(field.type) != print_ast(other.type):
                out.append(f"{where}: {field.type}, published {print_ast(other.type)}")
            if field.deprecation_reason != _deprecation(other.directives):
                out.append(f"{where}: deprecation differs")
            published_args = {a.name.value: a for a in other.arguments or ()}
            for arg_name, arg in field.args.items():
                theirs_arg = published_args.get(arg_name)
                if theirs_arg is None:
                    out.append(f"{where}({arg_name}): not published")
                    continue
                mine = (str(arg.type), _printed(arg.ast_node.default_value))
                if mine != (print_ast(theirs_arg.type), _printed(theirs_arg.default_value)):
                    out.append(f"{where}({arg_name}): {arg.type}, published {theirs_arg.type}")
            required = {
                a_name
                for a_name, a in published_args.items()
                if isinstance(a.type, NonNullTypeNode) and a.default_value is None
            }
            out += [f"{where}: required argument {a} dropped" for a in required - set(field.args)]
    elif isinstance(ours, GraphQLEnumType):
        published_values = {v.name.value for v in theirs.values or ()}
        out += [f"{name}.{v}: not published" for v in set(ours.values) - published_values]
    elif isinstance(ours, GraphQLUnionType):
        members = {t.name.value for t in theirs.types or ()}
        out += [f"{name} | {t.name}: not published" for t in ours.types if t.name not in members]
    elif isinstance(ours, GraphQLInputObjectType):
        published_fields = {f.name.value: print_ast(f.type) for f in theirs.fields or ()}
        out += [
            f"{name}.{f}: differs from the published input"
            for f, field in ours.fields.items()
            if published_fields.get(f) != str(field.type)
        ]
    return out


@pytest.mark.parametrize("version", PUBLISHED)
def test_sandbox_schema_is_a_subset_of_the_published_one(platforms_dir: Path, version: str) -> None:
    theirs = definitions(platforms_dir / "shopify" / version)
    ours = sandbox_schema()
    problems = [
        problem
        for name, named in ours.type_map.items()
        if not name.startswith("__") and name not in SPEC_SCALARS
        for problem in differences(named, theirs.get(name))
    ]
    assert problems == []
    assert ours.query_type.name == "QueryRoot"
    assert ours.mutation_type.name == "Mutation"
    assert {"QueryRoot", "Mutation"} <= set(theirs)


def test_subset_check_catches_a_retyped_field(platforms_dir: Path) -> None:
    theirs = definitions(platforms_dir / "shopify" / PUBLISHED[1])
    wrong = build_schema("type Customer { id: ID! tags: String numberOfOrders: Int! }")
    problems = differences(wrong.type_map["Customer"], theirs["Customer"])
    assert problems == [
        "Customer.tags: String, published [String!]!",
        "Customer.numberOfOrders: Int!, published UnsignedInt64!",
    ]


def test_committed_subset_is_what_prune_makes(platforms_dir: Path) -> None:
    base, *others = (platforms_dir / "shopify" / name for name in reversed(PUBLISHED))
    names = ", ".join(p.name for p in (base, *others))
    also = tuple(DocumentNode(definitions=tuple(definitions(p).values())) for p in others)
    made = prune(parse_file(base), names, also)
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

"""The segment rule language: a safe, whitelisted subset of Python expression syntax.

A rule is parsed with `ast.parse(mode="eval")` (which only builds a syntax tree, it never runs
code) and then rebuilt into our own small tree, accepting only:
- comparisons of a known field with a constant: `==  !=  <  <=  >  >=` (chains such as
  `1 <= orders_count <= 3` too), and `in` / `not in` a list of constants;
- `and`, `or`, `not` and parentheses;
- constants: numbers (a leading minus allowed) and strings.
Anything else (calls, attribute access, subscripts, names that are not fields, arithmetic,
comprehensions, lambdas, f-strings, ...) is rejected with a message saying what and where.
Evaluation works on whole columns of metrics (numpy arrays), never on Python objects.

Money fields compare exactly: a constant such as `99.99` is read from the rule's text as a
Decimal and compared in integer micro-units. A comparison with a missing value (no model, no
orders) is false; `not` negates the result.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from shopcrm.store.types import to_micros

Kind = Literal["count", "number", "money", "text"]
MAX_RULE_LENGTH = 1000
MAX_DEPTH = 32

FIELDS: dict[str, Kind] = {
    "orders_count": "count",
    "total_spent": "money",
    "average_order_value": "money",
    "mean_days_between_orders": "number",
    "days_since_last_order": "count",
    "days_since_first_order": "count",
    "recency_score": "count",
    "frequency_score": "count",
    "monetary_score": "count",
    "rfm_segment": "text",
    "previous_rfm_segment": "text",
    "days_in_rfm_segment": "count",
    "p_alive": "number",
    "expected_purchases": "number",
    "expected_order_value": "money",
    "predicted_clv": "money",
    "currency": "text",
}

_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_DESCRIBE: dict[type[ast.AST], str] = {
    ast.Call: "function calls",
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.BinOp: "arithmetic",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.JoinedStr: "f-strings",
    ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignment expressions",
    ast.Starred: "starred expressions",
    ast.Dict: "dicts",
}


class RuleError(ValueError):
    """A rule that is not valid in the rule language; the message says why."""


@dataclass(frozen=True, slots=True)
class Column:
    """One metric over all customers: values and where they are known."""

    values: NDArray[Any]
    present: NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class _Compare:
    field: str
    op: str
    value: Any  # int micro-units for money, float for numbers, str for text, tuple for in


@dataclass(frozen=True, slots=True)
class _BoolOp:
    op: Literal["and", "or"]
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Not:
    item: _Node


_Node = _Compare | _BoolOp | _Not


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed rule; evaluate it over columns of metrics."""

    source: str
    tree: _Node

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(_fields(self.tree))

    def evaluate(self, columns: Mapping[str, Column]) -> NDArray[np.bool_]:
        """Which customers satisfy the rule.

        Args:
            columns: every field the rule uses, all of the same length.

        Returns:
            A boolean array.
        """
        return _evaluate(self.tree, columns)


def _fields(node: _Node) -> list[str]:
    if isinstance(node, _Compare):
        return [node.field]
    if isinstance(node, _Not):
        return _fields(node.item)
    return [f for item in node.items for f in _fields(item)]


def parse_rule(source: str) -> Rule:
    """Parse a rule, or raise RuleError saying what is not allowed.

    Raises:
        RuleError: syntax errors, unknown fields, disallowed constructs, type mismatches.
    """
    if len(source) > MAX_RULE_LENGTH:
        raise RuleError(f"rule longer than {MAX_RULE_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise RuleError(f"syntax error at column {exc.offset or 0}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise RuleError(f"cannot parse the rule: {exc.__class__.__name__}") from None
    return Rule(source, _Parser(source.strip()).condition(tree.body, 0))


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def _reject(self, node: ast.AST, what: str) -> RuleError:
        col = getattr(node, "col_offset", None)
        where = f" (column {col + 1})" if col is not None else ""
        return RuleError(f"{what} not allowed{where}")

    def condition(self, node: ast.AST, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise RuleError(f"rule nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.BoolOp):
            op: Literal["and", "or"] = "and" if isinstance(node.op, ast.And) else "or"
            return _BoolOp(op, tuple(self.condition(v, depth + 1) for v in node.values))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return _Not(self.condition(node.operand, depth + 1))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            self.field(node)
            raise RuleError(f"compare {node.id!r} with a value, e.g. `{node.id} > 0`")
        if isinstance(node, ast.Constant):
            raise RuleError("a rule must be a condition over fields, not a constant")
        raise self._reject(node, _DESCRIBE.get(type(node), type(node).__name__))

    def field(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            if node.id not in FIELDS:
                raise RuleError(f"unknown field {node.id!r} (fields: {', '.join(FIELDS)})")
            return node.id
        raise self._reject(node, _DESCRIBE.get(type(node), type(node).__name__))

    def compare(self, node: ast.Compare) -> _Node:
        operands = [node.left, *node.comparators]
        parts: list[_Node] = []
        for left, op_node, right in zip(operands, node.ops, operands[1:], strict=False):
            op = _OPS.get(type(op_node))
            if op is None:
                raise self._reject(node, f"the operator {type(op_node).__name__}")
            parts.append(self.pair(left, op, right))
        return parts[0] if len(parts) == 1 else _BoolOp("and", tuple(parts))

    def pair(self, left: ast.AST, op: str, right: ast.AST) -> _Compare:
        if op in ("in", "not in"):
            name = self.field(left)
            if not isinstance(right, ast.List | ast.Tuple | ast.Set):
                raise self._reject(right, f'`{op}` needs a list such as ["a", "b"]; this')
            values = tuple(self.constant(item, FIELDS[name], name) for item in right.elts)
            return _Compare(name, op, values)
        if isinstance(left, ast.Name) or not isinstance(right, ast.Name):
            name = self.field(left)
            return _Compare(name, op, self.constant(right, FIELDS[name], name))
        name = self.field(right)
        return _Compare(name, _FLIP[op], self.constant(left, FIELDS[name], name))

    def constant(self, node: ast.AST, kind: Kind, name: str) -> Any:
        negative = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
        inner = node.operand if isinstance(node, ast.UnaryOp) and negative else node
        if isinstance(inner, ast.Name):
            raise RuleError(f"compare {name!r} with a constant, not with {inner.id!r}")
        if not isinstance(inner, ast.Constant):
            raise self._reject(inner, _DESCRIBE.get(type(inner), type(inner).__name__))
        value = inner.value
        if kind == "text":
            if not isinstance(value, str) or negative:
                raise RuleError(f"{name!r} is text: compare it with a quoted string")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleError(f"{name!r} is a number: compare it with a number, not {value!r}")
        if kind == "money":
            text = ast.get_source_segment(self.source, inner) or repr(value)
            try:
                amount = Decimal(text.replace("_", ""))
                micros = to_micros(-amount if negative else amount)
            except (InvalidOperation, ValueError) as exc:
                raise RuleError(f"{name!r}: {text} is not an amount ({exc})") from None
            return micros
        return -float(value) if negative else float(value)


def _evaluate(node: _Node, columns: Mapping[str, Column]) -> NDArray[np.bool_]:
    if isinstance(node, _BoolOp):
        results = [_evaluate(item, columns) for item in node.items]
        combine = np.logical_and if node.op == "and" else np.logical_or
        return combine.reduce(results)
    if isinstance(node, _Not):
        return ~_evaluate(node.item, columns)
    column = columns[node.field]
    values = column.values
    if node.op in ("in", "not in"):
        hit = (
            np.isin(values, np.array(node.value, dtype=values.dtype))
            if node.value
            else np.zeros(len(values), bool)
        )
        return column.present & (hit if node.op == "in" else ~hit)
    with np.errstate(invalid="ignore"):
        result = {
            "==": np.equal,
            "!=": np.not_equal,
            "<": np.less,
            "<=": np.less_equal,
            ">": np.greater,
            ">=": np.greater_equal,
        }[node.op](values, node.value)
    return column.present & np.asarray(result, dtype=bool)

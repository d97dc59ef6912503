"""The segment rule language: valid rules select the right customers, hostile rules are refused."""

from __future__ import annotations

import numpy as np
import pytest

from shopcrm.config.load import parse_config
from shopcrm.enrich.rules import Column, RuleError, parse_rule
from shopcrm.errors import ConfigError

# Four customers: a buyer of 3 orders / 600.50, a one-timer / 99.99, a non-buyer, a champion.
COLUMNS = {
    "orders_count": Column(np.array([3, 1, 0, 8]), np.ones(4, bool)),
    "total_spent": Column(np.array([600_500_000, 99_990_000, 0, 2_000_000_000]), np.ones(4, bool)),
    "p_alive": Column(np.array([0.2, 0.9, np.nan, 0.95]), np.array([True, True, False, True])),
    "rfm_segment": Column(
        np.array(["loyal", "new", None, "champions"], dtype=object),
        np.array([True, True, False, True]),
    ),
    "days_since_last_order": Column(np.array([40, 3, 0, 1]), np.array([True, True, False, True])),
    "currency": Column(np.array(["EUR"] * 4, dtype=object), np.ones(4, bool)),
}


@pytest.mark.parametrize(
    ("rule", "members"),
    [
        ("orders_count >= 3 and total_spent > 500", [0, 3]),
        ('rfm_segment in ["champions", "loyal"]', [0, 3]),
        ('rfm_segment not in ["champions"]', [0, 1]),  # missing segment: not a member
        ("total_spent > 99.99", [0, 3]),  # exact decimal: 99.99 itself is not above
        ("total_spent >= 99.99", [0, 1, 3]),
        ("600.5 < total_spent", [3]),
        ("1 <= orders_count <= 3", [0, 1]),
        ("p_alive < 0.3", [0]),  # no model (nan) is never a member
        ("not p_alive < 0.3", [1, 2, 3]),
        ("orders_count == 0 or days_since_last_order > 30", [0, 2]),
        ("(orders_count > 1) and not (total_spent > 1000)", [0]),
        ("currency == 'EUR' and orders_count != 1", [0, 2, 3]),
        ("total_spent > -1", [0, 1, 2, 3]),
        ("orders_count > 1_000", []),
    ],
)
def test_valid_rules(rule, members):
    result = parse_rule(rule).evaluate(COLUMNS)
    assert np.flatnonzero(result).tolist() == members


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ("__import__('os')", "function calls not allowed"),
        ("__import__('os').system('id') or orders_count > 1", "function calls not allowed"),
        ("orders_count.__class__ > 1", "attribute access not allowed"),
        ("total_spent.real > 1", "attribute access not allowed"),
        ("foo > 1", "unknown field 'foo'"),
        ("__builtins__ > 1", "unknown field '__builtins__'"),
        ("orders_count[0] > 1", "subscripts not allowed"),
        ("orders_count + 1 > 2", "arithmetic not allowed"),
        ("(lambda: 1)() > 0", "function calls not allowed"),
        ("[x for x in ()] == 1", "comprehensions not allowed"),
        ("orders_count > total_spent", "compare 'orders_count' with a constant"),
        ("orders_count", "compare 'orders_count' with a value"),
        ("True", "must be a condition"),
        ("orders_count > 'a'", "is a number"),
        ("orders_count > True", "is a number"),
        ("rfm_segment == 3", "is text"),
        ("rfm_segment in 'champions'", "needs a list"),
        ("total_spent > 0.0000001", "is not an amount"),
        ("orders_count >", "syntax error"),
        ("orders_count is None", "the operator Is not allowed"),
        ("f'{orders_count}' == 'x'", "f-strings not allowed"),
        ("orders_count > 1 if True else 0", "conditional expressions not allowed"),
        ("(" * 300 + "orders_count > 1" + ")" * 300, "nested"),
        ("orders_count > 1 and " * 80 + "orders_count > 1", "longer than 1000"),
    ],
)
def test_hostile_and_invalid_rules_are_refused(rule, error):
    with pytest.raises(RuleError) as caught:
        parse_rule(rule)
    assert error in str(caught.value)


def test_config_check_reports_the_key_path():
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "shops": [
                    {
                        "name": "pos",
                        "platform": "csv",
                        "path": "x",
                        "currency": "EUR",
                        "segments": [
                            {"name": "ok", "rule": "orders_count > 1"},
                            {"name": "evil", "rule": "__import__('os')"},
                        ],
                    }
                ]
            }
        )
    assert str(caught.value).startswith("shops[0].segments[1].rule: function calls not allowed")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("vip", "built-in segment name"),
        ("rfm-champions", "built-in segment name"),
        ("big_spenders", "use '-' instead of '_'"),
    ],
)
def test_config_refuses_reserved_or_untaggable_names(name, error):
    with pytest.raises(ConfigError) as caught:
        parse_config({"segments": [{"name": name, "rule": "orders_count > 1"}]})
    assert str(caught.value).startswith("segments[0].name: ")
    assert error in str(caught.value)


def test_valid_rules_pass_config_check():
    config = parse_config(
        {"segments": [{"name": "big-spenders", "rule": "orders_count >= 3 and total_spent > 500"}]}
    )
    assert config.segments[0].rule == "orders_count >= 3 and total_spent > 500"

"""Segments: built-in ones from RFM and CLV, and user-defined rules from the config.

Built-in segments of a shop's customers (names are tag-safe slugs, docs/enrichment.md):
- `vip`: top decile of predicted CLV among the shop's buyers (ties at the cut-off included);
  only when the shop has a fitted model.
- `at-risk`: P(alive) < 0.3 with 2 or more orders; only with a fitted model.
- `one-time`: exactly one order.
- `new`: first order less than 30 days before the as-of date.
- `lapsed`: last order 180 days or more before the as-of date.
- `rfm-<segment>`: the customer's RFM segment (rfm-champions, rfm-at-risk, ...).
User-defined segments are rules over the metrics (`shopcrm.enrich.rules`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from shopcrm.enrich.rfm import SEGMENTS
from shopcrm.enrich.rules import Column, Rule

VIP_SHARE = 0.10
AT_RISK_P_ALIVE = 0.3
AT_RISK_MIN_ORDERS = 2
NEW_DAYS = 30
LAPSED_DAYS = 180
RFM_PREFIX = "rfm-"
BUILT_IN = ("vip", "at-risk", "one-time", "new", "lapsed")
RESERVED = frozenset(BUILT_IN) | {RFM_PREFIX + s for s in SEGMENTS}

Masks = dict[str, NDArray[np.bool_]]


def reserved_name_problem(name: str) -> str | None:
    """Why a user segment may not be called `name`, or None."""
    if name in BUILT_IN or name.startswith(RFM_PREFIX):
        return f"{name!r} is a built-in segment name (built-in: {', '.join(BUILT_IN)}, rfm-*)"
    if "_" in name:
        return f"use '-' instead of '_' in {name!r}: segment names become tags"
    return None


def top_share(
    values: NDArray[np.int64], present: NDArray[np.bool_], share: float
) -> NDArray[np.bool_]:
    """Members of the top `share` by value (at least one, ties at the cut-off all in)."""
    known = values[present]
    if len(known) == 0:
        return np.zeros(len(values), dtype=bool)
    k = max(1, math.ceil(share * len(known)))
    cutoff = np.sort(known)[-k]
    return present & (values >= cutoff) & (values > 0)


def built_in(columns: Mapping[str, Column], model_fitted: bool) -> Masks:
    """The built-in segments of the module docstring."""
    count = columns["orders_count"]
    orders = count.values
    buyer = count.present & (orders > 0)
    since_first = columns["days_since_first_order"]
    since_last = columns["days_since_last_order"]
    n = len(orders)
    masks: Masks = {
        "one-time": buyer & (orders == 1),
        "new": buyer & since_first.present & (since_first.values < NEW_DAYS),
        "lapsed": buyer & since_last.present & (since_last.values >= LAPSED_DAYS),
    }
    if model_fitted:
        clv = columns["predicted_clv"]
        alive = columns["p_alive"]
        masks["vip"] = buyer & top_share(clv.values, clv.present & buyer, VIP_SHARE)
        masks["at-risk"] = (
            buyer
            & alive.present
            & (alive.values < AT_RISK_P_ALIVE)
            & (orders >= AT_RISK_MIN_ORDERS)
        )
    else:
        masks["vip"] = masks["at-risk"] = np.zeros(n, dtype=bool)
    rfm = columns["rfm_segment"]
    for name in SEGMENTS:
        masks[RFM_PREFIX + name] = rfm.present & (rfm.values == name)
    return masks


def user_defined(rules: Sequence[tuple[str, Rule]], columns: Mapping[str, Column]) -> Masks:
    """Members of each configured rule (later rules with the same name replace earlier ones)."""
    return {name: rule.evaluate(columns) for name, rule in rules}

"""Recency, frequency and monetary scores (1-5, quintiles per shop) and named segments.

Scores are computed over a shop's buyers. A customer's score is the quintile of its mid-rank
percentile: with `below` buyers strictly worse and `equal` buyers tied (itself included),
percentile = (below + equal / 2) / n and score = min(5, floor(5 * percentile) + 1). Tied
values always get the same score (no arbitrary tie-breaking), and the result does not depend
on row order. Better is: fewer days since the last order (R), more orders (F), more spent (M).

Segments come from R and FM = (F + M + 1) // 2 (the mean of F and M, rounded half up):

    R \\ FM   1                2                  3                  4            5
    5        new              potential-loyalist potential-loyalist champions    champions
    4        promising        potential-loyalist potential-loyalist loyal        loyal
    3        about-to-sleep   about-to-sleep     need-attention     loyal        loyal
    2        hibernating      hibernating        at-risk            at-risk      cannot-lose
    1        lost             hibernating        at-risk            at-risk      cannot-lose
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from shopcrm.enrich.codes import dense_span

SEGMENT_TABLE: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new", "potential-loyalist", "potential-loyalist", "champions", "champions"),
    4: ("promising", "potential-loyalist", "potential-loyalist", "loyal", "loyal"),
    3: ("about-to-sleep", "about-to-sleep", "need-attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at-risk", "at-risk", "cannot-lose"),
    1: ("lost", "hibernating", "at-risk", "at-risk", "cannot-lose"),
}
SEGMENTS = (
    "champions",
    "loyal",
    "potential-loyalist",
    "new",
    "promising",
    "need-attention",
    "about-to-sleep",
    "at-risk",
    "cannot-lose",
    "hibernating",
    "lost",
)


def quintile_scores(values: NDArray[np.generic]) -> NDArray[np.int64]:
    """Scores 1-5 where a higher value is better, ties sharing the mid-rank percentile's score."""
    values = np.asarray(values)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    span = dense_span(values)
    if span is None:
        ordered = np.sort(values)
        below = np.searchsorted(ordered, values, side="left")
        equal = np.searchsorted(ordered, values, side="right") - below
    else:  # days and order counts: ranks by counting
        offset = values - values.min()
        count = np.bincount(offset, minlength=span)
        equal = count[offset]
        below = np.cumsum(count)[offset] - equal
    # floor(5 * (below + equal/2) / n) in integers: no float rounding at quintile edges
    return np.minimum(5, (5 * (2 * below + equal)) // (2 * n) + 1).astype(np.int64)


def rfm_scores(
    days_since_last: NDArray[np.int64],
    orders_count: NDArray[np.int64],
    spent_micros: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """R, F and M scores of a shop's buyers."""
    return (
        quintile_scores(-np.asarray(days_since_last, dtype=np.int64)),
        quintile_scores(np.asarray(orders_count, dtype=np.int64)),
        quintile_scores(np.asarray(spent_micros, dtype=np.int64)),
    )


def segment_names(
    r: NDArray[np.int64], f: NDArray[np.int64], m: NDArray[np.int64]
) -> NDArray[np.object_]:
    """The named segment of each (R, F, M), from the table in the module docstring."""
    table = np.array(
        [[SEGMENT_TABLE[rr][fm - 1] for fm in range(1, 6)] for rr in range(1, 6)], dtype=object
    )
    fm = (np.asarray(f) + np.asarray(m) + 1) // 2
    return table[np.asarray(r) - 1, fm - 1]

"""Distinct values of integer arrays and each element's rank among them, by counting; and
where values are in an array of unique keys.

`np.unique(..., return_inverse=True)` sorts; ids, day counts and order counts span a range not
much wider than the array, where counting occurrences is several times faster.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Ints = NDArray[np.int64]


def dense_span(values: NDArray[np.generic]) -> int | None:
    """max - min + 1 of an integer array whose range is at most 4x its length, else None."""
    if values.dtype.kind not in "iu" or values.size == 0:
        return None
    span = int(values.max()) - int(values.min()) + 1
    return span if span <= 4 * values.size else None


def distinct_codes(values: NDArray[np.generic]) -> tuple[NDArray[np.generic], NDArray[np.intp]]:
    """The distinct values, ascending, and each element's index into them (np.unique's)."""
    values = np.asarray(values)
    span = dense_span(values)
    if span is None:
        levels, codes = np.unique(values, return_inverse=True)
        return levels, codes.ravel()
    low = values.min()
    offset = values - low
    present = np.bincount(offset, minlength=span) > 0
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present) + low, rank[offset]


def find(keys: Ints, wanted: Ints) -> tuple[Ints, NDArray[np.bool_]]:
    """Where each wanted value is in `keys` (unique, in any order), and whether it is there.

    The position of an absent value is some valid index of `keys` (0 when `keys` is empty), so
    `np.where(found, column[at], default)` works for any column parallel to a non-empty `keys`.
    """
    if len(keys) == 0:
        return np.zeros(len(wanted), dtype=np.int64), np.zeros(len(wanted), dtype=bool)
    if np.all(keys[1:] > keys[:-1]):  # ids read in id ranges come sorted: no indirection
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    else:
        sorter = np.argsort(keys, kind="stable")
        at = sorter[np.minimum(np.searchsorted(keys, wanted, sorter=sorter), len(keys) - 1)]
    return at, keys[at] == wanted

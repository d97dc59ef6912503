"""Pacing for Shopify's leaky bucket of query-cost points.

Every GraphQL response reports `extensions.cost.throttleStatus` (bucket size, points left,
restore rate). Before the next query we project the bucket forward to now and, if the query's
requested cost is more than it holds, sleep exactly long enough for it to refill, so queries
are never THROTTLED. Nothing about the bucket is hard-coded: until the first response the
pacer does not wait.

Other clients of the same shop (another app, a second shopcrm) drain the bucket too, so a
query can still be THROTTLED. Its answer reports the bucket as it is; the query then waits
for the points it needs at the reported restore rate, again and again while that is possible
(`allow`), and gives up (RateLimited, exit 75) only when its waits, the paced one before it
was first sent included, would add up to more than `max_wait_s`
(`defaults.sync.max_throttle_wait`), or the bucket can never hold it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from shopcrm.errors import RateLimited

_SAFETY_S = 0.02  # absorbs clock granularity between our projection and the platform's
MIN_THROTTLED_WAIT_S = 0.5  # a THROTTLED answer is never retried sooner (no hammering)
DEFAULT_MAX_WAIT_S = 600.0


@dataclass(frozen=True, slots=True)
class Bucket:
    maximum: float
    available: float
    restore_rate: float
    seen_at: float  # monotonic seconds when `available` was reported


def parse_cost(extensions: Any, now: float) -> tuple[float | None, Bucket | None]:
    """(requested cost, bucket as of `now`) from a response's `extensions`, or Nones."""
    cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
    if not isinstance(cost, Mapping):
        return None, None
    requested = cost.get("requestedQueryCost")
    status = cost.get("throttleStatus")
    bucket = None
    if isinstance(status, Mapping):
        try:
            bucket = Bucket(
                maximum=float(status["maximumAvailable"]),
                available=float(status["currentlyAvailable"]),
                restore_rate=float(status["restoreRate"]),
                seen_at=now,
            )
        except (KeyError, TypeError, ValueError):
            bucket = None
    return (float(requested) if isinstance(requested, int | float) else None), bucket


class ThrottlePacer:
    """A `Pacer` for Shopify: `expect(cost)` before a query, `observe(extensions)` after.

    Args:
        max_wait_s: the most one throttled query waits for the bucket, in all.
        sleep: injectable for tests.
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        *,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._clock = clock
        self._bucket: Bucket | None = None
        self._next_cost = 0.0
        self._expect_at_least = 0.0  # set after a THROTTLED answer: no retry sooner
        self.waited_s = 0.0  # total time spent waiting for the bucket
        self.spent = 0.0  # total actual cost Shopify charged (for run statistics and benchmarks)

    def expect(self, cost: float) -> None:
        """The requested cost of the query about to be sent."""
        self._next_cost = cost

    def available_now(self) -> float | None:
        """Points the bucket holds now, projected from the last report."""
        b = self._bucket
        if b is None:
            return None
        return min(b.maximum, b.available + (self._clock() - b.seen_at) * b.restore_rate)

    def wait_for(self, cost: float) -> float:
        """Seconds until the bucket holds `cost` points (0 when it does, or is unknown)."""
        available = self.available_now()
        if available is None or self._bucket is None or self._bucket.restore_rate <= 0:
            return 0.0
        cost = min(cost, self._bucket.maximum)
        return max(0.0, (cost - available) / self._bucket.restore_rate)

    @property
    def knows_bucket(self) -> bool:
        return self._bucket is not None

    def allow(self, shop: str, requested: float, waited: float, *, throttled: bool) -> float:
        """Count the wait for `requested` points against the query's bound, before a query
        is sent or retried after a THROTTLED answer (observed first); `before_request`
        then sleeps it.

        Args:
            shop: the shop's name, for the error.
            requested: the query's requested cost.
            waited: seconds this query has already waited for the bucket.
            throttled: the query was just THROTTLED: it is retried no sooner than
                `MIN_THROTTLED_WAIT_S`, and a bucket that never holds it is an error.

        Returns:
            The seconds this query has waited in all, once the wait is slept.

        Raises:
            RateLimited: the wait would pass `max_wait_s`, or the bucket can never hold the
                query (restore rate 0, or a cost above its size); the message gives the wait.
        """
        b = self._bucket
        if b is None:  # nothing known yet: the first answer will tell
            return waited
        available = self.available_now() or 0.0
        state = "throttled" if throttled else "would be throttled"
        bucket = (
            f"shop {shop}: GraphQL query {state}: it needs {requested:.0f} points and the "
            f"bucket holds {available:.0f} of {b.maximum:.0f}, restoring {b.restore_rate:g} "
            "per second"
        )
        if throttled and (b.restore_rate <= 0 or requested > b.maximum):
            raise RateLimited(f"{bucket}, so it can never run (retry later)")
        wait = self.wait_for(requested)
        if throttled:
            wait = max(MIN_THROTTLED_WAIT_S, wait + _SAFETY_S)
            self._expect_at_least = MIN_THROTTLED_WAIT_S
        elif wait > 0:
            wait += _SAFETY_S
        if waited + wait > self.max_wait_s:
            raise RateLimited(
                f"{bucket}, so it must wait {wait:.1f} s more after {waited:.1f} s; that "
                f"passes defaults.sync.max_throttle_wait ({self.max_wait_s:g} s): giving up "
                "(retry later)",
                retry_after=wait,
            )
        return waited + wait

    def before_request(self) -> None:
        wait = self.wait_for(self._next_cost)
        if wait > 0:
            wait += _SAFETY_S
        wait = max(wait, self._expect_at_least)
        self._next_cost = self._expect_at_least = 0.0
        if wait > 0:
            self.waited_s += wait
            self._sleep(wait)

    def after_response(self, response: requests.Response) -> None:
        """Nothing to learn from headers: Shopify reports the bucket in the JSON body."""

    def observe(self, extensions: Any) -> float | None:
        """Learn the bucket from a response's `extensions`; returns its requested cost."""
        requested, bucket = parse_cost(extensions, self._clock())
        if bucket is not None:
            self._bucket = bucket
        actual = extensions.get("cost", {}).get("actualQueryCost") if bucket else None
        if isinstance(actual, int | float):
            self.spent += actual
        return requested

"""Run: pull -> enrich -> push for each shop, the unit cron and the scheduler call.

Every shop runs under its own lock (`sync.lock`) and is isolated: a failure is recorded in a
`sync_run` row of kind "run" (beside the pull's own "sync" row) and the next shop still runs.
A stop request (SIGINT/SIGTERM in `shopcrm schedule`) is honoured after the page being stored
has committed, and before the next shop starts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shopcrm.config.schema import AppConfig, ShopConfig
from shopcrm.connectors.base import Connector
from shopcrm.connectors.registry import make_connector
from shopcrm.errors import LockHeld, RateLimited, RunFailed, RunInterrupted, ShopcrmError
from shopcrm.log import redact
from shopcrm.store.db import Store
from shopcrm.store.upsert import ensure_shop
from shopcrm.sync.lock import raise_if_busy, shop_lock
from shopcrm.sync.progress import LogProgress, Progress
from shopcrm.sync.pull import PullResult, finish_run, pull_shop, start_run, utcnow
from shopcrm.sync.push import PushResult, push_details, push_shop

log = logging.getLogger(__name__)

RUN_KIND = "run"
EnrichFn = Callable[..., Any]
ConnectorFactory = Callable[[ShopConfig, AppConfig], Connector]


@dataclass
class ShopRunResult:
    shop: str
    platform: str
    ok: bool = False
    locked: bool = False
    throttled: bool = False  # the platform kept rate-limiting it (RateLimited): exit 75
    step: str = ""  # the step that failed: pull, enrich or push
    error: str | None = None
    pull: PullResult | None = None
    enrich: Any = None  # what the enrich step returned (an EnrichReport)
    push: PushResult | None = None
    duration_s: float = 0.0
    run_id: int | None = None


class _StopAfterPage:
    """Passes pages on to `inner`; raises RunInterrupted once the stop event is set.

    Pull calls `page()` after the page and its checkpoint have committed, so stopping here
    loses nothing: the next run resumes from that checkpoint.
    """

    def __init__(self, inner: Progress, stop: threading.Event) -> None:
        self.inner = inner
        self.stop = stop

    def page(self, shop: str, stream: str, records: int, total: int) -> None:
        self.inner.page(shop, stream, records, total)
        if self.stop.is_set():
            raise RunInterrupted(f"shop {shop}: stopped on request after a committed page")


def _default_enrich(store: Store, config: AppConfig, *, shop_name: str) -> Any:
    from shopcrm.enrich.pipeline import run_enrich

    return run_enrich(store, config, shop_name=shop_name)


def _steps(
    store: Store,
    config: AppConfig,
    shop: ShopConfig,
    result: ShopRunResult,
    *,
    connector: Connector,
    enrich: EnrichFn,
    progress: Progress,
    force: bool,
    dry_run: bool,
) -> None:
    """Pull, enrich and push one shop; raises the first step's failure."""
    result.step = "pull"
    result.pull = pull_shop(store, config, shop, connector=connector, progress=progress)
    if not result.pull.ok:
        raise RunFailed(result.pull.error or "see the sync row")
    result.step = "enrich"
    result.enrich = enrich(store, config, shop_name=shop.name)
    result.step = "push"
    result.push = push_shop(
        store, config, shop, connector=connector, force=force, dry_run=dry_run, run_id=result.run_id
    )
    result.step = ""


def run_shop(
    store: Store,
    config: AppConfig,
    shop: ShopConfig,
    *,
    force: bool = False,
    dry_run: bool = False,
    connectors: ConnectorFactory = make_connector,
    enrich: EnrichFn = _default_enrich,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> ShopRunResult:
    """Pull, enrich and push one shop under its lock; never raises for the shop's failure.

    Args:
        store: the open store.
        config: the app config.
        shop: the shop to run.
        force: let the push go past the safety limit.
        dry_run: plan the push without sending it.
        connectors: builds the shop's connector (one per run, used for pull and push).
        enrich: the enrich step, called as `enrich(store, config, shop_name=...)`.
        stop: when set, the run ends after the page being stored.
        progress: told about each stored page.

    Returns:
        The outcome; `locked` when another process holds the shop's lock, or another
        enrichment held the store's past the enrich step's wait.
    """
    result = ShopRunResult(shop=shop.name, platform=shop.platform)
    clock = time.monotonic()
    progress = progress or LogProgress()
    if stop is not None:
        progress = _StopAfterPage(progress, stop)
    with store.session() as session:
        shop_id = ensure_shop(session, shop.name, shop.platform, now=utcnow())
    try:
        with shop_lock(store, shop.name):
            result.run_id = start_run(store, shop_id, RUN_KIND, utcnow())
            connector: Connector | None = None
            try:
                connector = connectors(shop, config)
                _steps(
                    store,
                    config,
                    shop,
                    result,
                    connector=connector,
                    enrich=enrich,
                    progress=progress,
                    force=force,
                    dry_run=dry_run,
                )
                result.ok = True
            except ShopcrmError as exc:
                # the store's enrichment lock still held after its wait: temporary, like a
                # shop lock (exit 75); the next run enriches what this one pulled
                result.locked = isinstance(exc, LockHeld)
                result.throttled = isinstance(exc, RateLimited) or bool(
                    result.pull and result.pull.throttled
                )
                result.error = redact(f"{result.step or 'setup'} failed: {exc}")
            except Exception as exc:  # one shop's bug must not stop the others
                log.exception("shop %s: unexpected error during run", shop.name)
                result.error = redact(f"{result.step} failed: {type(exc).__name__}: {exc}")
            finally:
                if connector is not None:
                    connector.close()
                _finish(store, result, clock)
    except LockHeld as exc:
        result.locked = True
        result.error = str(exc)
        result.run_id = start_run(store, shop_id, RUN_KIND, utcnow())
        finish_run(store, result.run_id, outcome="locked", started=clock, error=result.error)
    result.duration_s = round(time.monotonic() - clock, 3)
    _log(result)
    return result


def _finish(store: Store, result: ShopRunResult, clock: float) -> None:
    assert result.run_id is not None
    push = result.push
    finish_run(
        store,
        result.run_id,
        outcome="success" if result.ok else ("locked" if result.locked else "failed"),
        started=clock,
        error=result.error,
        customers=result.pull.customers if result.pull else 0,
        orders=result.pull.orders if result.pull else 0,
        requests=result.pull.requests if result.pull else 0,
        failed_step=result.step or None,
        **push_details(push),
    )


def _log(result: ShopRunResult) -> None:
    extra = {"shop": result.shop, "run_id": result.run_id}
    if result.ok:
        log.info("shop %s: run succeeded in %.1fs", result.shop, result.duration_s, extra=extra)
    elif result.locked:
        log.warning("shop %s: %s", result.shop, result.error, extra=extra)
    else:
        log.error("shop %s: run failed: %s", result.shop, result.error, extra=extra)


def run_shops(
    store: Store,
    config: AppConfig,
    shop_name: str | None = None,
    *,
    stop: threading.Event | None = None,
    **options: Any,
) -> list[ShopRunResult]:
    """Run every selected shop in turn; one failing or locked never stops the others.

    Args:
        store: the open store.
        config: the app config.
        shop_name: only this shop (default: every enabled shop).
        stop: when set, the current shop stops after its page and no further shop starts.
        **options: passed to `run_shop` (force, dry_run, connectors, enrich, progress).

    Returns:
        One result per shop that was started.
    """
    results = []
    for shop in config.selected(shop_name):
        if stop is not None and stop.is_set():
            break
        results.append(run_shop(store, config, shop, stop=stop, **options))
    return results


def raise_for_results(results: Sequence[ShopRunResult]) -> None:
    """Turn a run's results into the command's outcome.

    Raises:
        RunFailed: a shop failed (exit 1), whatever else happened.
        LockHeld: the only problem was a shop locked by another process (exit 75).
        RateLimited: the only problems were shops locked, or throttled past the wait (exit 75).
    """
    failed = [r for r in results if not (r.ok or r.locked or r.throttled)]
    if failed:
        names = ", ".join(f"{r.shop} ({r.error})" for r in failed)
        raise RunFailed(f"run failed for {len(failed)} shop(s): {names}")
    raise_if_busy(
        [r.error or r.shop for r in results if r.locked],
        [r.error or r.shop for r in results if r.throttled],
    )

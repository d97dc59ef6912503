"""`shopcrm schedule`: APScheduler 3 runs each enabled shop on its interval or cron expression.

One job per shop, never two at once (`max_instances=1`, plus the shop's run lock, so a cron
`shopcrm run` and the scheduler never overlap either); runs missed while a run was going or the
machine slept are coalesced into one. Interval jobs run once at start, cron jobs at their next
time. SIGINT/SIGTERM only set a stop flag: the running shop stops after the page being stored
has committed, then the scheduler shuts down and the process exits 0.

A BackgroundScheduler is used so that the signal handler does nothing but set the flag and the
shutdown happens in the main thread, never inside a signal handler.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from shopcrm.config.schema import AppConfig, ShopConfig
from shopcrm.errors import UsageError
from shopcrm.store.db import Store
from shopcrm.sync.run import ShopRunResult, run_shop

log = logging.getLogger(__name__)

MISFIRE_GRACE_S = 15 * 60  # a run missed by less than this still runs (once: coalesced)
TriggerFor = Callable[[AppConfig, ShopConfig], BaseTrigger]


def trigger_for(config: AppConfig, shop: ShopConfig) -> BaseTrigger:
    """The shop's schedule (or the default one) as an APScheduler trigger, in UTC."""
    return config.schedule(shop).trigger()


def _job(
    store: Store, config: AppConfig, shop: ShopConfig, stop: threading.Event, options: Any
) -> ShopRunResult:
    log.info("scheduled run of shop %s starting", shop.name, extra={"shop": shop.name})
    return run_shop(store, config, shop, stop=stop, **options)


def build_scheduler(
    store: Store,
    config: AppConfig,
    shop_name: str | None = None,
    *,
    stop: threading.Event,
    triggers: TriggerFor = trigger_for,
    **run_options: Any,
) -> BackgroundScheduler:
    """A scheduler (not started) with one job per selected shop.

    Args:
        store: the open store, shared by the jobs.
        config: the app config (schedules per shop).
        shop_name: only this shop (default: every enabled shop).
        stop: set to end the running shops after their current page.
        triggers: the trigger of a shop (tests use short intervals).
        **run_options: passed to `run_shop` (force, connectors, enrich, ...).

    Returns:
        The scheduler, jobs added, not started.
    """
    shops = config.selected(shop_name)
    if not shops:
        raise UsageError("no enabled shop to schedule (every shop has `enabled: false`)")
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE_S,
        },
    )
    for shop in shops:
        trigger = triggers(config, shop)
        # an interval job runs at once; a cron job (no next_run_time given) at its next time
        first = {"next_run_time": datetime.now(UTC)} if isinstance(trigger, IntervalTrigger) else {}
        scheduler.add_job(
            _job,
            trigger,
            args=(store, config, shop, stop, run_options),
            id=shop.name,
            name=f"run {shop.name}",
            **first,
        )
    return scheduler


def serve(
    store: Store,
    config: AppConfig,
    shop_name: str | None = None,
    *,
    stop: threading.Event | None = None,
    **options: Any,
) -> None:
    """Run the schedule in the foreground until SIGINT or SIGTERM (or `stop` is set).

    Args:
        store: the open store.
        config: the app config.
        shop_name: only this shop (default: every enabled shop).
        stop: an external stop flag (the signals set it too).
        **options: passed to `build_scheduler` (triggers) and `run_shop`.
    """
    stop = stop or threading.Event()
    scheduler = build_scheduler(store, config, shop_name, stop=stop, **options)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("%s received: stopping after the current page", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        scheduler.start()
        for job in scheduler.get_jobs():
            log.info("scheduled %s: next at %s", job.name, job.next_run_time)
        while not stop.wait(0.5):
            pass
        scheduler.shutdown(wait=True)
        log.info("scheduler stopped")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

"""The scheduler: triggers from the config, no overlapping runs, coalescing, clean stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from shopcrm.config.load import parse_config
from shopcrm.store.db import Store, open_store
from shopcrm.store.models import SyncRun
from shopcrm.sync.scheduler import build_scheduler
from tests.push_fixtures import FakeConnector, fake_config, make_platform, spend_segments, url_of

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sqlite_store(tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.close()


class Counting:
    """A connector factory that tracks how many runs of each shop are going at once."""

    def __init__(self, delay: float) -> None:
        self.platform = make_platform(customers=20)
        self.platform.page_delay_s = delay
        self.started = 0
        self.active = 0
        self.most_active = 0
        self.lock = threading.Lock()

    def __call__(self, shop, config) -> FakeConnector:
        counter = self

        class Tracked(FakeConnector):
            def close(self) -> None:
                with counter.lock:
                    counter.active -= 1
                super().close()

        with self.lock:
            self.started += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        return Tracked(self.platform)


def every_second(config, shop) -> IntervalTrigger:
    return IntervalTrigger(seconds=1, timezone=UTC)


def test_jobs_follow_each_shops_schedule(sqlite_store: Store) -> None:
    config = parse_config(
        {
            "defaults": {"schedule": {"every": "30m"}},
            "shops": [
                {"name": "a", "platform": "csv", "path": "a.csv", "currency": "EUR"},
                {
                    "name": "b",
                    "platform": "csv",
                    "path": "b.csv",
                    "currency": "EUR",
                    "schedule": {"cron": "15 * * * *"},
                },
                {
                    "name": "off",
                    "platform": "csv",
                    "path": "c.csv",
                    "currency": "EUR",
                    "enabled": False,
                },
            ],
        }
    )
    scheduler = build_scheduler(sqlite_store, config, stop=threading.Event())
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert sorted(jobs) == ["a", "b"]
        assert isinstance(jobs["a"].trigger, IntervalTrigger)
        assert jobs["a"].trigger.interval.total_seconds() == 1800
        assert (jobs["a"].next_run_time - datetime.now(UTC)).total_seconds() < 5  # at once
        assert isinstance(jobs["b"].trigger, CronTrigger)
        assert jobs["b"].next_run_time.minute == 15
        assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
    finally:
        scheduler.shutdown(wait=False)


def test_runs_of_one_shop_never_overlap(sqlite_store: Store) -> None:
    counting = Counting(delay=0.25)  # a run takes about 1.5 s, the interval is 1 s
    stop = threading.Event()
    scheduler = build_scheduler(
        sqlite_store,
        fake_config(url_of(sqlite_store)),
        stop=stop,
        triggers=every_second,
        force=True,
        connectors=counting,
        enrich=spend_segments,
    )
    scheduler.start()
    time.sleep(4)
    stop.set()
    scheduler.shutdown(wait=True)
    assert counting.most_active == 1
    assert 2 <= counting.started <= 3
    with sqlite_store.session() as session:
        outcomes = session.execute(select(SyncRun.outcome).where(SyncRun.kind == "run")).all()
    assert ("running",) not in outcomes
    assert outcomes.count(("success",)) >= 1


def test_missed_runs_are_coalesced_into_one(sqlite_store: Store) -> None:
    counting = Counting(delay=0.0)
    scheduler = build_scheduler(
        sqlite_store,
        fake_config(url_of(sqlite_store)),
        stop=threading.Event(),
        triggers=lambda config, shop: IntervalTrigger(seconds=2, timezone=UTC),
        force=True,
        connectors=counting,
        enrich=spend_segments,
    )
    scheduler.start(paused=True)
    time.sleep(4.5)  # due at 0, 2 and 4 s: three runs missed
    scheduler.resume()
    time.sleep(1.0)
    scheduler.shutdown(wait=True)
    assert counting.started == 1


def test_sigterm_stops_after_the_current_page_and_exits_0(sqlite_store: Store) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from tests.push_fixtures import schedule_main; schedule_main()",
            url_of(sqlite_store),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        with sqlite_store.session() as session:
            running = session.execute(
                select(SyncRun.id).where(SyncRun.kind == "sync", SyncRun.outcome == "running")
            ).first()
        if running:
            break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "SIGTERM received: stopping after the current page" in err
    assert "scheduler stopped" in err
    with sqlite_store.session() as session:
        rows = session.execute(select(SyncRun.kind, SyncRun.outcome, SyncRun.error)).all()
    assert all(outcome != "running" for _, outcome, _ in rows)
    assert any(kind == "run" and "stopped on request" in (error or "") for kind, _, error in rows)

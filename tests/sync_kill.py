"""Kill a running `shopcrm sync` at a point of its progress, for the crash-and-resume tests."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any


def kill_when(
    process: subprocess.Popen[Any], reached: Callable[[], bool], *, timeout: float = 60
) -> bool:
    """SIGKILL `process` once `reached()` holds, unless it ended first; True if it was killed.

    Waiting on the sync's own progress (records stored, requests served) rather than on wall
    time lets the kill land mid-sync however fast or loaded the machine is.
    """
    deadline = time.monotonic() + timeout
    while process.poll() is None and not reached():
        assert time.monotonic() < deadline, "the sync made no progress"
        time.sleep(0.01)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True

"""Start a `shopcrm sandbox PLATFORM` in a child process, as a real shop stands apart from us."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def serve_sandbox(
    platform: str, *options: str, env: dict[str, str]
) -> tuple[subprocess.Popen[str], str]:
    """Start the sandbox on a free port and return the process and its URL."""
    command = [str(Path(sys.executable).with_name("shopcrm")), "sandbox", platform]
    command += ["--port", "0", *options]
    proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if " sandbox at " in line:
            print(line.strip(), flush=True)
            return proc, line.split()[3]
    raise RuntimeError(f"the {platform} sandbox did not start")

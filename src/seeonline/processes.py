"""Child processes: stopped politely, then for sure."""

from __future__ import annotations

import subprocess
from typing import Any


def stop_child(process: subprocess.Popen[Any], grace: float = 10.0) -> int:
    """SIGTERM, then SIGKILL if it has not exited after ``grace`` seconds; returns its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()

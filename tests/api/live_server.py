"""``seeonline api`` as a real subprocess on a free port, for tests that need real sockets."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from seeonline.local.embedded_postgres import find_free_port
from seeonline.processes import stop_child
from tests.support.keys import API_KEY, SECRET_KEY


def wait_for_health(base: str, process: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Poll ``{base}/health`` until it answers 200; fail if the process exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            pytest.fail(f"the server exited early: {stderr}")
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("the server did not become healthy")


@contextlib.contextmanager
def running_api(database_url: str, **env: str) -> Iterator[str]:
    """Serve the API on ``database_url``; yields its base URL and stops it afterwards."""
    port = find_free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SEEONLINE_API_KEYS": API_KEY,
        "SEEONLINE_SECRET_KEY": SECRET_KEY,
        "SEEONLINE_LOG_LEVEL": "warning",
        **env,
    }
    process = subprocess.Popen([sys.executable, "-m", "seeonline", "api", "--port", str(port)], env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, process, timeout=30)
        yield base
    finally:
        stop_child(process)

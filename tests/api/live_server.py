"""``seeonline api`` as a real subprocess on a free port, for tests that need real sockets."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import API_KEY, SECRET_KEY


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_api(database_url: str, **env: str) -> Iterator[str]:
    """Serve the API on ``database_url``; yields its base URL and stops it afterwards."""
    port = free_port()
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
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the API did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)

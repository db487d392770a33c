"""A worker target for tests/security/test_worker_secrets.py: reports what a worker process was given.

Writes ``<out>/probe.<tracker id>.json`` (the settings' secret key, whether the environment holds a key
variable, the credentials it received), then waits for SIGTERM like a real worker.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

from seeonline.settings import Settings
from seeonline_supervisor.credentials import SECRET_VARIABLES, WorkerCredentials


def run(tracker_id: int, settings: Settings, credentials: WorkerCredentials | None, out_dir: str = "") -> int:
    """The worker target."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    report = {
        "settings_secret_key": settings.secret_key,
        "environment_key_variables": [name for name in SECRET_VARIABLES if name in os.environ],
        "credentials": None if credentials is None else [credentials.api_id, credentials.api_hash, credentials.session],
        "pid": os.getpid(),
    }
    path = Path(out_dir) / f"probe.{tracker_id}.json"
    path.with_suffix(".tmp").write_text(json.dumps(report))
    path.with_suffix(".tmp").rename(path)
    stop.wait()
    return 0

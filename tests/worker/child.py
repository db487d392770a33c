"""Run one worker as a real process: ``python -m tests.worker.child TRACKER_ID OPTIONS_JSON``.

Settings come from the environment like in production; the session is read from the database.
"""

from __future__ import annotations

import sys

import msgspec

from seeonline.logging import configure_logging
from seeonline.settings import load_settings
from seeonline_supervisor.worker.main import run_worker
from seeonline_supervisor.worker.options import WorkerOptions


def main() -> None:
    """Parse the arguments and exit with the worker's code."""
    settings = load_settings()
    configure_logging(settings.log_level, json=True)
    options = msgspec.json.decode(sys.argv[2], type=WorkerOptions)
    sys.exit(run_worker(int(sys.argv[1]), settings, options=options))


if __name__ == "__main__":
    main()

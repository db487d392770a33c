"""The worker process's entry point, called by the supervisor in the forked child."""

from __future__ import annotations

import asyncio
import signal

import structlog

from seeonline.logging import get_logger
from seeonline.settings import Settings
from seeonline_supervisor.credentials import WorkerCredentials
from seeonline_supervisor.exit_codes import EXIT_CRASHED, EXIT_RETIRED
from seeonline_supervisor.handover import DRAIN_SIGNAL
from seeonline_supervisor.worker.control import UNREACHABLE_ERRORS
from seeonline_supervisor.worker.options import WorkerOptions
from seeonline_supervisor.worker.tracker import TrackerWorker

log = get_logger("supervisor.worker")


def run_worker(
    tracker_account_id: int,
    settings: Settings,
    credentials: WorkerCredentials | None = None,
    options: WorkerOptions | None = None,
) -> int:
    """Run one tracker's worker until SIGTERM (exit 0 after flushing) or until it cannot run; returns the exit code.

    ``DRAIN_SIGNAL`` hands the targets over first (``TrackerWorker.request_drain``).
    ``credentials`` are the tracker's, decrypted by the supervisor (``settings`` then hold no secret key);
    without them the worker decrypts its own with ``settings.secret_key`` (``seeonline worker``).

    Codes: 0 stopped on request (or drained), 1 crashed, 3 the tracker's lock is held elsewhere, 4 cannot run now (auth
    lost, banned, long flood wait, tracker gone or without a session, whose health says which; or Postgres
    unreachable at start).
    """
    structlog.contextvars.bind_contextvars(tracker_account_id=tracker_account_id)
    try:
        return asyncio.run(_main(tracker_account_id, settings, credentials, options))
    except UNREACHABLE_ERRORS as exc:
        # Postgres unreachable at start: not a crash (an outage must not make the tracker FATAL); the
        # supervisor retries with backoff.
        log.error("worker_database_unavailable", error=repr(exc))
        return EXIT_RETIRED
    except Exception:
        log.exception("worker_crashed")
        return EXIT_CRASHED


async def _main(
    tracker_account_id: int, settings: Settings, credentials: WorkerCredentials | None, options: WorkerOptions | None
) -> int:
    worker = TrackerWorker(tracker_account_id, settings, options, credentials=credentials)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.request_stop)
    loop.add_signal_handler(DRAIN_SIGNAL, worker.request_drain)  # the tracker is leaving: make before break
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        loop.add_signal_handler(signal.SIGINT, worker.request_stop)
    return await worker.run()

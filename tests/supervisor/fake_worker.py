"""A tiny stand-in for the tracker worker: takes the tracker's advisory lock and behaves as told.

The behaviour comes from ``<control>/mode.<tracker id>`` (``run`` by default): ``run`` waits for
SIGTERM and exits 0, ``crash`` exits 1 at once, ``locked`` exits ``EXIT_LOCK_HELD`` at once,
``retire`` exits ``EXIT_RETIRED`` at once,
``ignore_term`` ignores SIGTERM, ``ignore_drain`` ignores the drain signal (others exit 0 on it, logging
``drained``). Every step is appended to ``<control>/events.log`` as
``<kind> <tracker> <pid> <unix time>``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import asyncpg

from seeonline.database.channels import TRACKER_LOCK_SPACE
from seeonline.settings import Settings
from seeonline_supervisor.exit_codes import EXIT_LOCK_HELD, EXIT_RETIRED
from seeonline_supervisor.handover import DRAIN_SIGNAL


def event(control: Path, kind: str, tracker_id: int) -> None:
    """Append one event line (a single O_APPEND write, so lines from many processes never interleave)."""
    line = f"{kind} {tracker_id} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(control / "events.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def run(tracker_id: int, settings: Settings, _credentials: object = None, control_dir: str | None = None) -> int:
    """The worker target."""
    control = Path(control_dir or os.environ["FAKE_WORKER_DIR"])
    return asyncio.run(_main(tracker_id, settings, control))


async def _main(tracker_id: int, settings: Settings, control: Path) -> int:
    mode_file = control / f"mode.{tracker_id}"
    mode = mode_file.read_text().strip() if mode_file.exists() else "run"
    event(control, "spawned", tracker_id)
    if mode == "locked":
        return EXIT_LOCK_HELD
    if mode == "retire":
        return EXIT_RETIRED
    connection = await asyncpg.connect(settings.asyncpg_dsn)
    if not await connection.fetchval("SELECT pg_try_advisory_lock($1, $2)", TRACKER_LOCK_SPACE, tracker_id):
        event(control, "lock_held", tracker_id)
        await connection.close()
        return EXIT_LOCK_HELD
    event(control, "acquired", tracker_id)
    if mode == "crash":
        return 1
    stop = asyncio.Event()
    drained = asyncio.Event()
    loop = asyncio.get_running_loop()
    if mode == "ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    if mode != "ignore_drain":
        loop.add_signal_handler(DRAIN_SIGNAL, drained.set)
    await asyncio.wait(
        [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(drained.wait())],
        return_when=asyncio.FIRST_COMPLETED,
    )
    event(control, "drained" if drained.is_set() and not stop.is_set() else "stopped", tracker_id)
    await connection.close()
    return 0

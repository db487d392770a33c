"""How a worker process ends, as its exit code tells the supervisor."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """A worker's exit code."""

    OK = 0  # stopped on request (SIGTERM/SIGINT) after flushing
    CRASHED = 1  # an unexpected error: restarted with backoff, FATAL after repeated fast exits
    LOCK_HELD = 3  # its tracker's advisory lock is held elsewhere: not a crash, retried when free
    RETIRED = 4  # cannot run now (auth lost, banned, flood wait, gone, no session, Postgres unreachable): no crash


EXIT_OK = ExitCode.OK
EXIT_CRASHED = ExitCode.CRASHED
EXIT_LOCK_HELD = ExitCode.LOCK_HELD
EXIT_RETIRED = ExitCode.RETIRED

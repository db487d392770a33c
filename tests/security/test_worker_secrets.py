"""Workers hold no master key: the supervisor decrypts and hands each worker only its own credentials.

The supervisor runs in-process with real forked workers (a probe target) and real Postgres; the probe
reports what it was given, and the test reads the worker's environment and whole memory from /proc.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from seeonline.settings import Settings
from seeonline_supervisor.process import ProcessOptions
from seeonline_supervisor.supervisor import Supervisor, SupervisorOptions
from tests.polling import wait_until
from tests.security import secret_probe
from tests.support.keys import SECRET_KEY
from tests.worker import builders

FAST = SupervisorOptions(process=ProcessOptions(start_seconds=0.5, stop_grace=2.0), lock_poll_interval=0.2)


def memory_holds(pid: int, needles: list[bytes]) -> list[bytes]:
    """The needles found anywhere in the readable memory of process ``pid``."""
    found: set[bytes] = set()
    with Path(f"/proc/{pid}/maps").open() as maps, Path(f"/proc/{pid}/mem").open("rb", buffering=0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            start, end = (int(part, 16) for part in span.split("-"))
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, OverflowError, ValueError):
                continue  # [vvar] and the like
            found |= {needle for needle in needles if needle in chunk}
    return sorted(found)


@pytest.fixture
async def supervised(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Supervisor]:
    # As in production, the supervisor's own environment holds the key it loaded its settings from.
    monkeypatch.setenv("SEEONLINE_SECRET_KEY", SECRET_KEY)
    settings = msgspec.structs.replace(settings, reconcile_interval=2.0)
    supervisor = Supervisor(settings, target=functools.partial(secret_probe.run, out_dir=str(tmp_path)), options=FAST)
    task = asyncio.create_task(supervisor.run())
    await asyncio.wait_for(supervisor.ready.wait(), 30)
    yield supervisor
    supervisor.stop()
    await asyncio.wait_for(task, 30)


async def test_a_worker_gets_its_own_credentials_and_never_the_key(
    supervised: Supervisor,
    db: asyncpg.Connection[Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    first = await builders.tracker(
        db, SECRET_KEY, telegram_id=41, api_id=4101, api_hash="first-api-hash-0001", session="first-session-1"
    )
    second = await builders.tracker(
        db, SECRET_KEY, telegram_id=42, api_id=4202, api_hash="second-api-hash-002", session="second-session-2"
    )
    reports = {tracker: tmp_path / f"probe.{tracker}.json" for tracker in (first, second)}
    await wait_until(lambda: all(path.exists() for path in reports.values()), what="both workers reporting")
    seen = {tracker: json.loads(path.read_text()) for tracker, path in reports.items()}

    assert seen[first]["credentials"] == [4101, "first-api-hash-0001", "first-session-1"]
    assert seen[second]["credentials"] == [4202, "second-api-hash-002", "second-session-2"]
    for report in seen.values():
        assert report["settings_secret_key"] is None
        assert report["environment_key_variables"] == []
        pid = report["pid"]
        assert SECRET_KEY.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
        assert SECRET_KEY.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    # Nowhere in a worker's memory: not the key, not the other tracker's secrets.
    pid = seen[first]["pid"]
    needles = [SECRET_KEY.encode(), bytes.fromhex(SECRET_KEY), b"second-api-hash-002", b"second-session-2"]
    assert memory_holds(pid, needles) == []
    assert memory_holds(pid, [b"first-session-1"]) == [b"first-session-1"]  # the scan does see the memory
    assert os.environ["SEEONLINE_SECRET_KEY"] == SECRET_KEY  # the supervisor's own environment is left as it was
    # Secrets never logged: the supervisor decrypted them, and logged none.
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "worker_started" in logs
    for secret in (SECRET_KEY, "first-api-hash-0001", "first-session-1", "second-api-hash-002", "second-session-2"):
        assert secret not in logs

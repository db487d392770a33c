"""Make before break when a tracker leaves: its worker keeps watching until the new tracker has the targets.

Real supervisor, real forked workers, the sandbox's Telegram, the API. The new tracker enrols slowly
(as Telegram's resolve limits make it), so flips made right after the old tracker left are seen only
by the old tracker's draining worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from typing import Any

import asyncpg
import pytest

from seeonline.sandbox import SandboxServer
from seeonline.settings import Settings
from seeonline_supervisor.process import ProcessOptions
from seeonline_supervisor.supervisor import Supervisor
from tests.api.builders import Client, follow, person
from tests.polling import wait_until
from tests.supervisor.test_end_to_end import _register_tracker, running_supervisor

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("seeonline_supervisor.worker.main") is None, reason="the real worker is not available"
)

PEOPLE = 20
FLIPS = [True, False, True, False]


async def _rows(db: asyncpg.Connection[Any], tracked_ids: list[int]) -> dict[int, list[bool]]:
    rows = await db.fetch(
        "SELECT tracked_user_id, is_online FROM online_statuses WHERE tracked_user_id = ANY($1::bigint[])"
        " ORDER BY tracked_user_id, created_at, id",
        tracked_ids,
    )
    found: dict[int, list[bool]] = {tracked: [] for tracked in tracked_ids}
    for row in rows:
        found[row["tracked_user_id"]].append(row["is_online"])
    return found


@pytest.mark.parametrize("how", ["deactivate", "delete", "flood_wait"])
async def test_a_tracker_that_leaves_keeps_watching_its_flipping_targets_until_the_new_one_has_them(
    client: Client, sandbox: SandboxServer, settings: Settings, db: asyncpg.Connection[Any], how: str
) -> None:
    old_account, old = await _register_tracker(client, sandbox, max_users=PEOPLE)
    names = [f"drain_{how}_{i:02d}" for i in range(PEOPLE)]
    owner = await person(client, max_users=PEOPLE)
    tracked = []
    for name in names:
        sandbox.world.add_person(name, last_seen_ago=600)
        tracked.append((await follow(client, owner, name))["id"])
    process = ProcessOptions(start_seconds=1.0, stop_grace=5.0, backoff_base=0.2)
    # Enrolling all of them takes the new tracker about PEOPLE * 0.25 s: the flips below fall inside that.
    async with running_supervisor(settings, process, resolve_interval=0.25) as runner:
        enrolled = "SELECT count(*) FROM targets WHERE tracker_account_id = $1 AND enrolled_at IS NOT NULL"
        await wait_until(lambda: _equals(db.fetchval(enrolled, old["id"]), PEOPLE), timeout=60, what="old enrolled")
        await wait_until(
            lambda: _all(_rows(db, tracked), lambda r: r == [False]), timeout=30, what="everyone's first row"
        )
        new_account, new = await _register_tracker(client, sandbox, max_users=PEOPLE)
        await wait_until(lambda: _health_is(db, new["id"], "ok"), timeout=60, what="the new tracker's worker")
        if how == "deactivate":
            response = await client.patch(f"/tracker-accounts/{old['id']}/", json={"is_active": False})
            assert response.status_code == 200, response.text
        elif how == "delete":
            assert (await client.delete(f"/tracker-accounts/{old['id']}/")).status_code == 204
        else:  # a long flood wait on what tracking needs retires it; pushes still reach its session
            sandbox.inject_fault("contacts.getStatuses", "FLOOD_WAIT_3600", account=old_account)
            sandbox.drop_connections(old_account)  # its reconnect resyncs with contacts.getStatuses
            await wait_until(lambda: _health_is(db, old["id"], "flood_wait"), timeout=30, what="flood_wait")
        on_new = "SELECT count(*) FROM targets WHERE tracker_account_id = $1"
        await wait_until(lambda: _equals(db.fetchval(on_new, new["id"]), PEOPLE), timeout=30, what="the move")
        for online in FLIPS:  # while the new tracker is still enrolling them
            for name in names:
                sandbox.world.set_status(name, online=online, expires_in=600.0)
            await asyncio.sleep(1.0)
        expected = [False, *FLIPS]
        with contextlib.suppress(AssertionError):  # the comparison below shows which flips are missing
            await wait_until(lambda: _all(_rows(db, tracked), lambda r: r == expected), timeout=60, what="every flip")
        found = await _rows(db, tracked)
        wrong = [tracked_id for tracked_id, rows in found.items() if rows != expected]
        assert not wrong, await _explain(db, wrong)
        await wait_until(lambda: _equals(db.fetchval(enrolled, new["id"]), PEOPLE), timeout=60, what="new enrolled")
        # The old worker drained and exited on its own; nothing was recorded twice.
        await wait_until(lambda: _true(not _alive(runner, old["id"])), timeout=30, what="the drainer's exit")
        assert await _rows(db, tracked) == dict.fromkeys(tracked, expected)
        assert len(sandbox.calls_to("contacts.resolveUsername", old_account)) == PEOPLE
        assert len(sandbox.calls_to("contacts.resolveUsername", new_account)) == PEOPLE


async def _explain(db: asyncpg.Connection[Any], tracked_ids: list[int]) -> str:
    """The rows of the tracked users whose flips are wrong, with when and how each was seen."""
    rows = await db.fetch(
        "SELECT tracked_user_id, created_at, is_online, source FROM online_statuses"
        " WHERE tracked_user_id = ANY($1::bigint[]) ORDER BY tracked_user_id, created_at, id",
        tracked_ids,
    )
    lines = (f"{r['tracked_user_id']} {r['created_at']:%H:%M:%S.%f} {r['is_online']} {r['source']}" for r in rows)
    return "\n".join(lines)


async def _equals(value: Any, expected: object) -> bool:
    return bool(await value == expected)


def _alive(runner: Supervisor, tracker_id: int) -> bool:
    process = runner.processes.get(tracker_id)
    return process is not None and process.alive


async def _true(value: bool) -> bool:
    return value


async def _all(rows: Any, check: Any) -> bool:
    return all(check(r) for r in (await rows).values())


async def _health_is(db: asyncpg.Connection[Any], tracker_id: int, state: str) -> bool:
    found = await db.fetchval("SELECT state FROM tracker_health WHERE tracker_account_id = $1", tracker_id)
    return bool(found == state)

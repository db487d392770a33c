"""Unknown time recorded for real: a real worker (Telethon against the sandbox) writes the facts, the API reads them."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg

from seeonline.sandbox import SandboxServer
from seeonline_supervisor.exit_codes import EXIT_RETIRED
from tests.api.builders import Client
from tests.polling import wait_until
from tests.worker import builders
from tests.worker.conftest import TrackerFactory, WorkerRunner

Connection: TypeAlias = "asyncpg.Connection[Any]"


async def segments(client: Client, tracked_id: int) -> list[dict[str, Any]]:
    """Today's timeline segments (UTC: the worker builders' bot users keep the default zone)."""
    response = await client.get(f"/tracked-users/{tracked_id}/timeline/")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["segments"]
    return found


async def test_revoked_tracker_leaves_its_target_unknown(
    client: Client,
    sandbox: SandboxServer,
    db: Connection,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
) -> None:
    revoked = await make_tracker()
    await make_tracker()  # where the target goes; no worker runs it
    sandbox.world.add_person("history_revoked")
    row = await builders.subscribe(db, "history_revoked", revoked.tracker_id)
    async with run_worker_in_process(revoked.tracker_id) as running:
        await wait_until(lambda: builders.statuses(db, row))
        await wait_until(lambda: _known_now(client, row), what="the target observed")
        sandbox.revoke(revoked.account)
        assert await running.exit_code() == EXIT_RETIRED
    found = await segments(client, row)
    states = [(s["state"], s["reason"]) for s in found]
    assert states[0] == ("unknown", "before_tracking")  # before the worker enrolled it
    assert ("offline", None) in states
    assert states[-1] == ("unknown", "unassigned")  # moved to a tracker that never picked it up
    uptimes = await db.fetch("SELECT * FROM tracker_uptimes WHERE tracker_account_id = $1", revoked.tracker_id)
    assert len(uptimes) >= 1


async def test_hidden_status_is_unknown_until_it_shows_again(
    client: Client,
    sandbox: SandboxServer,
    db: Connection,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("history_hiding")
    row = await builders.subscribe(db, "history_hiding", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: builders.statuses(db, row))
        await wait_until(lambda: _known_now(client, row), what="the target observed")
        sandbox.world.set_privacy("history_hiding", "nobody")
        await wait_until(lambda: _last_is(client, row, ("unknown", "hidden")), what="hidden time")
        sandbox.world.set_privacy("history_hiding", "everybody")
        await wait_until(lambda: _last_is(client, row, ("offline", None)), what="known again")
        states = [(s["state"], s["reason"]) for s in await segments(client, row)]
        assert states[-3:] == [("offline", None), ("unknown", "hidden"), ("offline", None)]


async def test_a_dropped_connection_is_a_tracker_down_gap(
    client: Client,
    sandbox: SandboxServer,
    db: Connection,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("history_dropped")
    row = await builders.subscribe(db, "history_dropped", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: _known_now(client, row), what="the target observed")
        assert sandbox.drop_connections(tracker.account) >= 1

        async def two_periods() -> bool:
            rows = await db.fetch("SELECT ended FROM tracker_uptimes WHERE tracker_account_id = $1", tracker.tracker_id)
            return len(rows) >= 2 and any(r["ended"] for r in rows)

        await wait_until(two_periods, what="the reconnect recorded")
        await wait_until(lambda: _last_is(client, row, ("offline", None)), what="known again")
        states = [(s["state"], s["reason"]) for s in await segments(client, row)]
        assert ("unknown", "tracker_down") in states[1:]


async def _known_now(client: Client, tracked_id: int) -> bool:
    found = await segments(client, tracked_id)
    return bool(found) and found[-1]["state"] != "unknown"


async def _last_is(client: Client, tracked_id: int, wanted: tuple[str, str | None]) -> bool:
    found = await segments(client, tracked_id)
    return bool(found) and (found[-1]["state"], found[-1]["reason"]) == wanted

"""The worker's privacy self-check: a tracker that hides its own last seen gets no targets until it is fixed."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
import httpx
import msgspec

from seeonline.sandbox import SandboxServer
from tests.polling import wait_until
from tests.worker import builders
from tests.worker.conftest import FAST, TrackerFactory, WorkerRunner

Connection: TypeAlias = "asyncpg.Connection[Any]"


async def _state(db: Connection, tracker_id: int) -> str | None:
    state: str | None = await db.fetchval("SELECT state FROM tracker_health WHERE tracker_account_id = $1", tracker_id)
    return state


async def _tracker_of(db: Connection, username: str) -> int | None:
    found: int | None = await db.fetchval("SELECT tracker_account_id FROM targets WHERE username = $1", username)
    return found


async def test_a_tracker_hiding_its_last_seen_becomes_privacy_misconfigured_and_its_targets_move(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    hiding = await make_tracker(privacy="nobody", max_users=10)
    other = await make_tracker(max_users=10)
    sandbox.world.add_person("ivy_moves")
    await builders.subscribe(db, "ivy_moves", hiding.tracker_id)
    async with run_worker_in_process(hiding.tracker_id):
        await wait_until(lambda: _is(_tracker_of(db, "ivy_moves"), other.tracker_id), what="the target to move")
        health = await db.fetchrow(
            "SELECT state, last_error FROM tracker_health WHERE tracker_account_id = $1", hiding.tracker_id
        )
        assert health is not None and health["state"] == "privacy_misconfigured"
        assert "hides its own last seen" in health["last_error"]
        check = await db.fetchrow("SELECT privacy_ok, detail FROM tracker_privacy_checks")
        assert check is not None and check["privacy_ok"] is False
        assert sandbox.calls_to("account.getPrivacy", hiding.account)
        # Not usable: a new target goes elsewhere, never to the hiding tracker.
        sandbox.world.add_person("jay_new")
        await builders.subscribe(db, "jay_new")
        assert await _tracker_of(db, "jay_new") == other.tracker_id


async def test_privacy_check_route_with_fix_restores_ok_and_the_targets_come_back(
    sandbox: SandboxServer,
    db: Connection,
    api: httpx.AsyncClient,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
) -> None:
    tracker = await make_tracker(privacy="nobody", max_users=10)
    sandbox.world.add_person("kim_waits")
    row = await builders.subscribe(db, "kim_waits", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: _is(_state(db, tracker.tracker_id), "privacy_misconfigured"))
        assert await _tracker_of(db, "kim_waits") is None  # waiting: no other tracker
        checked = await api.post(f"/tracker-accounts/{tracker.tracker_id}/privacy-check/")
        assert checked.status_code == 200, checked.text
        assert (checked.json()["state"], checked.json()["privacy_ok"], checked.json()["fixed"]) == (
            "done",
            False,
            False,
        )
        fixed = await api.post(f"/tracker-accounts/{tracker.tracker_id}/privacy-check?fix=true")
        assert fixed.status_code == 200, fixed.text
        assert (fixed.json()["privacy_ok"], fixed.json()["fixed"], fixed.json()["fix_requested"]) == (True, True, False)
        assert tracker.account.user.privacy == "everybody"
        assert sandbox.calls_to("account.setPrivacy", tracker.account)
        await wait_until(lambda: _is(_state(db, tracker.tracker_id), "ok"))
        assert await _tracker_of(db, "kim_waits") == tracker.tracker_id
        await wait_until(lambda: builders.statuses(db, row), what="kim's status to be recorded")
        latest = (await api.get(f"/tracker-accounts/{tracker.tracker_id}/privacy-check")).json()
        assert (latest["state"], latest["privacy_ok"]) == ("done", True)


async def test_a_tracker_that_starts_hiding_is_caught_by_the_symptom_and_the_timer(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker(max_users=10)
    sandbox.world.add_person("lee_watched")
    await builders.subscribe(db, "lee_watched", tracker.tracker_id)
    slow_timer = msgspec.structs.replace(FAST, privacy_interval=3600.0, privacy_symptom_spacing=0.0)
    async with run_worker_in_process(tracker.tracker_id, slow_timer) as running:
        await wait_until(lambda: running.worker.privacy.checks >= 1)
        await wait_until(lambda: sandbox.calls_to("contacts.addContact", tracker.account))
        assert await _state(db, tracker.tracker_id) == "ok"
        # The tracker hides its last seen: the target's status at the next resync (after a reconnect here)
        # says by_me, which triggers a check long before the hourly timer would.
        sandbox.world.set_privacy(tracker.account.id, "nobody")
        sandbox.drop_connections(tracker.account)
        await wait_until(lambda: _is(_state(db, tracker.tracker_id), "privacy_misconfigured"), timeout=10)
    second = await make_tracker(max_users=10)
    fast_timer = msgspec.structs.replace(FAST, privacy_interval=0.3)
    async with run_worker_in_process(second.tracker_id, fast_timer) as running:
        await wait_until(lambda: running.worker.privacy.checks >= 1)
        assert await _state(db, second.tracker_id) == "ok"
        sandbox.world.set_privacy(second.account.id, "contacts")
        await wait_until(lambda: _is(_state(db, second.tracker_id), "privacy_misconfigured"), timeout=10)


async def test_premium_trackers_see_statuses_even_when_hiding_their_own(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker(privacy="nobody", max_users=10)
    tracker.account.user.premium = True
    sandbox.world.add_person("mo_premium")
    row = await builders.subscribe(db, "mo_premium", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(lambda: running.worker.privacy.checks >= 1)
        await wait_until(lambda: builders.statuses(db, row), what="the exact status")
        assert await _state(db, tracker.tracker_id) == "ok"


async def test_no_live_worker_leaves_the_request_pending(api: httpx.AsyncClient, make_tracker: TrackerFactory) -> None:
    tracker = await make_tracker(health=None)
    assert (await api.get(f"/tracker-accounts/{tracker.tracker_id}/privacy-check")).status_code == 404
    pending = await api.post(f"/tracker-accounts/{tracker.tracker_id}/privacy-check?fix=true")
    assert (pending.status_code, pending.json()["state"], pending.json()["fix_requested"]) == (202, "pending", True)
    assert (await api.post("/tracker-accounts/999999/privacy-check")).status_code == 404
    assert (await api.post(f"/tracker-accounts/{tracker.tracker_id}/privacy-check?fix=maybe")).status_code == 400


async def test_telegram_internal_errors_on_the_check_leave_the_worker_running(
    sandbox: SandboxServer,
    db: Connection,
    api: httpx.AsyncClient,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
) -> None:
    tracker = await make_tracker(max_users=10)
    # Every attempt of the first check (Telethon retries a 5xx) fails with Telegram's INTERNAL.
    sandbox.inject_fault("account.getPrivacy", "INTERNAL", code=500, count=3, account=tracker.account)
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(
            lambda: len(sandbox.calls_to("account.getPrivacy", tracker.account)) >= 3, timeout=20, what="the retries"
        )
        checked = await api.post(f"/tracker-accounts/{tracker.tracker_id}/privacy-check/")
        assert checked.status_code == 200, checked.text
        assert checked.json()["privacy_ok"] is True
        assert not running.task.done()
        assert running.worker.privacy.checks >= 1
        assert await _state(db, tracker.tracker_id) == "ok"


async def _is(value: Any, wanted: Any) -> bool:
    return bool(await value == wanted)

"""End to end: API → supervisor → forked real worker → sandbox Telegram → rows in GET /online-statuses/."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import importlib.util
import logging
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from seeonline.lease import Lease
from seeonline.sandbox import SandboxServer
from seeonline.settings import Settings
from seeonline_supervisor.process import ProcessOptions, State
from seeonline_supervisor.supervisor import Supervisor, SupervisorOptions
from tests.api.builders import Client, create, follow, person
from tests.polling import wait_until
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("seeonline_supervisor.worker.main") is None, reason="the real worker is not available"
)
logging.getLogger("telethon").setLevel(logging.ERROR)


@contextlib.asynccontextmanager
async def running_supervisor(
    settings: Settings, process: ProcessOptions, *, resolve_interval: float = 0.05
) -> AsyncIterator[Supervisor]:
    """The supervisor running the real worker with short timings."""
    from seeonline_supervisor.worker.main import run_worker  # noqa: PLC0415
    from seeonline_supervisor.worker.options import WorkerOptions  # noqa: PLC0415

    worker_options = WorkerOptions(
        resolve_interval=resolve_interval, contact_interval=0.0, reconcile_interval=2.0, retire_grace=0.2
    )
    runner = Supervisor(
        msgspec.structs.replace(settings, lease=Lease(grace=10.0, heartbeat_interval=0.5)),
        target=functools.partial(run_worker, options=worker_options),
        options=SupervisorOptions(process=process),
    )
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.ready.wait(), 30)
    try:
        yield runner
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def supervisor(settings: Settings) -> AsyncIterator[Supervisor]:
    """The supervisor running the real worker with short timings."""
    async with running_supervisor(settings, ProcessOptions(start_seconds=1.0, stop_grace=5.0, backoff_base=0.2)) as r:
        yield r


async def _statuses(client: Client, tracked_user_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/online-statuses/?tracked_user_id={tracked_user_id}")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return sorted(rows, key=lambda r: (r["created_at"], r["id"]))


def _at(row: dict[str, Any]) -> float:
    return datetime.datetime.fromisoformat(row["created_at"]).timestamp()


async def _register_tracker(
    client: Client, sandbox: SandboxServer, *, max_users: int = 10
) -> tuple[Any, dict[str, Any]]:
    """A sandbox account registered through the API as a usable tracker."""
    account = sandbox.world.add_account()
    tracker = await create(
        client,
        "/tracker-accounts/",
        {
            "telegram_id": account.id,
            "api_id": account.api_id,
            "api_hash": account.api_hash,
            "is_active": True,
            "is_auth": True,
        },
    )
    await create(
        client,
        "/tracker-settings/",
        {
            "tracker_account_id": tracker["id"],
            "phone_number": f"+{account.phone}",
            "session_string": sandbox.session_string_for(account),
            "max_users": max_users,
        },
    )
    return account, tracker


async def test_status_flips_reach_the_api_for_every_subscriber_with_one_contact(
    client: Client, sandbox: SandboxServer, supervisor: Supervisor
) -> None:
    account, _ = await _register_tracker(client, sandbox)
    sandbox.world.add_person("alice_e2e", last_seen_ago=600)
    first = await follow(client, await person(client), "alice_e2e")

    async def added_as_contact() -> bool:
        return len(sandbox.calls_to("contacts.addContact", account)) == 1

    await wait_until(added_as_contact, timeout=60, what="the worker to add the target as a contact")
    baseline = len(await _statuses(client, first["id"]))

    went_online = sandbox.world.set_status("alice_e2e", online=True).online_until
    assert went_online is not None

    async def online_row() -> Any:
        rows = await _statuses(client, first["id"])
        return rows[-1] if len(rows) > baseline and rows[-1]["is_online"] else None

    row = await wait_until(online_row, timeout=30, what="the online row")
    assert abs(_at(row) - (went_online - 300)) < 5  # the sandbox's default online period is 300 s

    was_online = sandbox.world.set_status("alice_e2e", online=False).was_online

    async def offline_row() -> Any:
        rows = await _statuses(client, first["id"])
        return rows[-1] if not rows[-1]["is_online"] and _at(rows[-1]) > _at(row) else None

    offline = await wait_until(offline_row, timeout=30, what="the offline row")
    assert abs(_at(offline) - was_online) < 1.5  # the exact was_online, to the second

    # A second subscriber to the same username shares the target: no second contact, same rows from now on.
    second = await follow(client, await person(client), "alice_e2e")
    sandbox.world.set_status("alice_e2e", online=True)

    async def both_online() -> Any:
        a, b = await _statuses(client, first["id"]), await _statuses(client, second["id"])
        return (a[-1], b[-1]) if b and a[-1]["is_online"] and b[-1]["is_online"] else None

    row_a, row_b = await wait_until(both_online, timeout=30, what="the row for both subscribers")
    assert row_a["created_at"] == row_b["created_at"]
    assert row_a["id"] != row_b["id"]
    assert len(sandbox.calls_to("contacts.addContact", account)) == 1
    assert len(sandbox.calls_to("contacts.importContacts", account)) == 0
    assert len(sandbox.calls_to("contacts.resolveUsername", account)) == 1


async def _flip_until_recorded(
    client: Client, sandbox: SandboxServer, username: str, tracked_id: int, online: bool
) -> None:
    """Set the person's status and wait for the matching row."""
    before = len(await _statuses(client, tracked_id))
    sandbox.world.set_status(username, online=online)

    async def recorded() -> bool:
        rows = await _statuses(client, tracked_id)
        return len(rows) > before and rows[-1]["is_online"] is online

    await wait_until(recorded, timeout=45, what=f"{username} {'online' if online else 'offline'} to be recorded")


@pytest.mark.parametrize("how", ["delete", "deactivate", "revoke", "flood_wait"])
async def test_targets_of_a_removed_tracker_keep_flowing_through_another(
    client: Client, sandbox: SandboxServer, supervisor: Supervisor, how: str
) -> None:
    first_account, first = await _register_tracker(client, sandbox)
    sandbox.world.add_person("bob_moves", last_seen_ago=600)
    tracked = await follow(client, await person(client), "bob_moves")
    assert tracked["tracker_account_id"] == first["id"]
    await _flip_until_recorded(client, sandbox, "bob_moves", tracked["id"], online=True)

    second_account, second = await _register_tracker(client, sandbox)
    if how == "delete":
        assert (await client.delete(f"/tracker-accounts/{first['id']}/")).status_code == 204
    elif how == "deactivate":
        assert (await client.patch(f"/tracker-accounts/{first['id']}/", json={"is_active": False})).status_code == 200
    elif how == "revoke":
        sandbox.revoke(first_account)  # the worker sees AUTH_KEY_UNREGISTERED and reports auth_lost
    else:
        # The next status read of the first tracker hits a long flood wait.
        sandbox.inject_fault("contacts.getStatuses", "FLOOD_WAIT_3600", account=first_account)
        sandbox.drop_connections(first_account)  # its reconnect resyncs with contacts.getStatuses

    async def moved() -> bool:
        row = (await client.get(f"/tracked-users/{tracked['id']}/")).json()
        return bool(row["tracker_account_id"] == second["id"])

    await wait_until(moved, timeout=60, what="the target to move to the second tracker")
    if how in ("revoke", "flood_wait"):
        health = (await client.get(f"/tracker-accounts/{first['id']}/")).json()["health"]
        assert health["state"] == ("auth_lost" if how == "revoke" else "flood_wait")

    async def picked_up() -> bool:
        return len(sandbox.calls_to("contacts.addContact", second_account)) == 1

    await wait_until(picked_up, timeout=60, what="the second tracker's worker to take the target")
    await _flip_until_recorded(client, sandbox, "bob_moves", tracked["id"], online=False)
    await _flip_until_recorded(client, sandbox, "bob_moves", tracked["id"], online=True)
    assert len(sandbox.calls_to("contacts.addContact", first_account)) == 1


async def test_a_postgres_outage_across_worker_restarts_does_not_make_the_tracker_fatal(
    client: Client, sandbox: SandboxServer, settings: Settings, postgres_server: PostgresServer
) -> None:
    server = postgres_server.require_embedded()
    fatal_after = 3
    options = ProcessOptions(
        start_seconds=1.0, stop_grace=5.0, backoff_base=0.2, backoff_max=1.0, fatal_after=fatal_after
    )
    _account, tracker = await _register_tracker(client, sandbox)
    sandbox.world.add_person("carol_outage", last_seen_ago=600)
    tracked = await follow(client, await person(client), "carol_outage")
    async with running_supervisor(settings, options) as runner:
        await _flip_until_recorded(client, sandbox, "carol_outage", tracked["id"], online=True)
        process = runner.processes[tracker["id"]]
        assert process.pid is not None
        server.stop()
        os.kill(process.pid, signal.SIGKILL)
        exits = len(process.exit_codes)

        # Each restart finds Postgres unreachable; more of them than it takes to make a crashing tracker FATAL.
        async def outlived_the_fatal_window() -> bool:
            return process.state is State.FATAL or len(process.exit_codes) > exits + fatal_after

        await wait_until(outlived_the_fatal_window, timeout=60, what="restarts while Postgres is down")
        server.start()
        db = await asyncpg.connect(settings.asyncpg_dsn)
        try:

            async def healthy() -> bool:
                state = await db.fetchval(
                    "SELECT state FROM tracker_health WHERE tracker_account_id = $1", tracker["id"]
                )
                assert state != "fatal"
                return bool(state == "ok" and process.state is State.RUNNING)

            await wait_until(healthy, timeout=60, what="the tracker to run again")
            before = await db.fetchval("SELECT count(*) FROM online_statuses WHERE tracked_user_id = $1", tracked["id"])
            sandbox.world.set_status("carol_outage", online=False)

            async def flowing() -> bool:
                count = await db.fetchval(
                    "SELECT count(*) FROM online_statuses WHERE tracked_user_id = $1", tracked["id"]
                )
                return bool(count > before)

            await wait_until(flowing, timeout=30, what="statuses to flow again")
        finally:
            await db.close()


@pytest.mark.usefixtures("login_env")
async def test_a_tracker_logged_in_through_the_api_gets_a_worker_and_its_statuses_flow(
    client: Client, api: Any, sandbox: SandboxServer, supervisor: Supervisor, db: asyncpg.Connection[Any]
) -> None:
    account = sandbox.world.add_account(password="pw-e2e")
    login = await api.post(
        "/tracker-logins/",
        json={"api_id": account.api_id, "api_hash": account.api_hash, "phone_number": account.phone, "max_users": 3},
    )
    assert login.status_code == 201, login.text
    login_id = login.json()["id"]
    assert (await api.post(f"/tracker-logins/{login_id}/code", json={"code": "1 2 3 4 5"})).status_code == 200
    done = (await api.post(f"/tracker-logins/{login_id}/password", json={"password": "pw-e2e"})).json()
    assert (done["state"], done["privacy_ok"]) == ("done", True)
    # The login's connection was closed before the tracker existed: the worker's is the only one since.
    login_connections = {c.connection for c in sandbox.calls if c.method.startswith(("auth.", "account."))}

    sandbox.world.add_person("dora_login", last_seen_ago=600)
    tracked = await follow(client, await person(client), "dora_login")
    assert tracked["tracker_account_id"] == done["tracker_account_id"]
    await _flip_until_recorded(client, sandbox, "dora_login", tracked["id"], online=True)
    worker_connections = {c.connection for c in sandbox.calls_to("contacts.addContact", account)}
    assert worker_connections and not worker_connections & login_connections
    health = await db.fetchval(
        "SELECT state FROM tracker_health WHERE tracker_account_id = $1", done["tracker_account_id"]
    )
    assert health == "ok"


async def test_a_tracker_logged_in_from_the_cli_gets_a_worker_and_its_statuses_flow(
    client: Client,
    sandbox: SandboxServer,
    supervisor: Supervisor,
    db: asyncpg.Connection[Any],
    database_url: str,
    login_env: dict[str, str],
) -> None:
    from tests.support.keys import SECRET_KEY  # noqa: PLC0415
    from tests.test_cli import clean_env  # noqa: PLC0415
    from tests.test_tracker_cli import login_args, run_cli  # noqa: PLC0415

    account = sandbox.world.add_account()
    env = clean_env(DATABASE_URL=database_url, SEEONLINE_SECRET_KEY=SECRET_KEY, SEEONLINE_LOG_JSON="1", **login_env)
    done = await run_cli(
        login_args(account, max_users=3), {**env, "SEEONLINE_TRACKER_API_HASH": account.api_hash}, "12345\n"
    )
    assert done.code == 0, done.err
    tracker_id = await db.fetchval("SELECT id FROM tracker_accounts WHERE telegram_id = $1", account.id)
    assert tracker_id is not None
    # The supervisor (woken by the login's writes) starts the new tracker's worker; a flip becomes rows.
    sandbox.world.add_person("cli_erin", last_seen_ago=600)
    tracked = await follow(client, await person(client), "cli_erin")
    assert tracked["tracker_account_id"] == tracker_id
    await _flip_until_recorded(client, sandbox, "cli_erin", tracked["id"], online=True)
    await wait_until(lambda: _health_is(db, tracker_id, "ok"), what="the CLI-logged-in tracker's worker to report ok")


async def _health_is(db: asyncpg.Connection[Any], tracker_id: int, state: str) -> bool:
    found = await db.fetchval("SELECT state FROM tracker_health WHERE tracker_account_id = $1", tracker_id)
    return bool(found == state)

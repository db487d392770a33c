"""Injected faults, revoked sessions and dropped connections, as Telethon surfaces them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from telethon import errors
from telethon.tl import functions, types

from seeonline.sandbox import SandboxServer


async def test_flood_wait_surfaces_as_flood_wait_error(sandbox: SandboxServer, connect: Any) -> None:
    account = sandbox.world.add_account()
    sandbox.world.add_person("flooded_person")
    sandbox.inject_fault("contacts.ResolveUsernameRequest", "FLOOD_WAIT_30", account=account.phone, count=1)
    async with connect(account) as client:
        with pytest.raises(errors.FloodWaitError) as caught:
            await client(functions.contacts.ResolveUsernameRequest("flooded_person"))
        assert caught.value.seconds == 30
    [call] = sandbox.calls_to("contacts.resolveUsername")
    assert (call.account_id, call.error) == (account.id, "FLOOD_WAIT_30")


async def test_fault_for_one_account_spares_the_others(sandbox: SandboxServer, connect: Any) -> None:
    hit, spared = sandbox.world.add_account(), sandbox.world.add_account()
    sandbox.world.add_person("shared_person")
    sandbox.inject_fault("contacts.resolveUsername", "FLOOD_WAIT_5", account=hit.id)
    async with connect(hit) as client_hit, connect(spared) as client_spared:
        assert (await client_spared.get_entity("shared_person")).username == "shared_person"
        for _ in range(2):  # no count: the fault keeps firing
            with pytest.raises(errors.FloodWaitError):
                await client_hit(functions.contacts.ResolveUsernameRequest("shared_person"))
            client_hit._flood_waited_requests.clear()  # Telethon also remembers flood waits locally
    failed = [c for c in sandbox.calls_to("contacts.ResolveUsernameRequest") if c.error]
    assert [c.account_id for c in failed] == [hit.id, hit.id]


async def test_unknown_username_is_not_occupied(sandbox: SandboxServer, connect: Any) -> None:
    account = sandbox.world.add_account()
    sandbox.world.add_person("real_person")
    sandbox.inject_fault("resolveUsername", "USERNAME_NOT_OCCUPIED", count=1)
    async with connect(account) as client:
        with pytest.raises(errors.UsernameNotOccupiedError):
            await client(functions.contacts.ResolveUsernameRequest("real_person"))  # injected
        with pytest.raises(errors.UsernameNotOccupiedError):
            await client(functions.contacts.ResolveUsernameRequest("nobody_here"))  # genuinely unknown
        with pytest.raises(errors.UsernameInvalidError):
            await client(functions.contacts.ResolveUsernameRequest("no"))
        await client.get_entity("real_person")


async def test_revoked_session_is_unauthorized(sandbox: SandboxServer, connect: Any) -> None:
    account = sandbox.world.add_account()
    async with connect(account) as client:
        assert await client.is_user_authorized()
        running = asyncio.ensure_future(client.run_until_disconnected())
        await asyncio.sleep(0.2)
        sandbox.revoke(account.id)
        # The updatesTooLong push makes the idle client ask for the difference and learn it was logged out.
        with pytest.raises(errors.AuthKeyUnregisteredError):
            await asyncio.wait_for(running, 5)
        assert not client.is_connected()
    async with connect(account) as fresh:  # a new session string works again
        assert await fresh.is_user_authorized()


async def test_revoked_key_makes_calls_fail(sandbox: SandboxServer, connect: Any) -> None:
    account = sandbox.world.add_account()
    session = sandbox.session_string_for(account)
    sandbox.revoke(account)
    from seeonline.telegram import build_client  # noqa: PLC0415

    client = build_client(session, account.api_id, account.api_hash)
    await client.connect()
    try:
        assert not await client.is_user_authorized()
        with pytest.raises(errors.AuthKeyUnregisteredError):
            await client(functions.contacts.GetStatusesRequest())
    finally:
        await client.disconnect()


async def test_injected_auth_key_unregistered(sandbox: SandboxServer, connect: Any) -> None:
    account = sandbox.world.add_account()
    sandbox.inject_fault("contacts.getStatuses", "AUTH_KEY_UNREGISTERED", count=1)
    async with connect(account) as client:
        with pytest.raises(errors.AuthKeyUnregisteredError):
            await client(functions.contacts.GetStatusesRequest())
        assert await client(functions.contacts.GetStatusesRequest()) == []


async def test_client_reconnects_after_dropped_connections(sandbox: SandboxServer, connect: Any, watch: Any) -> None:
    account = sandbox.world.add_account()
    sandbox.world.add_person("steady_person")
    async with connect(account) as client:
        watcher = watch(client)
        user = await client.get_entity("steady_person")
        await client(functions.contacts.AddContactRequest(id=user, first_name="s", last_name="", phone=""))
        for _ in range(2):
            assert sandbox.drop_connections() == 1
            statuses = await client(functions.contacts.GetStatusesRequest())  # waits for the reconnect
            assert [s.user_id for s in statuses] == [user.id]
        sandbox.world.set_status("steady_person", online=True)
        user_id, status = await watcher.next()
        assert (user_id, type(status)) == (user.id, types.UserStatusOnline)
        assert client.is_connected()


async def test_drop_fault_and_response_delay(sandbox: SandboxServer, connect: Any) -> None:
    account = sandbox.world.add_account()
    async with connect(account) as client:
        sandbox.inject_fault("contacts.getContacts", drop=True, count=1)
        # Telethon resends the unanswered request on the new connection.
        contacts = await asyncio.wait_for(client(functions.contacts.GetContactsRequest(hash=0)), 10)
        assert contacts.contacts == []
        sandbox.inject_fault("contacts.getStatuses", delay=0.5, count=1)
        started = time.monotonic()
        await client(functions.contacts.GetStatusesRequest())
        assert time.monotonic() - started >= 0.5
        assert any(c.error == "DROPPED" for c in sandbox.calls_to("getContacts"))


async def test_unknown_auth_key_fails_like_telegram_and_a_seed_makes_keys_survive_restarts() -> None:
    from telethon.errors.common import AuthKeyNotFound  # noqa: PLC0415

    from seeonline.sandbox import World  # noqa: PLC0415
    from seeonline.telegram import build_client  # noqa: PLC0415

    async with SandboxServer(World(seed="restart")) as first:
        account = first.world.add_account()
        session, port = first.session_string_for(account), first.port

    async with SandboxServer(World(), port=port) as unseeded:
        unseeded.world.add_account()
        client = build_client(session, account.api_id, account.api_hash)
        with pytest.raises(AuthKeyNotFound):
            await client.connect()
        await client.disconnect()

    async with SandboxServer(World(seed="restart"), port=port) as restarted:
        again = restarted.world.add_account()
        assert restarted.session_string_for(again) == session
        client = build_client(session, again.api_id, again.api_hash)
        await client.connect()
        try:
            assert (await client.get_me()).id == account.id
        finally:
            await client.disconnect()


async def test_simulation_flips_statuses(sandbox: SandboxServer, connect: Any, watch: Any) -> None:
    account = sandbox.world.add_account()
    person = sandbox.world.add_person("simulated_person")
    sandbox.world.add_contact(account.id, person.id)
    async with connect(account) as client:
        watcher = watch(client)
        sandbox.start_simulation(rate=40)
        kinds = {type((await watcher.next())[1]).__name__ for _ in range(4)}
    assert kinds == {"UserStatusOnline", "UserStatusOffline"}

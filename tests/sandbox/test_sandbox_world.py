"""The sandbox world's rules as an unmodified Telethon client sees them: transports, hashes, contacts, privacy."""

from __future__ import annotations

import time
from typing import Any

import pytest
from telethon import errors
from telethon.network import ConnectionTcpAbridged, ConnectionTcpFull, ConnectionTcpIntermediate
from telethon.tl import functions, types

from seeonline.sandbox import Privacy, SandboxServer


def _hidden(status: object) -> tuple[str, bool]:
    """A hidden status as (kind, by_me); TL objects have no value equality."""
    return type(status).__name__, bool(getattr(status, "by_me", False))


async def _add_contact(client: object, username: str) -> types.User:
    user = await client.get_entity(username)  # type: ignore[attr-defined]
    await client(functions.contacts.AddContactRequest(id=user, first_name=username, last_name="", phone=""))  # type: ignore[operator]
    return user


@pytest.mark.parametrize("connection", [ConnectionTcpFull, ConnectionTcpIntermediate, ConnectionTcpAbridged])
async def test_status_pushes_arrive_over_every_transport(
    sandbox: SandboxServer, connect: Any, watch: Any, connection: type
) -> None:
    account = sandbox.world.add_account()
    person = sandbox.world.add_person("pushed_person")
    async with connect(account, connection=connection) as client:
        watcher = watch(client)
        await _add_contact(client, "pushed_person")
        sandbox.world.set_status("pushed_person", online=True, expires_in=120)
        user_id, status = await watcher.next()
        assert user_id == person.id
        assert isinstance(status, types.UserStatusOnline)
        assert abs(status.expires.timestamp() - (time.time() + 120)) < 3
        sandbox.world.set_status("pushed_person", online=False)
        user_id, status = await watcher.next()
        assert isinstance(status, types.UserStatusOffline)
        assert abs(status.was_online.timestamp() - time.time()) < 3


async def test_access_hash_is_rejected_for_another_account(sandbox: SandboxServer, connect: Any) -> None:
    first, second = sandbox.world.add_account(), sandbox.world.add_account()
    sandbox.world.add_person("hashed_person")
    async with connect(first) as client_a, connect(second) as client_b:
        user_a = await client_a.get_entity("hashed_person")
        user_b = await client_b.get_entity("hashed_person")
        assert user_a.access_hash != user_b.access_hash
        foreign = types.InputUser(user_a.id, user_a.access_hash)
        with pytest.raises(errors.UserIdInvalidError):
            await client_b(functions.users.GetUsersRequest([foreign]))
        with pytest.raises(errors.UserIdInvalidError):
            await client_b(functions.users.GetFullUserRequest(foreign))
        with pytest.raises(errors.ContactIdInvalidError):
            await client_b(functions.contacts.AddContactRequest(id=foreign, first_name="x", last_name="", phone=""))
        # The hash the same account obtained works.
        full = await client_a(functions.users.GetFullUserRequest(foreign))
        assert full.full_user.id == user_a.id


async def test_pushes_go_only_to_accounts_with_the_person_as_contact(
    sandbox: SandboxServer, connect: Any, watch: Any
) -> None:
    watching, idle = sandbox.world.add_account(), sandbox.world.add_account()
    sandbox.world.add_person("watched_person")
    async with connect(watching) as client_w, connect(idle) as client_i:
        seen, unseen = watch(client_w), watch(client_i)
        await _add_contact(client_w, "watched_person")
        await client_i.get_entity("watched_person")  # resolved, but not a contact
        sandbox.world.set_status("watched_person", online=True)
        await seen.next()
        await unseen.nothing()
        user = await client_w.get_entity("watched_person")
        await client_w(functions.contacts.DeleteContactsRequest(id=[user]))
        sandbox.world.set_status("watched_person", online=False)
        await seen.nothing()


async def test_contacts_statuses_and_import(sandbox: SandboxServer, connect: Any) -> None:
    account = sandbox.world.add_account()
    by_phone = sandbox.world.add_person("phone_person", phone="+1 555 0100")
    sandbox.world.add_person("online_person", online=True)
    async with connect(account) as client:
        await _add_contact(client, "online_person")
        imported = await client(
            functions.contacts.ImportContactsRequest(
                [
                    types.InputPhoneContact(client_id=7, phone="15550100", first_name="p", last_name=""),
                    types.InputPhoneContact(client_id=8, phone="19999999", first_name="q", last_name=""),
                ]
            )
        )
        assert [(c.user_id, c.client_id) for c in imported.imported] == [(by_phone.id, 7)]
        contacts = await client(functions.contacts.GetContactsRequest(hash=0))
        assert len(contacts.contacts) == 2
        statuses = {s.user_id: s.status for s in await client(functions.contacts.GetStatusesRequest())}
        assert isinstance(statuses[by_phone.id], types.UserStatusOffline)
        assert sum(isinstance(s, types.UserStatusOnline) for s in statuses.values()) == 1


async def test_privacy_states_as_seen_by_a_tracker(sandbox: SandboxServer, connect: Any, watch: Any) -> None:
    world = sandbox.world
    account = world.add_account()
    world.add_person("open_person", privacy=Privacy.EVERYBODY)
    world.add_person("hidden_person", privacy=Privacy.NOBODY, last_seen_ago=60)
    world.add_person("weekly_person", privacy=Privacy.NOBODY, last_seen_ago=5 * 86400)
    world.add_person("monthly_person", privacy=Privacy.NOBODY, last_seen_ago=20 * 86400)
    mutual = world.add_person("mutual_person", privacy=Privacy.CONTACTS)
    world.add_person("stranger_person", privacy=Privacy.CONTACTS)
    world.add_contact(mutual.id, account.id)  # the person has the tracker in their contacts
    names = ["open_person", "hidden_person", "weekly_person", "monthly_person", "mutual_person", "stranger_person"]
    async with connect(account) as client:
        for name in names:
            await _add_contact(client, name)

        async def statuses() -> dict[str, object]:
            found = await client(functions.contacts.GetStatusesRequest())
            by_id = {s.user_id: s.status for s in found}
            return {name: by_id[world.user(name).id] for name in names}

        seen = await statuses()
        assert isinstance(seen["open_person"], types.UserStatusOffline)
        assert _hidden(seen["hidden_person"]) == ("UserStatusRecently", False)
        assert isinstance(seen["weekly_person"], types.UserStatusLastWeek)
        assert isinstance(seen["monthly_person"], types.UserStatusLastMonth)
        assert isinstance(seen["mutual_person"], types.UserStatusOffline)
        assert isinstance(seen["stranger_person"], types.UserStatusRecently)

        # A tracker hiding its own last-seen sees everyone hidden, flagged by_me.
        world.set_privacy(account.id, Privacy.NOBODY)
        seen = await statuses()
        assert _hidden(seen["open_person"]) == ("UserStatusRecently", True)
        assert _hidden(seen["weekly_person"]) == ("UserStatusLastWeek", True)

        # Privacy changes push the new view to watchers.
        world.set_privacy(account.id, Privacy.EVERYBODY)
        watcher = watch(client)
        world.set_privacy("open_person", Privacy.NOBODY)
        user_id, status = await watcher.next()
        assert user_id == world.user("open_person").id
        assert _hidden(status) == ("UserStatusRecently", False)


async def test_online_expires_without_an_offline_push(sandbox: SandboxServer, connect: Any, watch: Any) -> None:
    account = sandbox.world.add_account()
    sandbox.world.add_person("fleeting_person")
    async with connect(account) as client:
        watcher = watch(client)
        await _add_contact(client, "fleeting_person")
        sandbox.world.set_status("fleeting_person", online=True, expires_in=1)
        _, status = await watcher.next()
        assert isinstance(status, types.UserStatusOnline)
        await watcher.nothing(1.5)
        [contact] = await client(functions.contacts.GetStatusesRequest())
        assert isinstance(contact.status, types.UserStatusOffline)
        assert contact.status.was_online == status.expires


async def test_own_status_update_reaches_watchers(sandbox: SandboxServer, connect: Any, watch: Any) -> None:
    tracker, friend = sandbox.world.add_account(username="own_status"), sandbox.world.add_account()
    async with connect(tracker) as client_t, connect(friend) as client_f:
        watcher = watch(client_f)
        await _add_contact(client_f, "own_status")
        assert await client_t(functions.account.UpdateStatusRequest(offline=False))
        user_id, status = await watcher.next()
        assert user_id == tracker.id
        assert isinstance(status, types.UserStatusOnline)

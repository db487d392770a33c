"""RPC handlers for usernames and the contact list."""

from __future__ import annotations

import re
from typing import Any

from telethon.tl import functions, types

from seeonline.sandbox.handler_kit import RpcContext, RpcError, handles, input_user, now_utc

_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


def _updates_with(ctx: RpcContext, user_ids: list[int]) -> Any:
    """An ``Updates`` carrying just the users, as Telegram answers contact edits (seq 0: no ordering)."""
    users = [ctx.world.user_view(ctx.me.id, uid) for uid in user_ids]
    return types.Updates(updates=[], users=users, chats=[], date=now_utc(), seq=0)


@handles(functions.contacts.ResolveUsernameRequest)
def resolve_username(ctx: RpcContext, request: Any) -> Any:
    """Find a user by username; the answer carries this account's own access hash for them."""
    username = request.username.lstrip("@")
    if not _USERNAME.match(username):
        raise RpcError("USERNAME_INVALID", 400)
    user = ctx.world.find_username(username)
    if user is None:
        raise RpcError("USERNAME_NOT_OCCUPIED", 400)
    return types.contacts.ResolvedPeer(
        peer=types.PeerUser(user_id=user.id), chats=[], users=[ctx.world.user_view(ctx.me.id, user.id)]
    )


@handles(functions.contacts.AddContactRequest)
def add_contact(ctx: RpcContext, request: Any) -> Any:
    """Add a user (named by an InputUser this account obtained) to the contact list."""
    target = input_user(ctx, request.id, error="CONTACT_ID_INVALID")
    if target.id == ctx.me.id:
        raise RpcError("CONTACT_ID_INVALID", 400)
    ctx.world.add_contact(ctx.me.id, target.id)
    return _updates_with(ctx, [target.id])


@handles(functions.contacts.ImportContactsRequest)
def import_contacts(ctx: RpcContext, request: Any) -> Any:
    """Add users by phone number; unknown numbers are simply not imported."""
    imported: list[Any] = []
    for contact in request.contacts:
        user = ctx.world.find_phone(contact.phone)
        if user is None or user.id == ctx.me.id:
            continue
        ctx.world.add_contact(ctx.me.id, user.id)
        imported.append(types.ImportedContact(user_id=user.id, client_id=contact.client_id))
    return types.contacts.ImportedContacts(
        imported=imported,
        popular_invites=[],
        retry_contacts=[],
        users=[ctx.world.user_view(ctx.me.id, c.user_id) for c in imported],
    )


@handles(functions.contacts.DeleteContactsRequest)
def delete_contacts(ctx: RpcContext, request: Any) -> Any:
    """Remove users from the contact list; their statuses stop being pushed to this account."""
    targets = [input_user(ctx, peer, error="CONTACT_ID_INVALID") for peer in request.id]
    for target in targets:
        ctx.world.remove_contact(ctx.me.id, target.id)
    return _updates_with(ctx, [t.id for t in targets])


@handles(functions.contacts.GetContactsRequest)
def get_contacts(ctx: RpcContext, _request: Any) -> Any:
    """The whole contact list (the hash is ignored: never ``contactsNotModified``)."""
    me = ctx.me.user
    contact_ids = sorted(me.contacts)
    return types.contacts.Contacts(
        contacts=[types.Contact(user_id=uid, mutual=me.id in ctx.world.users[uid].contacts) for uid in contact_ids],
        saved_count=0,
        users=[ctx.world.user_view(me.id, uid) for uid in contact_ids],
    )


@handles(functions.contacts.GetStatusesRequest)
def get_statuses(ctx: RpcContext, _request: Any) -> Any:
    """Every contact's status as this account sees it: the resync call after a reconnect."""
    me = ctx.me.user
    return [types.ContactStatus(user_id=uid, status=ctx.world.status_view(me.id, uid)) for uid in sorted(me.contacts)]

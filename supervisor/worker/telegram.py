"""The Telegram side of a worker: calls with flood/auth classification, resync, resolve and contact steps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from seeonline.logging import get_logger
from supervisor.worker.book import StatusBook, TargetState

log = get_logger("supervisor.worker.telegram")

NOT_FOUND_ERRORS = (errors.UsernameNotOccupiedError, errors.UsernameInvalidError)
STALE_PEER_ERRORS = (errors.ContactIdInvalidError, errors.UserIdInvalidError, errors.PeerIdInvalidError)


class RetiredError(Exception):
    """The tracker stopped being usable (auth lost, banned, long flood wait); its worker winds down."""


class ShortFloodWaitError(Exception):
    """Telegram asked for a pause short enough to sleep through."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"flood wait of {seconds} s")
        self.seconds = seconds


Retire = Callable[[str, float | None, str], Awaitable[None]]


class TelegramSide:
    """Wraps the Telethon client: every call goes through ``call`` so floods and revoked keys are handled once."""

    def __init__(self, client: TelegramClient, book: StatusBook, *, short_flood_wait: float, retire: Retire) -> None:
        self.client = client
        self.book = book
        self.short_flood_wait = short_flood_wait
        self.retire = retire
        self.resyncs = 0
        self._last_resolve = float("-inf")

    async def call(self, request: Any) -> Any:
        """Invoke ``request``; a long flood wait or a dead session retires the tracker (raises ``RetiredError``)."""
        try:
            return await self.client(request)
        except errors.FloodWaitError as exc:
            seconds = float(exc.seconds)
            if seconds <= self.short_flood_wait:
                raise ShortFloodWaitError(seconds) from exc
            await self.retire("flood_wait", seconds, f"{type(request).__name__}: FLOOD_WAIT_{exc.seconds}")
            raise RetiredError from exc
        except errors.UserDeactivatedBanError as exc:
            await self.retire("banned", None, f"{type(request).__name__}: {exc.message}")
            raise RetiredError from exc
        except errors.UnauthorizedError as exc:
            await self.retire("auth_lost", None, f"{type(request).__name__}: {exc.message}")
            raise RetiredError from exc

    async def resync(self) -> set[int]:
        """One ``contacts.getStatuses``: apply every watched contact's status; returns the contacts' user ids."""
        statuses = await self.call(functions.contacts.GetStatusesRequest())
        contacts = set()
        for item in statuses:
            contacts.add(item.user_id)
            self.book.observe(item.user_id, item.status)
        for state in self.book.targets.values():
            state.is_contact = state.user_id in contacts
            state.contact_checked = True
        self.resyncs += 1
        return contacts

    async def resolve(self, state: TargetState, spacing: float) -> Any | None:
        """Resolve the target's username (spaced per tracker); the ``User``, or None if it does not exist."""
        wait = self._last_resolve + spacing - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_resolve = time.monotonic()
        try:
            resolved = await self.call(functions.contacts.ResolveUsernameRequest(username=state.username))
        except NOT_FOUND_ERRORS:
            return None
        peer_id = getattr(resolved.peer, "user_id", None)
        for user in resolved.users:
            if user.id == peer_id and user.access_hash is not None:
                return user
        return None

    async def add_contact(self, state: TargetState) -> bool:
        """Add the resolved target as a contact and apply the status in the answer; False if the peer is stale."""
        assert state.user_id is not None and state.access_hash is not None
        request = functions.contacts.AddContactRequest(
            id=types.InputUser(state.user_id, state.access_hash),
            first_name=state.username,
            last_name="",
            phone="",
            add_phone_privacy_exception=False,
        )
        try:
            answer = await self.call(request)
        except STALE_PEER_ERRORS:
            return False
        state.is_contact = True
        for user in getattr(answer, "users", ()):
            if user.id == state.user_id:
                self.book.apply(state, user.status)
        return True

    async def delete_contacts(self, peers: list[tuple[int, int]]) -> None:
        """Remove targets that left this tracker from its contact list (their pushes stop)."""
        if peers:
            await self.call(
                functions.contacts.DeleteContactsRequest(id=[types.InputUser(uid, ahash) for uid, ahash in peers])
            )

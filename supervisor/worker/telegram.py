"""The Telegram side of a worker: calls with flood/auth classification, resync, resolve and contact steps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from seeonline.health import HealthState
from seeonline.logging import get_logger
from seeonline_supervisor.metrics import FLOOD_WAITS
from seeonline_supervisor.worker.book import StatusBook, TargetState, utc_now

log = get_logger("supervisor.worker.telegram")

ENROLMENT = "enrolment"  # resolving usernames and adding contacts: new targets wait, watched ones do not
CONTACT_CLEANUP = "contact_cleanup"  # removing contacts that left this tracker
# A long flood wait on one of these pauses that kind of call for this tracker only; the tracker keeps
# watching. A long flood wait on anything else (what tracking itself needs) retires the tracker.
PAUSABLE: dict[type, str] = {
    functions.contacts.ResolveUsernameRequest: ENROLMENT,
    functions.contacts.AddContactRequest: ENROLMENT,
    functions.contacts.DeleteContactsRequest: CONTACT_CLEANUP,
}

# Telegram could not be reached (or did not answer in time): retried, never a reason to retire.
TELEGRAM_ERRORS = (OSError, ConnectionError, TimeoutError)
NOT_FOUND_ERRORS = (errors.UsernameNotOccupiedError, errors.UsernameInvalidError)
STALE_PEER_ERRORS = (errors.ContactIdInvalidError, errors.UserIdInvalidError, errors.PeerIdInvalidError)


class RetiredError(Exception):
    """The tracker stopped being usable (auth lost, banned, long flood wait); its worker winds down."""


class ShortFloodWaitError(Exception):
    """Telegram asked for a pause short enough to sleep through."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"flood wait of {seconds} s")
        self.seconds = seconds


class PausedError(Exception):
    """A kind of call is paused by a flood wait for this tracker (``seconds`` left)."""

    def __init__(self, kind: str, seconds: float) -> None:
        super().__init__(f"{kind} paused for {seconds:.0f} s")
        self.kind = kind
        self.seconds = seconds


Retire = Callable[[HealthState, float | None, str], Awaitable[None]]
Pause = Callable[[str, float, str], None]


class TelegramSide:
    """Wraps the Telethon client: every call goes through ``call`` so floods and revoked keys are handled once."""

    def __init__(
        self,
        client: TelegramClient,
        book: StatusBook,
        *,
        short_flood_wait: float,
        retire: Retire,
        on_pause: Pause,
        call_timeout: float,
    ) -> None:
        self.client = client
        self.call_timeout = call_timeout
        self.book = book
        self.short_flood_wait = short_flood_wait
        self.retire = retire
        self.on_pause = on_pause
        self.resyncs = 0
        self._last_resolve = float("-inf")
        self._paused_until: dict[str, float] = {}  # kind -> monotonic end of its flood wait

    def pause(self, kind: str, seconds: float) -> None:
        """Make calls of ``kind`` raise ``PausedError`` for ``seconds`` (also used for a persisted pause)."""
        self._paused_until[kind] = time.monotonic() + seconds

    def paused_for(self, kind: str) -> float:
        """Seconds left of the pause of ``kind`` (0 when it is not paused)."""
        return max(self._paused_until.get(kind, 0.0) - time.monotonic(), 0.0)

    def next_pause_end(self) -> float | None:
        """Seconds until the first current pause ends, if any."""
        left = [seconds for kind in self._paused_until if (seconds := self.paused_for(kind)) > 0]
        return min(left) if left else None

    async def call(self, request: Any) -> Any:
        """Invoke ``request``; a long flood wait pauses its kind (``PausedError``) or retires the tracker.

        A dead session retires it too (``RetiredError``).
        """
        kind = PAUSABLE.get(type(request))
        if kind is not None and (left := self.paused_for(kind)) > 0:
            raise PausedError(kind, left)
        try:
            # A call Telegram never answers (a half-dead connection) must not hold its loop forever.
            return await asyncio.wait_for(self.client(request), self.call_timeout)
        except errors.FloodWaitError as exc:
            seconds = float(exc.seconds)
            if seconds <= self.short_flood_wait:
                FLOOD_WAITS.labels(outcome="short").inc()
                raise ShortFloodWaitError(seconds) from exc
            error = f"{type(request).__name__}: FLOOD_WAIT_{exc.seconds}"
            FLOOD_WAITS.labels(outcome="paused" if kind is not None else "retired").inc()
            if kind is not None:
                self.pause(kind, seconds)
                self.on_pause(kind, seconds, error)
                raise PausedError(kind, seconds) from exc
            await self.retire(HealthState.FLOOD_WAIT, seconds, error)
            raise RetiredError from exc
        except errors.UserDeactivatedBanError as exc:
            await self.retire(HealthState.BANNED, None, f"{type(request).__name__}: {exc.message}")
            raise RetiredError from exc
        except errors.UnauthorizedError as exc:
            await self.retire(HealthState.AUTH_LOST, None, f"{type(request).__name__}: {exc.message}")
            raise RetiredError from exc

    async def resync(self) -> set[int]:
        """One ``contacts.getStatuses``: apply every watched contact's status; returns the contacts' user ids."""
        asked_at = utc_now()
        statuses = await self.call(functions.contacts.GetStatusesRequest())
        contacts = set()
        for item in statuses:
            contacts.add(item.user_id)
            self.book.observe(item.user_id, item.status, snapshot_at=asked_at)
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

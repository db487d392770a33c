"""Enrolment: new targets resolved once per tracker and added as contacts; contacts of targets that left removed.

``contacts.resolveUsername`` is Telegram's most flood-limited call, so each username is resolved once per
tracker, spaced out, and the peer persisted (``tracker_peers``) before it is used. A long flood wait on
enrolment pauses it (``TelegramSide``), the watched targets carry on; removals of contacts wait for their
own pause and are retried after errors, up to ``MAX_DELETE_ATTEMPTS``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from telethon import errors

from seeonline.database.errors import DATABASE_ERRORS
from seeonline.waiting import wait_event
from seeonline_supervisor.worker.book import StatusBook, TargetState
from seeonline_supervisor.worker.call_errors import CallErrors, describe
from seeonline_supervisor.worker.control import ControlDb
from seeonline_supervisor.worker.ingest import StatusWriter
from seeonline_supervisor.worker.options import WorkerOptions
from seeonline_supervisor.worker.telegram import (
    CONTACT_CLEANUP,
    ENROLMENT,
    TELEGRAM_ERRORS,
    PausedError,
    ShortFloodWaitError,
    TelegramSide,
)

MAX_DELETE_ATTEMPTS = 5  # contacts.deleteContacts tries for the contacts of targets that left
DELETE_CONTACTS = "delete_contacts"  # the CallErrors key of those removals


class Enrolment:
    """The worker's ``enrol`` loop: woken by ``wake`` (new targets, a resync), or when a retry or pause is due."""

    def __init__(
        self,
        *,
        telegram: TelegramSide,
        book: StatusBook,
        control: ControlDb,
        writer: StatusWriter,
        options: WorkerOptions,
        call_errors: CallErrors,
        wake: asyncio.Event,
        ready: asyncio.Event,
        connected: asyncio.Event,
        handing_over: dict[int, float],
        log: Any,
    ) -> None:
        self.telegram = telegram
        self.book = book
        self.control = control
        self.writer = writer
        self.options = options
        self.call_errors = call_errors
        self.wake = wake
        self.ready = ready  # the first resync happened: contacts are known
        self.connected = connected
        self.handing_over = handing_over  # targets that left, still watched until their new tracker has them
        self.log = log
        self._leaving: list[tuple[int, int]] = []  # contacts of targets that left: (user id, access hash)
        self._not_found_until: dict[int, float] = {}

    def target_left(self, state: TargetState) -> None:
        """``state`` is no longer this tracker's: remove its contact (its pushes would be for nobody)."""
        self.call_errors.recovered(state.target_id)
        still_watched = state.user_id in self.book.by_user  # another username of the same person stays here
        if state.is_contact and state.user_id and state.access_hash and not still_watched:
            self._leaving.append((state.user_id, state.access_hash))

    def target_returned(self, user_id: int) -> None:
        """A target came back before its contact was removed: keep the contact."""
        self._leaving = [peer for peer in self._leaving if peer[0] != user_id]

    async def run(self) -> None:
        """Enrol whatever is pending, whenever there may be something to do."""
        while True:
            await wait_event(self.wake, self._next_wake_in())
            self.wake.clear()
            await self.ready.wait()
            await self.connected.wait()
            try:
                await self._enrol_pending()
            except ShortFloodWaitError as wait:
                self.log.info("worker_flood_wait_sleeping", seconds=wait.seconds)
                await asyncio.sleep(wait.seconds)
                self.wake.set()
            except (*TELEGRAM_ERRORS, *DATABASE_ERRORS, ConnectionError, ValueError) as exc:
                self.log.warning("worker_enrol_failed", error=repr(exc))
                await asyncio.sleep(1.0)
                self.wake.set()

    def _next_wake_in(self) -> float | None:
        waits = []
        retry = self.call_errors.next_retry_in(*([DELETE_CONTACTS] if self._leaving else []))
        if retry is not None:
            waits.append(retry)
        pause_end = self.telegram.next_pause_end()
        if pause_end is not None:
            waits.append(pause_end + 0.01)
        return min(waits) if waits else None

    async def _enrol_pending(self) -> None:
        for kind in (ENROLMENT, CONTACT_CLEANUP):
            if not self.telegram.paused_for(kind):
                self.call_errors.recovered(kind)
        await self._delete_leaving()
        await self._mark_enrolled()
        if self.telegram.paused_for(ENROLMENT):
            return  # new targets wait for the flood wait to end (or move, see so_move_unresolved)
        now = time.monotonic()
        for target_id in sorted(self.book.targets):
            state = self.book.targets.get(target_id)
            if state is None or state.is_contact or self._not_found_until.get(target_id, 0.0) > now:
                continue
            if self.call_errors.waiting(target_id):
                continue  # an unexpected error earlier: its retry comes later
            if state.user_id is not None and not state.contact_checked:
                continue  # the resync already asked for will tell whether it is still a contact
            try:
                await self._enrol_one(state)
            except PausedError:
                return
            except errors.RPCError as exc:
                delay = self.call_errors.failed(target_id, exc)
                self.log.warning("worker_target_rpc_error", target_id=target_id, error=describe(exc), retry_in=delay)

    async def _mark_enrolled(self) -> None:
        """Say which of this tracker's targets it watches now (the tracker they came from stops then)."""
        watched = [
            state
            for state in self.book.targets.values()
            if state.is_contact and not state.enrolled_marked and state.target_id not in self.handing_over
        ]
        if watched:
            await self.control.mark_enrolled([state.target_id for state in watched])
            for state in watched:
                state.enrolled_marked = True

    async def _delete_leaving(self) -> None:
        """Remove the contacts of targets that left; kept for a retry while Telegram says wait or is away."""
        if not self._leaving or self.telegram.paused_for(CONTACT_CLEANUP) or self.call_errors.waiting(DELETE_CONTACTS):
            return
        leaving, self._leaving = self._leaving, []
        try:
            await self.telegram.delete_contacts(leaving)
        except PausedError:
            self._leaving = leaving + self._leaving
        except errors.RPCError as exc:
            self.call_errors.failed(DELETE_CONTACTS, exc)
            attempt = self.call_errors.failures(DELETE_CONTACTS)
            self.log.warning(
                "worker_delete_contacts_failed", error=describe(exc), contacts=len(leaving), attempt=attempt
            )
            if attempt < MAX_DELETE_ATTEMPTS:
                self._leaving = leaving + self._leaving
            else:  # a stale contact only pushes statuses nobody here watches
                self.call_errors.recovered(DELETE_CONTACTS)
        except BaseException:
            self._leaving = leaving + self._leaving
            raise
        else:
            self.call_errors.recovered(DELETE_CONTACTS)

    async def _enrol_one(self, state: TargetState) -> None:
        target_id = state.target_id
        if state.user_id is None and not await self._resolve(state):
            return
        if self.book.targets.get(target_id) is not state:
            return  # moved away while we were resolving
        if await self.telegram.add_contact(state):
            self.log.info("worker_target_enrolled", target_id=target_id, visibility=state.visibility)
            self.call_errors.recovered(target_id)
            await self._mark_enrolled()
        else:
            self.log.warning("worker_peer_stale", target_id=target_id)
            await self.control.forget_peer(target_id)
            state.user_id = state.access_hash = None
            self.wake.set()
        await asyncio.sleep(self.options.contact_interval)

    async def _resolve(self, state: TargetState) -> bool:
        user = await self.telegram.resolve(state, self.options.resolve_interval)
        if user is None:
            self.log.info("worker_target_not_found", target_id=state.target_id)
            self._not_found_until[state.target_id] = time.monotonic() + self.options.not_found_retry
            if state.visibility != "not_found":
                state.visibility = "not_found"
                self.writer.set_visibility(state.target_id, "not_found")
            return False
        # Persist before using it: a restart must never resolve this username again.
        await self.control.save_peer(state.target_id, user.id, user.access_hash)
        self.book.bind(state, user.id, user.access_hash)
        return True

"""What the worker knows of each watched target, and how a Telegram ``UserStatus`` becomes a transition.

Rules (see design.md, "Tracker worker"): ``UserStatusOnline`` means online from now until ``expires``
(an offline is recorded at ``expires`` if nothing else arrives); ``UserStatusOffline`` carries the
exact ``was_online``; ``Recently``/``LastWeek``/``LastMonth`` mean the status is hidden (``by_me``:
hidden because the *tracker* hides its own last-seen), a visibility state and not an offline.
Times per target never go backwards: Telegram's dates have second precision, so an offline whose
``was_online`` falls in the same second as the online we stamped is moved just after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon.tl import types

from seeonline.choices import StatusSource
from seeonline_supervisor.worker.ingest import StatusWriter, Transition

_TICK = timedelta(microseconds=1)
HIDDEN_STATUSES = (types.UserStatusRecently, types.UserStatusLastWeek, types.UserStatusLastMonth)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class TargetState:
    """One target this tracker watches."""

    target_id: int
    username: str
    user_id: int | None = None
    access_hash: int | None = None
    visibility: str = "unknown"
    last_online: bool | None = None
    last_at: datetime | None = None
    is_contact: bool = False
    contact_checked: bool = False  # a getStatuses since it was added told whether it is a contact
    enrolled_marked: bool = False  # targets.enrolled_at written: a tracker it left may stop watching it
    expires: datetime | None = None  # a pending "offline at expires" (armed in ``expiry`` unless paused)
    expiry: asyncio.TimerHandle | None = field(default=None, repr=False)

    def cancel_expiry(self) -> None:
        """Forget a pending "offline at expires"."""
        self.expires = None
        self.disarm()

    def disarm(self) -> None:
        """Cancel the timer of a pending expiry but remember it (see ``StatusBook.pause``)."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None


class StatusBook:
    """The targets of one tracker, keyed by target id and by Telegram user id, feeding a StatusWriter."""

    def __init__(self, writer: StatusWriter, *, on_tracker_hidden: Callable[[bool], None] | None = None) -> None:
        self.writer = writer
        self.targets: dict[int, TargetState] = {}
        # Two usernames may resolve to one Telegram user (a renamed account, an alias): both are watched.
        self.by_user: dict[int, list[TargetState]] = {}
        self.on_tracker_hidden = on_tracker_hidden
        self.ignored = 0
        self.paused = False
        self.closed = False

    # --- membership ---------------------------------------------------------------------------

    def add(self, state: TargetState) -> None:
        """Start watching a target."""
        self.targets[state.target_id] = state
        if state.user_id is not None:
            self._index(state)

    def remove(self, target_id: int) -> TargetState | None:
        """Stop watching a target (it moved to another tracker or lost its last tracked user)."""
        state = self.targets.pop(target_id, None)
        if state is not None:
            state.cancel_expiry()
            self._unindex(state)
        return state

    def bind(self, state: TargetState, user_id: int, access_hash: int) -> None:
        """Attach the resolved Telegram peer to a target."""
        self._unindex(state)
        state.user_id, state.access_hash = user_id, access_hash
        self._index(state)

    def _index(self, state: TargetState) -> None:
        assert state.user_id is not None
        self.by_user.setdefault(state.user_id, []).append(state)

    def _unindex(self, state: TargetState) -> None:
        if state.user_id is None:
            return
        watching = [other for other in self.by_user.get(state.user_id, ()) if other is not state]
        if watching:
            self.by_user[state.user_id] = watching
        else:
            self.by_user.pop(state.user_id, None)

    # --- observations -------------------------------------------------------------------------

    def observe(self, user_id: int, status: Any, *, snapshot_at: datetime | None = None) -> bool:
        """Apply a status Telegram reported for ``user_id``; False when the user is not watched here.

        ``snapshot_at``: the status comes from a ``contacts.getStatuses`` asked at that time (a resync),
        not from a push: it may be older than a push that arrived meanwhile.
        """
        watching = self.by_user.get(user_id)
        if not watching:
            self.ignored += 1
            return False
        for state in watching:
            self.apply(state, status, snapshot_at=snapshot_at)
        return True

    def apply(self, state: TargetState, status: Any, *, snapshot_at: datetime | None = None) -> None:
        """Turn one ``UserStatus`` into a transition and/or a visibility change for the target."""
        if self.closed:
            return
        if isinstance(status, types.UserStatusOnline):
            self._visible(state, "visible")
            if snapshot_at is None:
                self._record(state, True, utc_now(), StatusSource.PUSH)
            elif not self._newer_known(state, snapshot_at):
                # Online since some time before the snapshot (inexact), unless a push already told more.
                self._record(state, True, snapshot_at, StatusSource.RESYNC)
            self._expire_at(state, status.expires)
        elif isinstance(status, types.UserStatusOffline):
            self._visible(state, "visible")
            state.cancel_expiry()
            was_online = _aware(status.was_online)
            if snapshot_at is not None:
                if self._newer_known(state, was_online):
                    return  # a push arrived meanwhile: this snapshot is older news
                if state.last_online is False and state.last_at is not None and was_online > state.last_at:
                    # Offline before the gap and now, but last seen during it: a session we could not see.
                    self._record(state, True, was_online, StatusSource.RESYNC)
            self._record(state, False, was_online, StatusSource.WAS_ONLINE)
        elif isinstance(status, HIDDEN_STATUSES):
            by_me = bool(getattr(status, "by_me", False))
            self._visible(state, "hidden_by_tracker_privacy" if by_me else "hidden")
            if self.on_tracker_hidden is not None:
                self.on_tracker_hidden(by_me)
        elif isinstance(status, types.UserStatusEmpty) or status is None:
            # Telegram shows nothing at all (blocked, deleted, or never seen): not an offline either.
            self._visible(state, "hidden")

    def _visible(self, state: TargetState, visibility: str) -> None:
        if state.visibility != visibility:
            state.visibility = visibility
            self.writer.set_visibility(state.target_id, visibility)
        if visibility == "visible" and self.on_tracker_hidden is not None:
            self.on_tracker_hidden(False)

    @staticmethod
    def _newer_known(state: TargetState, at: datetime) -> bool:
        """Whether what is known of the target is at least as new as ``at`` (so ``at``'s news is stale)."""
        return state.last_at is not None and state.last_at >= at

    def _record(self, state: TargetState, is_online: bool, at: datetime, source: StatusSource) -> None:
        # Every observation is submitted: the state loaded from the database may be stale (another
        # tracker wrote since), so only the INSERT, under the target's row lock, knows whether this is
        # a change. Only what can never be new is dropped: the same state at or before the known time
        # (``last_status_at`` only moves forward, so the INSERT would skip it too).
        at = _aware(at)
        if state.last_at is not None and at <= state.last_at:
            if state.last_online == is_online:
                return
            at = state.last_at + _TICK
        state.last_online, state.last_at = is_online, at
        self.writer.submit(Transition(state.target_id, is_online, at, source))

    def _expire_at(self, state: TargetState, expires: datetime) -> None:
        if state.expires != expires:
            self.writer.set_expiry(state.target_id, expires)
        self.restore_expiry(state, expires)

    def restore_expiry(self, state: TargetState, expires: datetime) -> None:
        """Close the target's online interval at ``expires`` unless a newer status comes (at once if past)."""
        state.cancel_expiry()
        state.expires = expires
        if not self.paused:
            self._arm(state)

    def _arm(self, state: TargetState) -> None:
        assert state.expires is not None
        delay = state.expires.timestamp() - time.time()
        loop = asyncio.get_running_loop()
        state.expiry = loop.call_later(max(delay, 0.0), self._expired, state.target_id, state.expires)

    def _expired(self, target_id: int, expires: datetime) -> None:
        state = self.targets.get(target_id)
        if state is None or self.paused or self.closed:
            return
        state.expiry = state.expires = None
        if state.last_online:
            self._record(state, False, expires, StatusSource.EXPIRES)

    def pause(self) -> None:
        """Hold every pending expiry (the tracker's lock is lost: another worker may own these targets now)."""
        self.paused = True
        for state in self.targets.values():
            state.disarm()

    def resume(self) -> None:
        """Re-arm the held expiries (those already past fire at once); the lock is ours again."""
        self.paused = False
        if self.closed:
            return
        for state in self.targets.values():
            if state.expires is not None and state.expiry is None:
                self._arm(state)

    def close(self) -> None:
        """Cancel every timer and ignore whatever is observed from now on (the targets are being handed over)."""
        self.closed = True
        for state in self.targets.values():
            state.cancel_expiry()


def _aware(at: datetime) -> datetime:
    """Telethon's datetimes are UTC; make sure they say so."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)

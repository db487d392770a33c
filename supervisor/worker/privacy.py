"""The worker's privacy self-check: is the tracker's own last seen shown to everybody?

A tracker that hides it sees no exact statuses (Telegram's reciprocity), so it must not hold targets.
The check (``seeonline.telegram.privacy``, shared with the login flow) runs once connected at start,
every ``privacy_interval``, when the API asks (a NOTIFY hint; the request row is the truth), and when a
target's status arrives with ``by_me`` (at most once per ``privacy_symptom_spacing``). Each result is
written to ``tracker_privacy_checks``; the worker turns it into its health state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from telethon import TelegramClient, errors

from seeonline.database.errors import DATABASE_ERRORS
from seeonline.logging import get_logger
from seeonline.telegram.privacy import PrivacyReport, check_last_seen
from seeonline.waiting import wait_event
from seeonline_supervisor.worker.control import ControlDb
from seeonline_supervisor.worker.telegram import TELEGRAM_ERRORS

log = get_logger("supervisor.worker.privacy")

# After a failed check (Telegram or Postgres), try again this soon.
RETRY_AFTER = 30.0
# Anything a check can meet short of a dead session is retried later. ValueError: what Telethon raises
# for a request it gave up on (build_client asks for the RPCError instead).
CHECK_ERRORS = (*TELEGRAM_ERRORS, errors.RPCError, ValueError)


class PrivacyWatch:
    """Runs the privacy check when it is due and hands each result to ``apply``."""

    def __init__(
        self,
        control: ControlDb,
        apply: Callable[[PrivacyReport], Awaitable[None]],
        *,
        interval: float,
        symptom_spacing: float,
    ) -> None:
        self.control = control
        self.apply = apply
        self.interval = interval
        self.symptom_spacing = symptom_spacing
        self.wake = asyncio.Event()
        self.checks = 0
        self._last_check = float("-inf")

    def requested(self) -> None:
        """The API asked for a check (or the control connection came back and a request may be waiting)."""
        self.wake.set()

    def symptom(self) -> None:
        """A target's status said ``by_me``: the tracker may have started hiding its last seen."""
        if time.monotonic() - self._last_check >= self.symptom_spacing:
            self.wake.set()

    async def run(self, client: TelegramClient, connected: asyncio.Event) -> None:
        """Check at once, then whenever due; never returns."""
        while True:
            await connected.wait()
            self.wake.clear()
            delay = self.interval if await self.check_once(client) else RETRY_AFTER
            await wait_event(self.wake, delay)

    async def check_once(self, client: TelegramClient) -> bool:
        """One check (with the fix when a request asked for it); False when it could not run."""
        self._last_check = time.monotonic()
        try:
            pending = await self.control.pending_privacy_check()
            seq, fix = pending or (0, False)
            report = await check_last_seen(client, fix=fix)
            await self.control.record_privacy_check(seq, ok=report.ok, fixed=report.fixed, detail=report.detail)
            await self.apply(report)
        except CHECK_ERRORS as exc:
            log.warning("worker_privacy_check_failed", error=repr(exc), retry_in=RETRY_AFTER)
            return False
        except DATABASE_ERRORS as exc:
            log.warning("worker_privacy_check_not_recorded", error=repr(exc), retry_in=RETRY_AFTER)
            return False
        self.checks += 1
        log.info("worker_privacy_checked", ok=report.ok, fixed=report.fixed, fix_requested=fix)
        return True

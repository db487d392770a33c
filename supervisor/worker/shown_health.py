"""What a running worker's heartbeat shows when the tracker itself is fine but the worker is not fully working."""

from __future__ import annotations

import time

from seeonline.health import HealthState
from seeonline_supervisor.worker.call_errors import CallErrors
from seeonline_supervisor.worker.ingest import StatusWriter
from seeonline_supervisor.worker.link import TelegramLink
from seeonline_supervisor.worker.options import WorkerOptions


def transient_health(
    link: TelegramLink, writer: StatusWriter, call_errors: CallErrors, options: WorkerOptions
) -> tuple[HealthState, str | None] | None:
    """Telegram lost (connecting, then unreachable), status writes failing, or a resync not answered; else None."""
    now = time.monotonic()
    if link.lost_at is not None:
        lost_long = now - link.lost_at >= options.unreachable_after
        return (HealthState.TELEGRAM_UNREACHABLE if lost_long else HealthState.CONNECTING), link.error
    if writer.failing_since is not None and now - writer.failing_since >= options.writer_failing_after:
        return HealthState.WRITER_FAILING, f"status writes failing: {writer.last_error}"
    wanted = link.resync_wanted_since
    if wanted is not None and now - wanted >= options.resync_stuck_after:
        return HealthState.RESYNC_STUCK, call_errors.latest() or "contacts.getStatuses not answered"
    return None

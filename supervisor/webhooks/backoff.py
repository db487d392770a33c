"""When a failing webhook is tried again: 10 s, 1 min, 5 min, 30 min, then hourly; disabled after 24 h."""

from __future__ import annotations

import datetime

FIRST_DELAYS = (10.0, 60.0, 300.0, 1800.0)
THEN_EVERY = 3600.0
GIVE_UP_AFTER = datetime.timedelta(hours=24)


def retry_delay(failures: int, scale: float = 1.0) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (1-based)."""
    base = FIRST_DELAYS[failures - 1] if failures <= len(FIRST_DELAYS) else THEN_EVERY
    return base * scale


def gives_up(failing_since: datetime.datetime, now: datetime.datetime, scale: float = 1.0) -> bool:
    """True once a webhook has failed for longer than it is retried."""
    return now - failing_since >= GIVE_UP_AFTER * scale

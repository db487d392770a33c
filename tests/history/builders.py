"""Builds a tracked user's recorded facts straight in SQL: statuses, watches, uptimes, visibility changes."""

from __future__ import annotations

import datetime
import itertools
import zoneinfo
from dataclasses import dataclass
from typing import Any

_numbers = itertools.count(1)
UTC = datetime.UTC
FAR_AHEAD = datetime.datetime(2100, 1, 1, tzinfo=UTC)


def local(tz: str, text: str) -> datetime.datetime:
    """``2026-03-29 01:30`` in ``tz`` as an aware instant (the first of an ambiguous pair unless ``fold=1`` given)."""
    fold = 0
    if text.endswith("#2"):
        text, fold = text[:-2].strip(), 1
    naive = datetime.datetime.fromisoformat(text)
    return naive.replace(tzinfo=zoneinfo.ZoneInfo(tz), fold=fold).astimezone(UTC)


@dataclass
class Subject:
    """A tracked user, its target and its bot user."""

    id: int
    target_id: int
    owner_id: int


async def owner(db: Any, tz: str = "UTC", theme: str = "light") -> int:
    """A bot user in ``tz``."""
    row_id: int = await db.fetchval(
        "INSERT INTO telegram_users (telegram_id, timezone, theme) VALUES ($1, $2, $3) RETURNING id",
        900_000 + next(_numbers),
        tz,
        theme,
    )
    return row_id


async def subject(
    db: Any, owner_id: int, since: datetime.datetime, *, watched_by: int | None = 1, up: bool = True
) -> Subject:
    """A tracked user created at ``since``; its target watched (and its tracker up) from then on unless told not."""
    name = f"history_{next(_numbers):05d}"
    target_id = await db.fetchval(
        "INSERT INTO targets (username, created_at) VALUES ($1, $2) RETURNING id", name, since
    )
    tracked_id = await db.fetchval(
        "INSERT INTO tracked_users (telegram_user_id, target_id, username, created_at) VALUES ($1, $2, $3, $4)"
        " RETURNING id",
        owner_id,
        target_id,
        name,
        since,
    )
    if watched_by is not None:
        await watch(db, target_id, watched_by, since)
        if up:
            await uptime(db, watched_by, since, None)
    return Subject(tracked_id, target_id, owner_id)


async def watch(
    db: Any, target_id: int, tracker_id: int, since: datetime.datetime, until: datetime.datetime | None = None
) -> None:
    """A period a tracker watched the target."""
    await db.execute(
        "INSERT INTO target_watches (target_id, tracker_account_id, started_at, ended_at) VALUES ($1, $2, $3, $4)",
        target_id,
        tracker_id,
        since,
        until,
    )


async def uptime(db: Any, tracker_id: int, since: datetime.datetime, until: datetime.datetime | None) -> None:
    """A period the tracker's worker was connected (``until`` None: throughout, recorded as ending far ahead)."""
    seen, ended = (until, True) if until is not None else (FAR_AHEAD, True)
    await db.execute(
        "INSERT INTO tracker_uptimes (tracker_account_id, started_at, seen_at, ended) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (tracker_account_id, started_at) DO NOTHING",
        tracker_id,
        since,
        seen,
        ended,
    )


async def statuses(db: Any, tracked_id: int, rows: list[tuple[datetime.datetime, bool, str | None]]) -> None:
    """Status rows ``(at, is_online, source)``."""
    await db.executemany(
        "INSERT INTO online_statuses (tracked_user_id, created_at, is_online, source) VALUES ($1, $2, $3, $4)",
        [(tracked_id, at, online, source) for at, online, source in rows],
    )


async def visibility(db: Any, target_id: int, at: datetime.datetime, value: str) -> None:
    """A recorded visibility change."""
    await db.execute(
        "INSERT INTO target_visibility_changes (target_id, changed_at, visibility) VALUES ($1, $2, $3)",
        target_id,
        at,
        value,
    )


def instant(text: str) -> datetime.datetime:
    """An API timestamp."""
    return datetime.datetime.fromisoformat(text)

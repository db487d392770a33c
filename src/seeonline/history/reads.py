"""Runs the history statements: one round trip each, JSON rendered by Postgres, errors mapped to 400/404."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from seeonline.api.errors import ApiError, does_not_exist, invalid, not_found
from seeonline.api.listing import open_stream
from seeonline.database.pool import StreamSource
from seeonline.history import resources
from seeonline.history.daily import DAILY, TIMELINE
from seeonline.history.params import DayQuery, RangeQuery, SessionQuery, invalid_range

T = TypeVar("T")
SUBJECT = "TrackedUser"
# What the SQL found wrong with a well-formed request (a window filled in by defaults, a row it names).
PROBLEMS: dict[str, Callable[[], ApiError]] = {
    "date_from": lambda: invalid_range("date_from", "the range must run forwards and cover at most 366 days"),
    "other_id": lambda: does_not_exist("other_id", "no tracked user with this id belongs to the same bot user"),
}


@dataclass(frozen=True)
class DayView:
    """A timeline as JSON, with what the chart needs besides it."""

    body: str
    username: str
    theme: str
    past: bool  # the day has ended: its chart can be cached for long


@contextmanager
def zone_errors() -> Any:
    """A zone that Python knows but this Postgres does not is still the client's ``tz``."""
    try:
        yield
    except asyncpg.InvalidParameterValueError as exc:
        if "time zone" in str(exc):
            raise invalid("tz", "this time zone is not known to the database") from None
        raise


def gap(seconds: int) -> datetime.timedelta:
    """Seconds as the interval the SQL takes."""
    return datetime.timedelta(seconds=seconds)


class HistoryReader:
    """The history reads of one app, over its pool (and its stream connections for CSV)."""

    def __init__(self, pool: asyncpg.Pool, streams: StreamSource) -> None:
        self.pool = pool
        self.streams = streams

    async def _run(self, call: Callable[[], Awaitable[T]]) -> T:
        with zone_errors():
            return await call()

    async def _answer(self, sql: str, *args: Any) -> str:
        row = await self._run(lambda: self.pool.fetchrow(sql, *args))
        if row is None:
            raise not_found(SUBJECT)
        if row["problem"] is not None:
            raise PROBLEMS[row["problem"]]()
        body: str = row["body"]
        return body

    async def day(self, tracked_user_id: int, query: DayQuery) -> DayView:
        """The day's timeline (segments cover the day, up to now for today)."""
        sql = TIMELINE
        row = await self._run(
            lambda: self.pool.fetchrow(sql, tracked_user_id, query.tz, query.day, resources.UPTIME_STALE)
        )
        if row is None:
            raise not_found(SUBJECT)
        return DayView(row["body"], row["username"], row["theme"], row["past"])

    async def daily(self, tracked_user_id: int, query: RangeQuery) -> str:
        """Totals per local day."""
        return await self._answer(
            DAILY,
            tracked_user_id,
            query.tz,
            query.first,
            query.last,
            resources.UPTIME_STALE,
            gap(query.merge_gap_s),
        )

    async def heatmap(self, tracked_user_id: int, query: RangeQuery) -> str:
        """Online and known seconds per local weekday and hour."""
        return await self._answer(
            resources.HEATMAP, tracked_user_id, query.tz, query.first, query.last, resources.UPTIME_STALE
        )

    async def overlap(self, tracked_user_id: int, other_id: int, query: RangeQuery) -> str:
        """When two targets of one bot user were online together."""
        return await self._answer(
            resources.OVERLAP,
            tracked_user_id,
            query.tz,
            query.first,
            query.last,
            other_id,
            resources.UPTIME_STALE,
            gap(query.merge_gap_s),
        )

    async def sessions(self, tracked_user_id: int, query: SessionQuery) -> tuple[str, bool]:
        """One page of sessions as a JSON array, and whether another page follows."""
        args = (*self._session_args(tracked_user_id, query), query.offset, query.limit or None)
        row = await self._run(lambda: self.pool.fetchrow(resources.SESSIONS_PAGE, *args))
        if row is None or not row["found_subject"]:
            raise not_found(SUBJECT)
        return row["body"], row["more"]

    def _session_args(self, tracked_user_id: int, query: SessionQuery) -> tuple[Any, ...]:
        return (
            tracked_user_id,
            query.tz,
            query.after,
            query.before,
            resources.UPTIME_STALE,
            gap(query.merge_gap_s),
            gap(query.min_duration_s),
        )

    async def sessions_csv(self, tracked_user_id: int, query: SessionQuery) -> AsyncIterator[bytes]:
        """The sessions as CSV (times in the zone), streamed; checks the subject before the stream starts."""
        exists = await self._run(lambda: self.pool.fetchval(resources.SUBJECT_EXISTS, tracked_user_id, query.tz))
        if not exists:
            raise not_found(SUBJECT)
        return await open_stream(
            self.streams,
            resources.SESSIONS_CSV,
            self._session_args(tracked_user_id, query),
            head=resources.SESSIONS_CSV_HEADER,
            separator="",
            tail="",
        )

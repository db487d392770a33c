"""The shapes of the history answers (rendered by Postgres; these Structs document them in OpenAPI)."""

from __future__ import annotations

import datetime
from typing import Literal

import msgspec

from seeonline.api.bodies import Instant
from seeonline.choices import UnknownReason

State = Literal["online", "offline", "unknown"]


class SessionOut(msgspec.Struct):
    """An online session; ``ended_at`` is null while it runs on past the window (or now)."""

    started_at: Instant
    ended_at: Instant | None
    duration_s: float
    start_exact: bool
    end_exact: bool


class SegmentOut(msgspec.Struct):
    """A stretch of one state; ``reason`` says why time is unknown."""

    state: State
    started_at: Instant
    ended_at: Instant
    reason: UnknownReason | None


class TimelineOut(msgspec.Struct):
    """One local day, covered by its segments (today: up to now)."""

    date: datetime.date
    tz: str
    online_s: float
    offline_s: float
    unknown_s: float
    segments: list[SegmentOut]


class DayTotalsOut(msgspec.Struct):
    """One local day's totals."""

    date: datetime.date
    online_s: float
    known_s: float
    sessions: int
    longest_s: float
    first_online_at: Instant | None
    last_offline_at: Instant | None


class HeatmapCellOut(msgspec.Struct):
    """One local weekday (0 = Monday) and hour, summed over the range."""

    weekday: int
    hour: int
    online_s: float
    known_s: float


class HeatmapOut(msgspec.Struct):
    """7 x 24 cells."""

    cells: list[HeatmapCellOut]


class IntervalOut(msgspec.Struct):
    """A stretch of time."""

    started_at: Instant
    ended_at: Instant


class DayOverlapOut(msgspec.Struct):
    """Time both were online on one local day."""

    date: datetime.date
    overlap_s: float


class OverlapOut(msgspec.Struct):
    """When two targets of one bot user were online at once, and how long both were known."""

    overlap_s: float
    known_both_s: float
    days: list[DayOverlapOut]
    intervals: list[IntervalOut]

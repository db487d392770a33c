"""Query values of the history routes, each parsed once and refused with a 400 that names it."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass

from seeonline.api.errors import ApiError, invalid
from seeonline.api.params import parse_datetime, parse_int
from seeonline.bot_users.schemas import check_timezone
from seeonline.choices import Theme

MAX_DAYS = 366
DEFAULT_MERGE_GAP_S = 60
MAX_MERGE_GAP_S = 86_400
CHART_WIDTHS = (400, 3200)
DEFAULT_CHART_WIDTH = 1600


def parse_tz(raw: str | None) -> str | None:
    """An IANA zone name (None: the bot user's own)."""
    if raw in (None, ""):
        return None
    try:
        return check_timezone(raw)
    except ApiError:
        raise invalid("tz", f"{raw!r} is not a known IANA time zone") from None


def parse_date(field: str, raw: str | None) -> datetime.date | None:
    """A calendar date ``YYYY-MM-DD`` (None when absent)."""
    if raw in (None, ""):
        return None
    try:
        value = datetime.date.fromisoformat(raw.strip())
    except ValueError:
        raise invalid(field, f"a date YYYY-MM-DD is required, got {raw!r}") from None
    if value.year < 2 or value.year > 9998:
        raise invalid(field, "date out of range")
    return value


def parse_seconds(field: str, raw: str | None, default: int, maximum: int) -> int:
    """A whole number of seconds in ``0..maximum``."""
    if raw in (None, ""):
        return default
    value = parse_int(field, raw)
    if not 0 <= value <= maximum:
        raise invalid(field, f"must be between 0 and {maximum}")
    return value


@dataclass(frozen=True)
class DayQuery:
    """``date`` and ``tz``: one local day (None: today, in the bot user's zone)."""

    day: datetime.date | None
    tz: str | None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> DayQuery:
        """From the query string."""
        return cls(parse_date("date", query.get("date")), parse_tz(query.get("tz")))


@dataclass(frozen=True)
class RangeQuery:
    """``date_from``..``date_to`` (inclusive, at most 366 days), ``tz`` and ``merge_gap_s``."""

    first: datetime.date | None
    last: datetime.date | None
    tz: str | None
    merge_gap_s: int

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> RangeQuery:
        """From the query string; a missing end is filled by SQL (today; 30 days)."""
        first = parse_date("date_from", query.get("date_from"))
        last = parse_date("date_to", query.get("date_to"))
        if first is not None and last is not None:
            if last < first:
                raise invalid("date_to", "must not be before date_from")
            if (last - first).days + 1 > MAX_DAYS:
                raise invalid("date_to", f"at most {MAX_DAYS} days from date_from")
        gap = parse_seconds("merge_gap_s", query.get("merge_gap_s"), DEFAULT_MERGE_GAP_S, MAX_MERGE_GAP_S)
        return cls(first, last, parse_tz(query.get("tz")), gap)


@dataclass(frozen=True)
class SessionQuery:
    """The session list's window, merge gap, minimum duration and page."""

    after: datetime.datetime | None
    before: datetime.datetime | None
    merge_gap_s: int
    min_duration_s: int
    limit: int
    offset: int
    tz: str | None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> SessionQuery:
        """From the query string."""
        after = parse_datetime("created_at_after", query["created_at_after"]) if query.get("created_at_after") else None
        before = (
            parse_datetime("created_at_before", query["created_at_before"]) if query.get("created_at_before") else None
        )
        gap = parse_seconds("merge_gap_s", query.get("merge_gap_s"), DEFAULT_MERGE_GAP_S, MAX_MERGE_GAP_S)
        shortest = parse_seconds("min_duration_s", query.get("min_duration_s"), 0, 10 * 366 * 86_400)
        limit = parse_seconds("limit", query.get("limit"), 0, 1_000_000)
        offset = parse_seconds("offset", query.get("offset"), 0, 2**31 - 1)
        return cls(after, before, gap, shortest, limit, offset, parse_tz(query.get("tz")))


@dataclass(frozen=True)
class ChartQuery:
    """The chart's day, theme (None: the bot user's), format and width in pixels."""

    day: DayQuery
    theme: Theme | None
    format: str
    width: int

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> ChartQuery:
        """From the query string."""
        theme_raw = query.get("theme") or None
        if theme_raw is not None and theme_raw not in tuple(Theme):
            raise invalid("theme", f"{theme_raw!r} is not one of {', '.join(Theme)}")
        image_format = query.get("format") or "png"
        if image_format not in ("png", "svg"):
            raise invalid("format", f"{image_format!r} is not one of png, svg")
        low, high = CHART_WIDTHS
        width = parse_seconds("width", query.get("width"), DEFAULT_CHART_WIDTH, high)
        if width < low:
            raise invalid("width", f"must be between {low} and {high}")
        return cls(DayQuery.parse(query), Theme(theme_raw) if theme_raw else None, image_format, width)


def wants_csv(query: Mapping[str, str], accept: str | None) -> bool:
    """``format=csv`` or ``Accept: text/csv`` (``format=json`` keeps JSON)."""
    chosen = query.get("format") or ""
    if chosen not in ("", "json", "csv"):
        raise invalid("format", f"{chosen!r} is not one of json, csv")
    return chosen == "csv" or (chosen == "" and "text/csv" in (accept or ""))

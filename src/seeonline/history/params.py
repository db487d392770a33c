"""Query values of the history routes, each parsed once and refused with a 400 that names it."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema

from seeonline.api.errors import ApiError, invalid
from seeonline.api.params import Rule, choice_parser, int_between, parse_datetime
from seeonline.bot_users.schemas import THEMES, TIME_ZONES, check_timezone
from seeonline.choices import Theme

MAX_DAYS = 366
DEFAULT_MERGE_GAP_S = 60
MAX_MERGE_GAP_S = 86_400
CHART_WIDTHS = (400, 3200)
DEFAULT_CHART_WIDTH = 1600
# A day is refused on the first and last year a date can have: in a zone west or east of UTC its hours
# would fall outside the representable range.
FIRST_YEAR, LAST_YEAR = datetime.date.min.year + 1, datetime.date.max.year - 1


T = TypeVar("T")
D = TypeVar("D")


def invalid_range(field: str, detail: str) -> ApiError:
    """400 ``invalid_range``: two well-formed dates that do not make a window (backwards, or too long)."""
    return ApiError(400, f"{field}: {detail}", code="invalid_range", field=field)


def _time_zone(_field: str, raw: str) -> str:
    try:
        return check_timezone(raw)
    except ApiError:
        raise invalid("tz", f"{raw!r} is not a known IANA time zone") from None


def _date(field: str, raw: str) -> datetime.date:
    try:
        value = datetime.date.fromisoformat(raw.strip())
    except ValueError:
        raise invalid(field, f"a date YYYY-MM-DD is required, got {raw!r}") from None
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise invalid(field, "date out of range")
    return value


TIME_ZONE = Rule(_time_zone, Schema(type=OpenAPIType.STRING, enum=list(TIME_ZONES))).documented(
    description="An IANA time zone (default: the bot user's)"
)
DATE = Rule(
    _date,
    Schema(
        type=OpenAPIType.STRING,
        format=OpenAPIFormat.DATE,
        pattern=f"^(?!{FIRST_YEAR - 1:04d}-|{LAST_YEAR + 1:04d}-)",
        examples=["2026-01-01"],
    ),
)
MERGE_GAP_S = int_between(0, MAX_MERGE_GAP_S).documented(
    default=DEFAULT_MERGE_GAP_S, description="Offline gaps up to this many seconds join two sessions"
)
MIN_DURATION_S = int_between(0, 10 * 366 * 86_400).documented(default=0)
SESSION_LIMIT = int_between(0, 1_000_000).documented(default=0, description="Sessions per page (0: all)")
SESSION_OFFSET = int_between(0, 2**31 - 1).documented(default=0)
CHART_THEME = choice_parser(*THEMES).documented(description="Default: the bot user's")
IMAGE_FORMAT = choice_parser("png", "svg").documented(default="png")
CHART_WIDTH = int_between(*CHART_WIDTHS).documented(default=DEFAULT_CHART_WIDTH, description="Pixels")
EXPORT_FORMAT = choice_parser("json", "csv").documented(description="csv: CSV instead of JSON (or Accept: text/csv)")

# The query parameters of each history route, as its parser reads them.
DAY: dict[str, Rule[Any]] = {"date": DATE.documented(description="The local day (default: today)"), "tz": TIME_ZONE}
RANGE: dict[str, Rule[Any]] = {
    "date_from": DATE.documented(description=f"First local day (default: 30 days before date_to); at most {MAX_DAYS}"),
    "date_to": DATE.documented(description="Last local day, inclusive (default: today)"),
    "tz": TIME_ZONE,
    "merge_gap_s": MERGE_GAP_S,
}
SESSIONS: dict[str, Rule[Any]] = {
    "created_at_after": parse_datetime,
    "created_at_before": parse_datetime,
    "merge_gap_s": MERGE_GAP_S,
    "min_duration_s": MIN_DURATION_S,
    "limit": SESSION_LIMIT,
    "offset": SESSION_OFFSET,
    "format": EXPORT_FORMAT,
    "tz": TIME_ZONE,
}
CHART: dict[str, Rule[Any]] = {"theme": CHART_THEME, "format": IMAGE_FORMAT, "width": CHART_WIDTH, **DAY}


def given(query: Mapping[str, str], name: str, rule: Rule[T], default: D) -> T | D:
    """``query[name]`` parsed by ``rule``, or ``default`` when it is absent or empty."""
    raw = query.get(name)
    return default if raw in (None, "") else rule(name, raw)


def parse_tz(raw: str | None) -> str | None:
    """An IANA zone name (None: the bot user's own)."""
    return TIME_ZONE("tz", raw) if raw else None


@dataclass(frozen=True)
class DayQuery:
    """``date`` and ``tz``: one local day (None: today, in the bot user's zone)."""

    day: datetime.date | None
    tz: str | None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> DayQuery:
        """From the query string."""
        return cls(given(query, "date", DATE, None), given(query, "tz", TIME_ZONE, None))


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
        first = given(query, "date_from", DATE, None)
        last = given(query, "date_to", DATE, None)
        # Across two parameters, so no schema can say it: the document describes it, and the refusal has its code.
        if first is not None and last is not None:
            if last < first:
                raise invalid_range("date_to", "must not be before date_from")
            if (last - first).days + 1 > MAX_DAYS:
                raise invalid_range("date_to", f"at most {MAX_DAYS} days from date_from")
        gap = given(query, "merge_gap_s", MERGE_GAP_S, DEFAULT_MERGE_GAP_S)
        return cls(first, last, given(query, "tz", TIME_ZONE, None), gap)


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
        return cls(
            given(query, "created_at_after", parse_datetime, None),
            given(query, "created_at_before", parse_datetime, None),
            given(query, "merge_gap_s", MERGE_GAP_S, DEFAULT_MERGE_GAP_S),
            given(query, "min_duration_s", MIN_DURATION_S, 0),
            given(query, "limit", SESSION_LIMIT, 0),
            given(query, "offset", SESSION_OFFSET, 0),
            given(query, "tz", TIME_ZONE, None),
        )


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
        theme = given(query, "theme", CHART_THEME, None)
        return cls(
            DayQuery.parse(query),
            Theme(theme) if theme else None,
            given(query, "format", IMAGE_FORMAT, "png"),
            given(query, "width", CHART_WIDTH, DEFAULT_CHART_WIDTH),
        )


def wants_csv(query: Mapping[str, str], accept: str | None) -> bool:
    """``format=csv`` or ``Accept: text/csv`` (``format=json`` keeps JSON)."""
    chosen = given(query, "format", EXPORT_FORMAT, "")
    return chosen == "csv" or (chosen == "" and "text/csv" in (accept or ""))

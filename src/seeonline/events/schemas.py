"""The query of ``GET /events/``, parsed into a stream request (each bad value a 400 naming it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar.openapi.spec import OpenAPIType, Schema

from seeonline.api.errors import invalid
from seeonline.api.params import Rule, parse_bool, parse_int, parse_non_negative
from seeonline.choices import EventType
from seeonline.events.log import EventFilter
from seeonline.events.stream import StreamRequest

EVENT_TYPES: tuple[str, ...] = tuple(EventType)
DEFAULT_MAX_AGE_S = 600.0
MAX_AGE_LIMIT = 10 * 365 * 86400.0


def _types(field: str, raw: str) -> frozenset[str]:
    types = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(types - set(EVENT_TYPES))
    if unknown or not types:
        raise invalid(field, f"choose from {', '.join(EVENT_TYPES)} (comma-separated)")
    return types


parse_types = Rule(
    _types,
    Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING, enum=list(EVENT_TYPES)), min_items=1),
)
"""A comma-separated list of event types."""


def _max_age(field: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise invalid(field, f"a number of seconds is required, got {raw!r}") from None
    if not 0 <= value <= MAX_AGE_LIMIT:  # also refuses nan
        raise invalid(field, f"must be between 0 and {MAX_AGE_LIMIT:.0f}")
    return value


parse_max_age = Rule(_max_age, Schema(type=OpenAPIType.NUMBER, minimum=0, maximum=MAX_AGE_LIMIT))
"""Seconds, 0 or more."""

# The query of GET /events/, as ``stream_request`` reads it.
QUERY: dict[str, Rule[Any]] = {
    "telegram_user_id": parse_int.documented(description="only this bot user's subscriptions"),
    "tracked_user_id": parse_int.documented(description="only this subscription"),
    "types": parse_types.documented(description="status, visibility (default status)"),
    "notify_only": parse_bool.documented(description="apply each subscription's notify_mode and mute_until"),
    "after_id": parse_non_negative.documented(description="resume after this event id (the Last-Event-ID header wins)"),
    "max_age_s": parse_max_age.documented(
        default=DEFAULT_MAX_AGE_S, description="backlog older than this many seconds becomes one `skipped` event"
    ),
}


def _given(query: Mapping[str, str], name: str) -> str | None:
    raw = query.get(name)
    return raw if raw not in (None, "") else None


def stream_request(query: Mapping[str, str], last_event_id: str | None) -> StreamRequest:
    """The stream a client asked for; ``Last-Event-ID`` (a reconnect) wins over ``after_id``."""
    raw = {name: _given(query, name) for name in ("telegram_user_id", "tracked_user_id", "types", "notify_only")}
    event_filter = EventFilter(
        types=parse_types("types", raw["types"]) if raw["types"] else frozenset({EventType.STATUS}),
        telegram_user_id=parse_int("telegram_user_id", raw["telegram_user_id"]) if raw["telegram_user_id"] else None,
        tracked_user_id=parse_int("tracked_user_id", raw["tracked_user_id"]) if raw["tracked_user_id"] else None,
        notify_only=parse_bool("notify_only", raw["notify_only"]) if raw["notify_only"] else False,
    )
    after_id: int | None = None
    if last_event_id not in (None, ""):
        after_id = parse_non_negative("Last-Event-ID", last_event_id)
    elif (after := _given(query, "after_id")) is not None:
        after_id = parse_non_negative("after_id", after)
    max_age = _given(query, "max_age_s")
    return StreamRequest(
        filter=event_filter,
        after_id=after_id,
        max_age_s=parse_max_age("max_age_s", max_age) if max_age is not None else DEFAULT_MAX_AGE_S,
    )

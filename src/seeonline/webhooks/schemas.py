"""Request and response bodies for /webhooks."""

from __future__ import annotations

from typing import Annotated

import msgspec

from seeonline.api.bodies import Id, Instant, documented
from seeonline.api.params import NO_NUL
from seeonline.choices import EventType, WebhookState
from seeonline.webhooks.addresses import MAX_URL_LENGTH, URL_PATTERN

# msgspec bounds the text; ``split_url`` judges the URL, whose accepted shape the document shows.
Url = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=MAX_URL_LENGTH, pattern=NO_NUL, extra_json_schema=documented(pattern=URL_PATTERN)
    ),
]
EventTypes = Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=len(EventType))]
WEBHOOK_STATES: tuple[str, ...] = tuple(WebhookState)


class WebhookCreate(msgspec.Struct):
    """POST /webhooks/: where to send, which events, whose, and whether preferences apply."""

    url: Url
    events: EventTypes = msgspec.field(default_factory=lambda: [EventType.STATUS])
    telegram_user_id: Id | None = None
    notify_only: bool = False


class WebhookUpdate(msgspec.Struct):
    """PATCH /webhooks/{id}/: every field optional; ``state: active`` re-enables a disabled webhook."""

    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: EventTypes | msgspec.UnsetType = msgspec.UNSET
    telegram_user_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    notify_only: bool | msgspec.UnsetType = msgspec.UNSET
    state: WebhookState | msgspec.UnsetType = msgspec.UNSET


class WebhookOut(msgspec.Struct):
    """A webhook as responses show it (the secret only in the answer to its creation)."""

    id: int
    url: str
    events: list[EventType]
    telegram_user_id: int | None
    notify_only: bool
    state: WebhookState
    cursor: int  # the last event id the endpoint acknowledged
    attempts: int  # failed deliveries in a row
    next_attempt_at: Instant | None
    last_error: str | None
    last_delivered_at: Instant | None
    created_at: Instant
    updated_at: Instant
    secret: str | None = None

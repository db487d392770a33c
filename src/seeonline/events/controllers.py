"""HTTP route for GET /events: the live event stream (Server-Sent Events)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent

from seeonline.api.auth import API_KEY_HEADER
from seeonline.api.handler_types import AnyRequest, Pool
from seeonline.api.openapi import query_operation
from seeonline.events.hub import EventHub
from seeonline.events.schemas import stream_request
from seeonline.events.stream import EventStream

EventHubDependency = NamedDependency[EventHub]

QUERY = {
    "telegram_user_id": "only this bot user's subscriptions",
    "tracked_user_id": "only this subscription",
    "types": "comma list of status, visibility (default status)",
    "notify_only": "apply each subscription's notify_mode and mute_until",
    "after_id": "resume after this event id (the Last-Event-ID header wins)",
    "max_age_s": "backlog older than this many seconds (default 600) becomes one `skipped` event",
}


class EventController(Controller):
    """Recorded transitions pushed as they commit, resumable by event id."""

    path = "/events"
    tags = ["events"]

    @get("/", operation_class=query_operation(*QUERY, described=QUERY))
    async def stream_events(self, request: AnyRequest, pool: Pool, event_hub: EventHubDependency) -> ServerSentEvent:
        """Server-Sent Events: `status` (and `visibility`) events, `reset`, `skipped`, and a ping comment every 15 s."""
        wanted = stream_request(request.query_params, request.headers.get("last-event-id"))
        subscriber = event_hub.subscribe(request.headers.get(API_KEY_HEADER, ""), wanted.filter)
        stream = EventStream(event_hub, pool, wanted, subscriber)
        done = BackgroundTask(event_hub.unsubscribe, subscriber)
        return ServerSentEvent(stream.messages(), background=done)

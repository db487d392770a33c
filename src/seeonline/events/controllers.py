"""HTTP route for GET /events: the live event stream (Server-Sent Events)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent

from seeonline.api.auth import API_KEY_HEADER
from seeonline.api.handler_types import AnyRequest, Pool
from seeonline.api.openapi import query_operation, returns
from seeonline.events.hub import STREAMS_PER_KEY, EventHub
from seeonline.events.schemas import QUERY, stream_request
from seeonline.events.stream import EventStream

EventHubDependency = NamedDependency[EventHub]


class EventController(Controller):
    """Recorded transitions pushed as they commit, resumable by event id."""

    path = "/events"
    tags = ["events"]

    @get(
        "/",
        operation_class=query_operation(QUERY),
        media_type="text/event-stream",
        responses=returns(None, refusals={429: f"`too_many_streams`: {STREAMS_PER_KEY} streams are open on this key"}),
    )
    async def stream_events(self, request: AnyRequest, pool: Pool, event_hub: EventHubDependency) -> ServerSentEvent:
        """Server-Sent Events: `status` (and `visibility`) events, `reset`, `skipped`, and a ping comment every 15 s."""
        wanted = stream_request(request.query_params, request.headers.get("last-event-id"))
        subscriber = event_hub.subscribe(request.headers.get(API_KEY_HEADER, ""), wanted.filter)
        stream = EventStream(event_hub, pool, wanted, subscriber)
        done = BackgroundTask(event_hub.unsubscribe, subscriber)
        return ServerSentEvent(stream.messages(), background=done)

"""What handlers need from the running app: the pool, the services, the query flags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
from litestar import Request

from seeonline.api.database import StreamSource
from seeonline.api.params import parse_bool

if TYPE_CHECKING:
    from seeonline.events.hub import EventHub
    from seeonline.logins.service import LoginService
    from seeonline.people.service import PeopleService
    from seeonline.statuses.service import StatusService
    from seeonline.trackers.service import TrackerService
    from seeonline.webhooks.service import WebhookService

AnyRequest = Request[Any, Any, Any]


@dataclass(frozen=True)
class Services:
    """The services of one running app, built at start-up over its pool."""

    pool: asyncpg.Pool
    streams: StreamSource
    trackers: TrackerService
    people: PeopleService
    statuses: StatusService
    logins: LoginService
    events: EventHub
    webhooks: WebhookService


def services(request: AnyRequest) -> Services:
    """The running app's services."""
    found: Services = request.app.state.services
    return found


def query_flag(request: AnyRequest, name: str) -> bool:
    """An optional boolean query parameter (``?name=true``); false when absent."""
    raw = request.query_params.get(name)
    return parse_bool(name, raw) if raw not in (None, "") else False


def force_flag(request: AnyRequest) -> bool:
    """``?force=true`` on deletes that would leave targets without a tracker."""
    return query_flag(request, "force")

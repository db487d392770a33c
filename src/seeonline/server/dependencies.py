"""The services handlers receive by parameter name (Litestar dependency injection), built once per app."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import asyncpg
from litestar.datastructures import State
from litestar.di import Provide

from seeonline.bot_users.service import BotUserService
from seeonline.database.pool import StreamSource
from seeonline.events.hub import EventHub
from seeonline.history.reads import HistoryReader
from seeonline.logins.service import LoginService
from seeonline.statuses.service import StatusService
from seeonline.trackers.service import TrackerService
from seeonline.webhooks.service import WebhookService


@dataclass(frozen=True)
class Services:
    """The services of one running app, built at start-up over its pool; each field is a dependency name.

    No name may also be a field of a request body: Litestar reports a body validation error on a key that
    names a dependency as a 500 (``tests/api/test_smoke.py`` checks).
    """

    pool: asyncpg.Pool
    streams: StreamSource
    trackers: TrackerService
    bot_users: BotUserService
    statuses: StatusService
    logins: LoginService
    history: HistoryReader
    event_hub: EventHub
    webhooks: WebhookService

    @classmethod
    def build(
        cls,
        pool: asyncpg.Pool,
        streams: StreamSource,
        secret_key: str,
        *,
        event_hub: EventHub,
        allow_private_webhooks: bool,
    ) -> Services:
        """Every service over ``pool``."""
        return cls(
            pool=pool,
            streams=streams,
            trackers=TrackerService(pool, secret_key),
            bot_users=BotUserService(pool),
            statuses=StatusService(pool),
            logins=LoginService(pool, secret_key),
            history=HistoryReader(pool, streams),
            event_hub=event_hub,
            webhooks=WebhookService(pool, secret_key, allow_private=allow_private_webhooks),
        )


def _from_state(name: str) -> Provide:
    def provide(state: State) -> Any:
        return getattr(state.services, name)

    return Provide(provide, sync_to_thread=False)


def dependencies() -> dict[str, Provide]:
    """One provider per :class:`Services` field, reading the app's services from its state."""
    return {field.name: _from_state(field.name) for field in fields(Services)}

"""The services handlers receive by parameter name (Litestar dependency injection), built once per app."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import asyncpg
from litestar.datastructures import State
from litestar.di import Provide

from seeonline.bot_users.service import BotUserService
from seeonline.database.pool import StreamSource
from seeonline.logins.service import LoginService
from seeonline.statuses.service import StatusService
from seeonline.trackers.service import TrackerService


@dataclass(frozen=True)
class Services:
    """The services of one running app, built at start-up over its pool; each field is a dependency name."""

    pool: asyncpg.Pool
    streams: StreamSource
    trackers: TrackerService
    bot_users: BotUserService
    statuses: StatusService
    logins: LoginService

    @classmethod
    def build(cls, pool: asyncpg.Pool, streams: StreamSource, secret_key: str) -> Services:
        """Every service over ``pool``."""
        return cls(
            pool=pool,
            streams=streams,
            trackers=TrackerService(pool, secret_key),
            bot_users=BotUserService(pool),
            statuses=StatusService(pool),
            logins=LoginService(pool, secret_key),
        )


def _from_state(name: str) -> Provide:
    def provide(state: State) -> Any:
        return getattr(state.services, name)

    return Provide(provide, sync_to_thread=False)


def dependencies() -> dict[str, Provide]:
    """One provider per :class:`Services` field, reading the app's services from its state."""
    return {field.name: _from_state(field.name) for field in fields(Services)}

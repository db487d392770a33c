"""What every sandbox RPC handler stands on: the call's context, errors, registration, shared lookups.

Handler modules (``handlers_*``) import only this module (and the world model); the server imports the
handler modules, whose ``@handles`` fill ``ROUTES``, and hands the routes to the dispatcher.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from telethon.tl import types

from seeonline.sandbox.faults import error_code

if TYPE_CHECKING:
    from seeonline.sandbox.server import SandboxServer
    from seeonline.sandbox.session import Connection
    from seeonline.sandbox.world import Account, SandboxUser, World


class RpcError(Exception):
    """Raised by a handler to answer with ``rpc_error``."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = error_code(message) if code is None else code


@dataclass
class RpcContext:
    """What a handler may use: the world, the calling connection and its logged-in account."""

    server: SandboxServer
    connection: Connection
    account: Account | None

    @property
    def world(self) -> World:
        """The sandbox world."""
        return self.server.world

    @property
    def me(self) -> Account:
        """The logged-in account; handlers registered with ``auth=True`` always have one."""
        if self.account is None:
            raise RpcError("AUTH_KEY_UNREGISTERED", 401)
        return self.account


Handler = Callable[[RpcContext, Any], Any]


@dataclass(frozen=True)
class Route:
    """A handler and whether it needs a logged-in account."""

    handler: Handler
    auth: bool


ROUTES: dict[type, Route] = {}


def handles(request_type: type, *, auth: bool = True) -> Callable[[Handler], Handler]:
    """Register a handler for a Telethon request class."""

    def register(handler: Handler) -> Handler:
        ROUTES[request_type] = Route(handler, auth)
        return handler

    return register


def now_utc() -> datetime:
    """The current time, whole seconds, UTC (TL dates have second precision)."""
    return datetime.fromtimestamp(int(time.time()), tz=UTC)


def input_user(ctx: RpcContext, peer: Any, error: str = "USER_ID_INVALID") -> SandboxUser:
    """The user an InputUser/InputPeer names, checking the access hash belongs to the calling account."""
    me = ctx.me
    if isinstance(peer, types.InputUserSelf | types.InputPeerSelf):
        return me.user
    if isinstance(peer, types.InputUser | types.InputPeerUser):
        if peer.user_id == me.id:
            return me.user
        if ctx.world.check_access_hash(me.id, peer.user_id, peer.access_hash):
            return ctx.world.users[peer.user_id]
    raise RpcError(error, 400)

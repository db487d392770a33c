"""RPC dispatch: unwrap invokeWithLayer/initConnection, apply faults, log the call, run its handler."""

from __future__ import annotations

import asyncio
import struct
from typing import TYPE_CHECKING, Any

from telethon.tl import functions

from seeonline.logging import get_logger
from seeonline.sandbox.faults import error_code, method_name
from seeonline.sandbox.handler_kit import ROUTES, Route, RpcContext, RpcError

if TYPE_CHECKING:
    from seeonline.sandbox.server import SandboxServer
    from seeonline.sandbox.session import Connection

log = get_logger("seeonline.sandbox.rpc")

_VECTOR = 0x1CB5C415
_BOOL_TRUE = 0x997275B5
_BOOL_FALSE = 0xBC799737


def serialize(result: Any) -> bytes:
    """TL bytes for a handler's result: a TL object, a bool, or a list (a Vector of TL objects)."""
    if isinstance(result, bool):
        return struct.pack("<I", _BOOL_TRUE if result else _BOOL_FALSE)
    if isinstance(result, list):
        return struct.pack("<Ii", _VECTOR, len(result)) + b"".join(serialize(item) for item in result)
    return bytes(result)


class RpcDispatcher:
    """Turns one RPC message into an ``rpc_result`` or ``rpc_error`` on its connection."""

    def __init__(self, server: SandboxServer, routes: dict[type, Route] = ROUTES) -> None:
        self.server = server
        self.routes = routes  # filled by the handler modules' @handles, which the server imports

    def unwrap(self, connection: Connection, request: Any) -> Any:
        """Strip the wrappers Telethon puts around real queries, noting what they say about the connection."""
        while True:
            if isinstance(request, functions.InvokeWithLayerRequest):
                connection.layer = request.layer
            elif isinstance(request, functions.InitConnectionRequest):
                connection.api_id = request.api_id
            elif isinstance(request, functions.InvokeWithoutUpdatesRequest):
                connection.receives_updates = False
            elif not isinstance(request, functions.InvokeAfterMsgRequest | functions.InvokeAfterMsgsRequest):
                return request
            request = request.query

    async def handle(self, connection: Connection, msg_id: int, request: Any) -> None:
        """Answer one RPC message."""
        query = self.unwrap(connection, request)
        method = method_name(query)
        world = self.server.world
        account = world.account_for_key(connection.key_id) if connection.key_id is not None else None
        account_id = None if account is None else account.id
        faults = self.server.faults
        fault = faults.take(method, account_id)
        if fault is not None:
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                faults.record(account_id, method, type(query).__name__, "DROPPED", connection.id)
                connection.close(abort=True)
                return
            if fault.error is not None:
                faults.record(account_id, method, type(query).__name__, fault.error, connection.id)
                connection.send_error(msg_id, fault.code or error_code(fault.error), fault.error)
                return
        error: str | None = None
        try:
            route = self.routes.get(type(query))
            if route is None:
                raise RpcError("API_METHOD_NOT_SUPPORTED_BY_SANDBOX", 400)
            if route.auth and account is None:
                raise RpcError("AUTH_KEY_UNREGISTERED", 401)
            result = serialize(route.handler(RpcContext(self.server, connection, account), query))
        except RpcError as fail:
            error = fail.message
            connection.send_error(msg_id, fail.code, fail.message)
        except Exception:
            log.exception("sandbox_rpc_crashed", method=method)
            error = "INTERNAL"
            connection.send_error(msg_id, 500, "INTERNAL")
        else:
            connection.send_result(msg_id, result)
        finally:
            faults.record(account_id, method, type(query).__name__, error, connection.id)

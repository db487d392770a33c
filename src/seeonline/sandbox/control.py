"""A small loopback HTTP/1.1 JSON API to steer a running sandbox (statuses, faults, drops, revocations)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from seeonline.logging import get_logger
from seeonline.sandbox.manifest import CONTROL_HOST, build_manifest, person_entry, tracker_entry
from seeonline.sandbox.privacy import Privacy
from seeonline.sandbox.server import SandboxServer
from seeonline.sandbox.world import Account, WorldError

log = get_logger("seeonline.sandbox.control")

_MAX_BODY = 1024 * 1024


class HttpError(Exception):
    """Answer with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Handler = Callable[[dict[str, str], dict[str, Any], dict[str, list[str]]], Awaitable[Any]]


class ControlServer:
    """Routes JSON requests to the sandbox's Python API."""

    def __init__(self, sandbox: SandboxServer, *, port: int = 0) -> None:
        self.sandbox = sandbox
        self.host = CONTROL_HOST  # never another address: see seeonline.sandbox.manifest.CONTROL_HOST
        self.requested_port = port
        self._server: asyncio.Server | None = None
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        route = self._route
        route("GET", "/health", self._health)
        route("GET", "/manifest", self._manifest)
        route("GET", "/people", self._people)
        route("POST", "/people", self._add_person)
        route("GET", "/people/{username}", self._person)
        route("POST", "/people/{username}/status", self._set_status)
        route("POST", "/people/{username}/privacy", self._set_privacy)
        route("GET", "/trackers", self._trackers)
        route("POST", "/trackers", self._add_tracker)
        route("POST", "/trackers/{telegram_id}/revoke", self._revoke)
        route("POST", "/trackers/{telegram_id}/status", self._set_status)
        route("POST", "/trackers/{telegram_id}/privacy", self._set_privacy)
        route("GET", "/faults", self._faults)
        route("POST", "/faults", self._add_fault)
        route("DELETE", "/faults", self._clear_faults)
        route("DELETE", "/faults/{fault_id}", self._clear_faults)
        route("POST", "/connections/drop", self._drop)
        route("GET", "/calls", self._calls)
        route("DELETE", "/calls", self._clear_calls)

    def _route(self, method: str, template: str, handler: Handler) -> None:
        pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
        self._routes.append((method, pattern, handler))

    async def start(self) -> None:
        """Listen on loopback (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)
        log.info("sandbox_control_listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    @property
    def port(self) -> int:
        """The port the control API listens on."""
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    # --- HTTP plumbing ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, payload = await self._respond(reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()
            return
        body = json.dumps(payload).encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, Any]:
        request_line = (await reader.readline()).decode("latin-1").strip()
        method, target, _version = request_line.split(" ", 2)
        length = 0
        while line := (await reader.readline()).decode("latin-1").strip():
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length > _MAX_BODY:
            return 413, {"error": "body too large"}
        raw = await reader.readexactly(length) if length else b""
        url = urlsplit(target)
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise HttpError(400, "the body must be a JSON object")
            return 200, await self._dispatch(method.upper(), url.path.rstrip("/") or "/", body, parse_qs(url.query))
        except json.JSONDecodeError:
            return 400, {"error": "invalid JSON"}
        except HttpError as exc:
            return exc.status, {"error": str(exc)}
        except (KeyError, WorldError, ValueError, TypeError) as exc:
            return 400, {"error": f"{type(exc).__name__}: {exc}"}

    async def _dispatch(self, method: str, path: str, body: dict[str, Any], query: dict[str, list[str]]) -> Any:
        allowed = False
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            allowed = True
            if route_method == method:
                return await handler(match.groupdict(), body, query)
        raise HttpError(405 if allowed else 404, f"no route {method} {path}")

    # --- helpers ------------------------------------------------------------------------------

    def _account(self, ref: Any) -> Account:
        try:
            return self.sandbox.world.account(int(ref) if isinstance(ref, int) else str(ref))
        except KeyError:
            raise HttpError(404, f"no tracker {ref}") from None

    def _person_ref(self, params: dict[str, str]) -> int:
        ref = params.get("username") or params.get("telegram_id", "")
        try:
            return self.sandbox.world.user(ref).id
        except KeyError:
            raise HttpError(404, f"no such user {ref}") from None

    # --- handlers -----------------------------------------------------------------------------

    async def _health(self, _p: dict[str, str], _b: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        return {"ok": True, "port": self.sandbox.port, "connections": len(self.sandbox.connections)}

    async def _manifest(self, _p: dict[str, str], _b: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        return build_manifest(self.sandbox, self.port)

    async def _people(self, _p: dict[str, str], _b: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        return [person_entry(self.sandbox, u) for u in self.sandbox.world.people()]

    async def _person(self, params: dict[str, str], _b: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        return person_entry(self.sandbox, self.sandbox.world.users[self._person_ref(params)])

    async def _add_person(self, _p: dict[str, str], body: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        user = self.sandbox.world.add_person(
            str(body["username"]),
            privacy=Privacy(body.get("privacy", "everybody")),
            phone=body.get("phone"),
            online=bool(body.get("online", False)),
        )
        return person_entry(self.sandbox, user)

    async def _set_status(self, params: dict[str, str], body: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        if not isinstance(body.get("online"), bool):
            raise HttpError(400, 'expected {"online": true|false}')
        user = self.sandbox.world.set_status(
            self._person_ref(params),
            online=body["online"],
            expires_in=float(body.get("expires_in", 300)),
            push=bool(body.get("push", True)),
        )
        return person_entry(self.sandbox, user)

    async def _set_privacy(self, params: dict[str, str], body: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        user = self.sandbox.world.set_privacy(self._person_ref(params), Privacy(body["privacy"]))
        return person_entry(self.sandbox, user)

    async def _trackers(self, _p: dict[str, str], _b: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        return [tracker_entry(self.sandbox, a) for a in self.sandbox.world.accounts.values()]

    async def _add_tracker(self, _p: dict[str, str], body: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        account = self.sandbox.world.add_account(
            body.get("phone"),
            username=body.get("username"),
            password=body.get("password"),
            password_hint=body.get("password_hint"),
            privacy=Privacy(body.get("privacy", "everybody")),
            banned=bool(body.get("banned", False)),
            premium=bool(body.get("premium", False)),
        )
        return tracker_entry(self.sandbox, account)

    async def _revoke(self, params: dict[str, str], _b: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        account = self._account(params["telegram_id"])
        return {"telegram_id": account.id, "revoked_keys": self.sandbox.revoke(account)}

    async def _faults(self, _p: dict[str, str], _b: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        return [f.to_json() for f in self.sandbox.faults.faults]

    async def _add_fault(self, _p: dict[str, str], body: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        if not (body.get("error") or body.get("drop") or body.get("delay")):
            raise HttpError(400, "a fault needs an error, drop or delay")
        account = body.get("account")
        fault = self.sandbox.inject_fault(
            str(body.get("method", "*")),
            body.get("error"),
            account=None if account is None else self._account(account),
            count=None if body.get("count") is None else int(body["count"]),
            delay=float(body.get("delay", 0)),
            drop=bool(body.get("drop", False)),
            code=None if body.get("code") is None else int(body["code"]),
        )
        return fault.to_json()

    async def _clear_faults(self, params: dict[str, str], _b: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        fault_id = params.get("fault_id")
        return {"removed": self.sandbox.clear_faults(None if fault_id is None else int(fault_id))}

    async def _drop(self, _p: dict[str, str], body: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        account = body.get("account")
        return {"dropped": self.sandbox.drop_connections(None if account is None else self._account(account))}

    async def _calls(self, _p: dict[str, str], _b: dict[str, Any], query: dict[str, list[str]]) -> Any:
        calls = self.sandbox.calls
        if "method" in query:
            calls = self.sandbox.calls_to(query["method"][0])
        if "account" in query:
            account_id = self._account(query["account"][0]).id
            calls = [c for c in calls if c.account_id == account_id]
        if "since" in query:
            since = float(query["since"][0])
            calls = [c for c in calls if c.time >= since]
        return [c.to_json() for c in calls]

    async def _clear_calls(self, _p: dict[str, str], _b: dict[str, Any], _q: dict[str, list[str]]) -> Any:
        removed = len(self.sandbox.faults.calls)
        self.sandbox.faults.calls.clear()
        return {"removed": removed}

"""The sandbox server: listens for MTProto clients and wires the world, RPC handlers and faults together."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import time
from types import TracebackType
from typing import Any

from telethon.sessions import StringSession
from telethon.tl import types

from seeonline.logging import get_logger

# Imported for their @handles registrations (seeonline.sandbox.handler_kit.ROUTES).
from seeonline.sandbox import handlers_account, handlers_contacts  # noqa: F401
from seeonline.sandbox.crypto import ServerKey, default_server_key
from seeonline.sandbox.faults import Call, Fault, FaultInjector
from seeonline.sandbox.handlers_auth import LoginState
from seeonline.sandbox.handlers_users import SANDBOX_DC_ID
from seeonline.sandbox.rpc import RpcDispatcher
from seeonline.sandbox.session import Connection
from seeonline.sandbox.world import Account, World
from seeonline.telegram.addresses import forget_sandbox, trust_sandbox

log = get_logger("seeonline.sandbox.server")

AccountRef = Account | int | str


class SandboxServer:
    """A local Telegram data centre for unmodified Telethon clients; ``async with`` starts and stops it."""

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_key: ServerKey | None = None,
    ) -> None:
        self.world = world if world is not None else World()
        self.host = host
        self.requested_port = port
        self.server_key = server_key if server_key is not None else default_server_key()
        self.faults = FaultInjector()
        self.logins = LoginState()
        self.rpc = RpcDispatcher(self)
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._serving: set[asyncio.Task[None]] = set()
        self._simulation: asyncio.Task[None] | None = None
        self.world.add_listener(self._deliver)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (port 0 picks a free port; read it back from ``port``)."""
        self._server = await asyncio.start_server(self._accept, self.host, self.requested_port)
        # Sessions pointing here are the sandbox's own: this process (and the workers it forks) may dial them.
        trust_sandbox(self.public_host, self.port)
        log.info("sandbox_listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._simulation is not None:
            self._simulation.cancel()
            self._simulation = None
        if self._server is not None:
            forget_sandbox(self.public_host, self.port)
            self._server.close()
        for connection in list(self.connections):
            connection.close(abort=True)
        for task in list(self._serving):
            task.cancel()
        if self._serving:
            await asyncio.gather(*self._serving, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def go_offline(self) -> None:
        """A Telegram outage: every connection dropped, new ones refused, until ``go_online``."""
        self.requested_port = self.port
        await self.stop()

    async def go_online(self) -> None:
        """End an outage: listen again on the same port."""
        await self.start()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The TCP port clients connect to."""
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def public_host(self) -> str:
        """The IP address clients should dial (a session string needs a literal IP)."""
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return "127.0.0.1"
        return "127.0.0.1" if address.is_unspecified else self.host

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self, reader, writer)
        self.connections.add(connection)
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
        try:
            await connection.serve()
        finally:
            if task is not None:
                self._serving.discard(task)

    def forget(self, connection: Connection) -> None:
        """Called by a connection when it closes."""
        self.connections.discard(connection)

    def _deliver(self, account_id: int, updates: Any) -> None:
        for connection in list(self.connections):
            if connection.account_id == account_id:
                connection.push(updates)

    # --- the Python API for tests and the control server --------------------------------------

    def _account(self, ref: AccountRef) -> Account:
        return ref if isinstance(ref, Account) else self.world.account(ref)

    def session_string_for(self, account: AccountRef) -> str:
        """A Telethon ``StringSession`` already logged in as the account, pointing at this sandbox."""
        session = StringSession()
        session.set_dc(SANDBOX_DC_ID, self.public_host, self.port)
        session.auth_key = self.world.preauthorized_key(self._account(account).id)
        saved: str = session.save()
        return saved

    def inject_fault(
        self,
        method: str = "*",
        error: str | None = None,
        *,
        account: AccountRef | None = None,
        count: int | None = None,
        delay: float = 0.0,
        drop: bool = False,
        code: int | None = None,
    ) -> Fault:
        """Make matching calls fail with ``error``, wait ``delay`` seconds, and/or drop the connection."""
        account_id = None if account is None else self._account(account).id
        fault = Fault(method=method, error=error, code=code, account=account_id, count=count, delay=delay, drop=drop)
        return self.faults.add(fault)

    def clear_faults(self, fault_id: int | None = None) -> int:
        """Remove one fault, or all of them."""
        return self.faults.remove(fault_id)

    def drop_connections(self, account: AccountRef | None = None) -> int:
        """Reset every connection (or the account's), as a network failure would; returns how many."""
        account_id = None if account is None else self._account(account).id
        victims = [c for c in self.connections if account_id is None or c.account_id == account_id]
        for connection in victims:
            connection.close(abort=True)
        return len(victims)

    def revoke(self, account: AccountRef) -> int:
        """Terminate the account's sessions: its keys answer AUTH_KEY_UNREGISTERED from now on."""
        account_id = self._account(account).id
        connected = [c for c in self.connections if c.account_id == account_id]
        revoked = self.world.revoke(account_id)
        # updatesTooLong makes an idle Telethon client ask for the difference at once, and so learn it was logged out.
        for connection in connected:
            connection.push(types.UpdatesTooLong())
        log.info("sandbox_account_revoked", account_id=account_id, keys=revoked)
        return revoked

    @property
    def calls(self) -> list[Call]:
        """Every RPC received so far (oldest first)."""
        return list(self.faults.calls)

    def calls_to(self, method: str, account: AccountRef | None = None) -> list[Call]:
        """The calls of one method (any spelling ``inject_fault`` accepts), optionally by one account."""
        account_id = None if account is None else self._account(account).id
        probe = Fault(method=method, account=account_id)
        return [c for c in self.faults.calls if probe.matches(c.method, c.account_id)]

    def rsa_public_key_pem(self) -> str:
        """The PEM a client needs (``telethon.crypto.rsa.add_key``) to do a fresh handshake here."""
        return self.server_key.public_pem()

    def start_simulation(self, rate: float, rng: random.Random | None = None) -> None:
        """Flip random people's statuses, ``rate`` flips per second, until ``stop``."""
        if self._simulation is not None:
            self._simulation.cancel()
        self._simulation = asyncio.get_running_loop().create_task(self._simulate(rate, rng or random.Random()))  # noqa: S311 - simulation

    async def _simulate(self, rate: float, rng: random.Random) -> None:
        while True:
            await asyncio.sleep(rng.expovariate(rate) if rate > 0 else 3600)
            people = self.world.people()
            if people:
                person = rng.choice(people)
                self.world.set_status(person.id, online=not person.is_online(time.time()))

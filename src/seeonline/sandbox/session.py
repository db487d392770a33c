"""One client connection: plain handshake messages, then the encrypted MTProto 2.0 session."""

from __future__ import annotations

import asyncio
import itertools
import os
import struct
import time
from typing import TYPE_CHECKING, Any

from telethon.crypto import AuthKey
from telethon.errors import TypeNotFoundError
from telethon.extensions import BinaryReader
from telethon.tl import functions, types
from telethon.tl.core import GzipPacked, MessageContainer

from seeonline.logging import get_logger
from seeonline.sandbox.crypto import DecryptError, decrypt_from_client, encrypt_for_client
from seeonline.sandbox.handshake import Handshake, HandshakeError
from seeonline.sandbox.transport import Framing, TransportError, detect_framing

if TYPE_CHECKING:
    from seeonline.sandbox.server import SandboxServer

log = get_logger("seeonline.sandbox.session")

_RPC_RESULT = 0xF35C6D01
_AUTH_KEY_NOT_FOUND = -404
_connection_ids = itertools.count(1)


class Connection:
    """Serves one TCP connection until the client leaves or the sandbox drops it."""

    def __init__(self, server: SandboxServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.id = next(_connection_ids)
        self.server = server
        self.reader = reader
        self.writer = writer
        self.framing: Framing | None = None
        self.auth_key: AuthKey | None = None
        self.session_id: int | None = None
        self.salt = struct.unpack("<q", os.urandom(8))[0]
        self.receives_updates = True
        self.api_id: int | None = None
        self.layer: int | None = None
        self.closed = False
        self._handshake = Handshake(server.server_key)
        self._last_msg_id = 0
        self._seq = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # --- identity -----------------------------------------------------------------------------

    @property
    def key_id(self) -> int | None:
        """The id of the auth key this connection encrypts with, once known."""
        return None if self.auth_key is None else int(self.auth_key.key_id)

    @property
    def account_id(self) -> int | None:
        """The account currently logged in on this connection's key (None if none, or revoked)."""
        if self.key_id is None:
            return None
        account = self.server.world.account_for_key(self.key_id)
        return None if account is None else account.id

    # --- lifecycle ----------------------------------------------------------------------------

    async def serve(self) -> None:
        """Read packets until EOF, a protocol error, or ``close``."""
        try:
            self.framing = await detect_framing(self.reader, self.writer)
            while not self.closed:
                packet = await self.framing.read_packet()
                await self._on_packet(packet)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except (TransportError, HandshakeError, DecryptError) as exc:
            log.warning("sandbox_connection_error", connection=self.id, error=str(exc))
        except Exception:
            # A sandbox bug must cost one connection (the client reconnects), never the server.
            log.exception("sandbox_connection_crashed", connection=self.id)
        finally:
            self.close()

    def close(self, *, abort: bool = False) -> None:
        """Close the socket (``abort`` resets it like a network failure) and stop pending calls."""
        if self.closed:
            return
        self.closed = True
        for task in self._tasks:
            task.cancel()
        if abort:
            self.writer.transport.abort()
        else:
            self.writer.close()
        self.server.forget(self)

    # --- packets ------------------------------------------------------------------------------

    async def _on_packet(self, packet: bytes) -> None:
        if len(packet) < 8:
            raise TransportError("short packet")
        (key_id,) = struct.unpack("<Q", packet[:8])
        if key_id == 0:
            self._on_plain(packet)
            return
        if self.auth_key is None or self.auth_key.key_id != key_id:
            binding = self.server.world.keys.get(key_id)
            if binding is None:
                # Telegram's transport error for a key it never issued (or destroyed): the client drops it.
                assert self.framing is not None
                self.framing.write_error(_AUTH_KEY_NOT_FOUND)
                self.close()
                return
            self.auth_key = binding.auth_key
        plain = decrypt_from_client(self.auth_key, packet)
        with BinaryReader(plain) as reader:
            reader.read_long()  # the salt: any is accepted, new_session_created hands out ours
            session_id = reader.read_long()
            msg_id = reader.read_long()
            seq_no = reader.read_int()
            length = reader.read_int()
            body = reader.read(length)
        if session_id != self.session_id:
            self.session_id = session_id
            self._send(bytes(types.NewSessionCreated(msg_id, struct.unpack("<q", os.urandom(8))[0], self.salt)))
        try:
            with BinaryReader(body) as reader:
                obj = reader.tgread_object()
        except TypeNotFoundError as exc:
            # A constructor outside layer 229: answer like Telegram instead of dropping the connection.
            log.warning("sandbox_unknown_constructor", constructor=f"{exc.invalid_constructor_id:08x}")
            self.send_error(msg_id, 400, "INPUT_CONSTRUCTOR_INVALID")
            return
        self._on_message(msg_id, seq_no, obj)

    def _on_plain(self, packet: bytes) -> None:
        with BinaryReader(packet[8:]) as reader:
            reader.read_long()  # the client's msg_id
            length = reader.read_int()
            request = BinaryReader(reader.read(length)).tgread_object()
        answer, auth_key = self._handshake.handle(request)
        if auth_key is not None:
            self.server.world.register_key(auth_key)
            log.info("sandbox_auth_key_created", connection=self.id)
        body = bytes(answer)
        assert self.framing is not None
        self.framing.write_packet(struct.pack("<qqi", 0, self._next_msg_id(response=True), len(body)) + body)

    def _on_message(self, msg_id: int, seq_no: int, obj: Any) -> None:
        """Unwrap service messages; start a task for each RPC so a delayed answer blocks nothing else."""
        if isinstance(obj, MessageContainer):
            for inner in obj.messages:
                self._on_message(inner.msg_id, inner.seq_no, inner.obj)
        elif isinstance(obj, GzipPacked):
            self._on_message(msg_id, seq_no, BinaryReader(obj.data).tgread_object())
        elif isinstance(obj, types.MsgsAck):
            pass
        elif isinstance(obj, functions.PingRequest | functions.PingDelayDisconnectRequest):
            # pong is answered bare, not inside rpc_result; Telethon matches it by msg_id.
            self._send(bytes(types.Pong(msg_id=msg_id, ping_id=obj.ping_id)), response=True)
        elif isinstance(obj, functions.DestroySessionRequest):
            self.send_result(msg_id, types.DestroySessionOk(obj.session_id))
        else:
            task = asyncio.get_running_loop().create_task(self.server.rpc.handle(self, msg_id, obj))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- sending ------------------------------------------------------------------------------

    def _next_msg_id(self, *, response: bool) -> int:
        """Odd, strictly increasing, time-based: 1 mod 4 for answers, 3 mod 4 for server-initiated messages."""
        now = time.time()
        low = 1 if response else 3
        candidate = ((int(now) << 32) | (int((now % 1) * 2**32) & ~3)) | low
        if candidate <= self._last_msg_id:
            candidate = ((self._last_msg_id + 4) & ~3) | low
        self._last_msg_id = candidate
        return candidate

    def _send(self, body: bytes, *, content_related: bool = True, response: bool = False) -> None:
        """Encrypt and write one message; synchronous, so messages never interleave on the wire."""
        if self.closed or self.auth_key is None or self.framing is None or self.session_id is None:
            return
        if content_related:
            seq_no = self._seq * 2 + 1
            self._seq += 1
        else:
            seq_no = self._seq * 2
        msg_id = self._next_msg_id(response=response)
        plain = struct.pack("<qqqii", self.salt, self.session_id, msg_id, seq_no, len(body)) + body
        try:
            self.framing.write_packet(encrypt_for_client(self.auth_key, plain))
        except (ConnectionError, RuntimeError):
            self.close()

    def send_result(self, req_msg_id: int, result_bytes: bytes | Any) -> None:
        """Answer an RPC with ``rpc_result`` (gzip_packed when that is smaller)."""
        payload = result_bytes if isinstance(result_bytes, bytes) else bytes(result_bytes)
        if len(payload) > 512:
            packed = bytes(GzipPacked(payload))
            if len(packed) < len(payload):
                payload = packed
        self._send(struct.pack("<Iq", _RPC_RESULT, req_msg_id) + payload, response=True)

    def send_error(self, req_msg_id: int, code: int, message: str) -> None:
        """Answer an RPC with ``rpc_error``."""
        error = bytes(types.RpcError(error_code=code, error_message=message))
        self._send(struct.pack("<Iq", _RPC_RESULT, req_msg_id) + error, response=True)

    def push(self, updates: Any) -> None:
        """Send a server-initiated ``Updates`` object, unless the client asked for no updates."""
        if self.receives_updates:
            self._send(bytes(updates))

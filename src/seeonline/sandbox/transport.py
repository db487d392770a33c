"""MTProto TCP framing (full, intermediate, abridged), detected from the first bytes a client sends."""

from __future__ import annotations

import asyncio
import struct
from zlib import crc32

_ABRIDGED_TAG = 0xEF
_INTERMEDIATE_TAG = b"\xee\xee\xee\xee"
_PADDED_INTERMEDIATE_TAG = b"\xdd\xdd\xdd\xdd"
# Any packet larger than this is a framing error, not a real message (Telegram caps near 1 MiB).
MAX_PACKET = 4 * 1024 * 1024


class TransportError(Exception):
    """The byte stream does not follow the detected framing."""


class Framing:
    """Reads and writes whole MTProto packets on one TCP stream."""

    name = "abstract"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read_packet(self) -> bytes:
        """The next packet's payload."""
        raise NotImplementedError

    def encode(self, payload: bytes) -> bytes:
        """The bytes that carry ``payload`` on the wire."""
        raise NotImplementedError

    def write_packet(self, payload: bytes) -> None:
        """Queue ``payload`` for sending; synchronous so concurrent senders never interleave."""
        self.writer.write(self.encode(payload))

    def write_error(self, code: int) -> None:
        """Send a transport error (e.g. -404 for an unknown auth key): a bare negative int32 payload."""
        self.write_packet(struct.pack("<i", code))


class FullFraming(Framing):
    """Telethon's default: length, sequence number, payload, CRC32."""

    name = "full"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes = b"") -> None:
        super().__init__(reader, writer)
        self._pending = first
        self._send_seq = 0

    async def read_packet(self) -> bytes:
        """Read one full-framed packet and check its CRC."""
        head = self._pending + await self.reader.readexactly(4 - len(self._pending))
        self._pending = b""
        (length,) = struct.unpack("<i", head)
        if length < 12 or length > MAX_PACKET:
            raise TransportError(f"bad full-transport length {length}")
        rest = await self.reader.readexactly(length - 4)
        body, (checksum,) = rest[:-4], struct.unpack("<I", rest[-4:])
        if crc32(head + body) != checksum:
            raise TransportError("bad CRC32")
        return body[4:]

    def encode(self, payload: bytes) -> bytes:
        """Frame with our own send counter and a CRC32."""
        data = struct.pack("<ii", len(payload) + 12, self._send_seq) + payload
        self._send_seq += 1
        return data + struct.pack("<I", crc32(data))


class IntermediateFraming(Framing):
    """A 4-byte length before each packet (the padded variant adds 0-3 random bytes)."""

    name = "intermediate"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, padded: bool = False) -> None:
        super().__init__(reader, writer)
        self.padded = padded

    async def read_packet(self) -> bytes:
        """Read one length-prefixed packet, dropping the padding of the padded variant."""
        (length,) = struct.unpack("<i", await self.reader.readexactly(4))
        if length < 0 or length > MAX_PACKET:
            raise TransportError(f"bad intermediate length {length}")
        data = await self.reader.readexactly(length)
        return data[: len(data) - len(data) % 4] if self.padded else data

    def encode(self, payload: bytes) -> bytes:
        """Prefix the payload with its length."""
        return struct.pack("<i", len(payload)) + payload


class AbridgedFraming(Framing):
    """Length in 4-byte words: one byte below 127 words, else 0x7f and three bytes."""

    name = "abridged"

    async def read_packet(self) -> bytes:
        """Read one abridged packet."""
        words = (await self.reader.readexactly(1))[0]
        if words >= 0x7F:
            words = int.from_bytes(await self.reader.readexactly(3), "little")
        if words * 4 > MAX_PACKET:
            raise TransportError(f"bad abridged length {words}")
        return await self.reader.readexactly(words * 4)

    def encode(self, payload: bytes) -> bytes:
        """Prefix the payload with its length in words."""
        words = len(payload) >> 2
        if words < 0x7F:
            return bytes([words]) + payload
        return b"\x7f" + words.to_bytes(3, "little") + payload


async def detect_framing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Framing:
    """Choose the framing from the first bytes: 0xef abridged, 0xeeeeeeee intermediate, else full."""
    first = await reader.readexactly(1)
    if first[0] == _ABRIDGED_TAG:
        return AbridgedFraming(reader, writer)
    head = first + await reader.readexactly(3)
    if head == _INTERMEDIATE_TAG:
        return IntermediateFraming(reader, writer)
    if head == _PADDED_INTERMEDIATE_TAG:
        return IntermediateFraming(reader, writer, padded=True)
    # The full transport has no tag: these four bytes are already the first packet's length.
    return FullFraming(reader, writer, first=head)

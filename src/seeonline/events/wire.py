"""Events as SSE bytes: each event encoded once, and runs of encoded events shared by every stream sending them.

Streams hand Litestar's ``ServerSentEvent`` messages whose ``encode()`` returns bytes made beforehand:
a ``Chunk`` (consecutive events of one NOTIFY batch for one filter, built once by the hub and sent as
it is by every stream with that filter) or a ``Frame`` (a stream's own join of several chunks, or of a
backlog page). The bytes are exactly what ``ServerSentEventMessage(data, event=type, id=id).encode()``
gives.
"""

from __future__ import annotations

import bisect
import json

from litestar.response import ServerSentEventMessage

from seeonline.events.log import EventRecord

SEPARATOR = b"\r\n"


def encode_event(event: EventRecord) -> bytes:
    """One event's SSE message (``id``, ``event``, ``data`` lines and the blank line)."""
    data = event.data
    if "\n" in data or "\r" in data:  # never from the feed's JSON, but SSE needs one data line per line
        return ServerSentEventMessage(data=data, event=event.type, id=event.id).encode()
    return f"id: {event.id}\r\nevent: {event.type}\r\ndata: {data}\r\n\r\n".encode()


def encode_control(event: str, event_id: int, body: dict[str, object]) -> bytes:
    """A ``reset`` or ``skipped`` message: the stream's own news, not the log's."""
    return ServerSentEventMessage(data=json.dumps(body, separators=(",", ":")), event=event, id=event_id).encode()


class Frame(ServerSentEventMessage):
    """Bytes already encoded (one or more messages), sent as one chunk of the response."""

    def __init__(self, encoded: bytes) -> None:
        super().__init__(data=None)
        self.encoded = encoded

    def encode(self) -> bytes:
        """The messages' bytes."""
        return self.encoded


class Chunk(Frame):
    """Consecutive events for one filter from one read of the log, with each event's id and end offset."""

    def __init__(self, ids: list[int], ends: list[int], encoded: bytes) -> None:
        super().__init__(encoded)
        self.ids = ids
        self.ends = ends  # ends[k]: the offset just after event k's message

    @classmethod
    def of(cls, ids: list[int], messages: list[bytes]) -> Chunk:
        """The chunk of ``messages`` (one per id, in id order)."""
        ends, end = [], 0
        for message in messages:
            end += len(message)
            ends.append(end)
        return cls(ids, ends, b"".join(messages))

    @property
    def first_id(self) -> int:
        """The oldest event's id."""
        return self.ids[0]

    @property
    def last_id(self) -> int:
        """The newest event's id."""
        return self.ids[-1]

    def after(self, cursor: int) -> bytes:
        """The bytes of the events with id > ``cursor`` (for a stream whose backlog already sent the rest)."""
        sent = bisect.bisect_right(self.ids, cursor)
        return self.encoded[self.ends[sent - 1] :] if sent else self.encoded


PING = ServerSentEventMessage(data=None, comment="ping")

"""Which open streams get which events: streams grouped by filter, filters indexed by whose events they want.

Streams with equal filters share one group, so an event is matched and encoded once per filter rather
than once per stream, and a read of the log becomes one ``Chunk`` per group, shared by its streams.
Groups are indexed by the ``(telegram_user_id, tracked_user_id)`` they narrow to: an event looks up the
four routes that can want it, never every stream. What is left to check per group (the types, and
``notify_only``'s preferences, worked out once per event) is the same rule as ``EventFilter.matches``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from seeonline.events.log import EventFilter, EventRecord, notification_wanted
from seeonline.events.wire import Chunk, encode_event

Route = tuple[int | None, int | None]


class Recipient(Protocol):
    """What the router needs of a stream: the filter it was opened with."""

    @property
    def filter(self) -> EventFilter:
        """The stream's filter (fixed for its life)."""
        ...


R = TypeVar("R", bound=Recipient)


class FilterGroup(Generic[R]):
    """The streams opened with one filter."""

    __slots__ = ("filter", "members")

    def __init__(self, event_filter: EventFilter) -> None:
        self.filter = event_filter
        self.members: set[R] = set()


class Router(Generic[R]):
    """The open streams, grouped by filter and indexed by route."""

    def __init__(self) -> None:
        self._groups: dict[EventFilter, FilterGroup[R]] = {}
        self._routes: dict[Route, list[FilterGroup[R]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[R]:
        for group in self._groups.values():
            yield from group.members

    def add(self, member: R) -> None:
        """Route events to ``member`` from now on."""
        group = self._groups.get(member.filter)
        if group is None:
            group = self._groups[member.filter] = FilterGroup(member.filter)
            self._routes.setdefault(member.filter.route, []).append(group)
        group.members.add(member)
        self._count += 1

    def remove(self, member: R) -> bool:
        """Stop routing to ``member``; False when it was not routed to."""
        group = self._groups.get(member.filter)
        if group is None or member not in group.members:
            return False
        group.members.discard(member)
        self._count -= 1
        if not group.members:
            del self._groups[member.filter]
            siblings = self._routes[member.filter.route]
            siblings.remove(group)
            if not siblings:
                del self._routes[member.filter.route]
        return True

    def route(self, events: list[EventRecord], now: datetime.datetime) -> list[tuple[FilterGroup[R], Chunk]]:
        """Each group that wants some of ``events`` (in id order), with the chunk of those events."""
        routes = self._routes
        if not routes:
            return []
        wanted: dict[FilterGroup[R], tuple[list[int], list[bytes]]] = {}
        for event in events:
            encoded: bytes | None = None
            notify: bool | None = None
            person, tracked = event.telegram_user_id, event.tracked_user_id
            for route in ((None, None), (person, None), (None, tracked), (person, tracked)):
                for group in routes.get(route, ()):
                    if event.type not in group.filter.types:
                        continue
                    if group.filter.notify_only:
                        if notify is None:
                            notify = notification_wanted(event, now)
                        if not notify:
                            continue
                    if encoded is None:
                        encoded = encode_event(event)
                    ids, messages = wanted.get(group) or wanted.setdefault(group, ([], []))
                    ids.append(event.id)
                    messages.append(encoded)
        return [(group, Chunk.of(ids, messages)) for group, (ids, messages) in wanted.items()]

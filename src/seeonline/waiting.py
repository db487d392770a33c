"""Waiting on an event with a timeout without swallowing cancellation."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; True when it was set.

    ``asyncio.wait_for`` on Python 3.11 can swallow a cancellation that races with the event
    (bpo-42130), which left worker loops running after shutdown; ``asyncio.timeout`` does not.
    """
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True

"""Waiting for an event with a time limit must never swallow a cancellation.

On Python 3.11, ``asyncio.wait_for(event.wait(), t)`` returns normally when the event is set in the
same tick as the cancel (bpo-42130): a ``while True`` loop around it then survives its own shutdown,
which hung the API's lifespan shutdown (the event hub's reader) in a full test run.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from seeonline.waiting import wait_event

ROOT = Path(__file__).resolve().parents[1]


async def _loop_on(event: asyncio.Event) -> None:
    while True:
        await wait_event(event, 5.0)
        event.clear()


async def test_a_loop_cancelled_as_its_event_is_set_ends() -> None:
    for _ in range(20):
        event = asyncio.Event()
        task = asyncio.create_task(_loop_on(event))
        await asyncio.sleep(0)  # the loop is waiting
        event.set()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
        assert done == {task}, "the cancellation was swallowed"
        assert task.cancelled()


async def test_wait_event_tells_a_set_event_from_a_timeout() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5.0) is True
    assert await wait_event(event, 0) is True  # already set


def _wait_for_around_wait(path: Path) -> list[int]:
    """Lines where ``asyncio.wait_for`` wraps a ``.wait()`` call."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "wait_for"):
            continue
        inner = node.args[0] if node.args else None
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "wait":
            found.append(node.lineno)
    return found


def test_nothing_waits_for_an_event_through_wait_for() -> None:
    offenders = {
        str(path.relative_to(ROOT)): lines
        for folder in ("src", "supervisor")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (lines := _wait_for_around_wait(path))
    }
    assert offenders == {}, "use seeonline.waiting.wait_event (or asyncio.timeout) instead"

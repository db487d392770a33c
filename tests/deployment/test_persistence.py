"""Data survives ``stop``/``start`` and ``down``/``up`` of the real deployment (runs last: it restarts it)."""

from __future__ import annotations

import httpx

from tests.deployment.stack import REQUIRES_ENGINE, Stack
from tests.polling import wait_until

pytestmark = REQUIRES_ENGINE


async def test_data_survives_stop_start_and_down_up(stack: Stack) -> None:
    created = stack.post("/telegram-users/", {"telegram_id": 4343})
    assert created.status_code == 201, created.text
    person = created.json()["id"]

    def readable() -> bool:
        try:
            return stack.get(f"/telegram-users/{person}/").status_code == 200
        except httpx.TransportError:
            return False

    stack.compose("stop")
    stack.compose("start")
    stack.compose("up", "-d", "--wait")
    await wait_until(readable, timeout=120, what="the person after stop/start")
    stack.compose("down")  # containers and network go, the volume stays
    stack.compose("up", "-d", "--wait")
    await wait_until(readable, timeout=120, what="the person after down/up")

"""A first end-to-end request through the app against the real database."""

from typing import Any

from litestar.testing import AsyncTestClient


async def test_tracker_account_round_trip(client: AsyncTestClient[Any]) -> None:
    created = await client.post(
        "/tracker-accounts/", json={"telegram_id": 1, "api_id": 2, "api_hash": "0123456789abcdef"}
    )
    assert created.status_code == 201
    fetched = await client.get(f"/tracker-accounts/{created.json()['id']}/")
    assert fetched.json()["api_hash"] == "****cdef"

"""/webhooks CRUD (secret shown once, stored encrypted, SSRF guard) and the supervisor's delivery."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec

from seeonline.settings import Settings
from seeonline.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from seeonline_supervisor.webhooks.backoff import retry_delay
from seeonline_supervisor.webhooks.deliverer import WebhookDeliverer
from tests.api.builders import Client, follow, person, tracker, username
from tests.events.receiver import Receiver, receiving
from tests.events.support import insert_statuses
from tests.polling import wait_until


async def test_create_shows_the_secret_once_and_stores_it_encrypted(
    client: Client, db: asyncpg.Connection[Any]
) -> None:
    created = await client.post("/webhooks/", json={"url": "https://93.184.216.34/hook", "events": ["status"]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["state"] == "active"
    assert body["events"] == ["status"]
    stored = await db.fetchval("SELECT secret_encrypted FROM webhooks WHERE id = $1", body["id"])
    assert body["secret"] not in stored
    again = (await client.get(f"/webhooks/{body['id']}/")).json()
    assert "secret" not in again or again["secret"] is None
    assert [w["id"] for w in (await client.get("/webhooks/")).json()] == [body["id"]]
    patched = await client.patch(f"/webhooks/{body['id']}/", json={"events": ["status", "visibility"]})
    assert patched.json()["events"] == ["status", "visibility"]
    assert (await client.delete(f"/webhooks/{body['id']}/")).status_code == 204
    assert (await client.get(f"/webhooks/{body['id']}/")).status_code == 404


async def test_private_and_malformed_urls_are_refused(client: Client) -> None:
    for url in (
        "http://127.0.0.1:8080/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/x",
        "ftp://example.org/x",
        "not a url",
        "http://user:pw@93.184.216.34/x",
    ):
        response = await client.post("/webhooks/", json={"url": url})
        assert response.status_code == 400, url
        assert response.json()["field"] == "url", url
    for body, field in (
        ({"url": "https://93.184.216.34/", "events": ["nope"]}, "events"),
        ({"url": "https://93.184.216.34/", "events": []}, "events"),
        ({"url": "https://93.184.216.34/", "telegram_user_id": 999999}, "telegram_user_id"),
    ):
        response = await client.post("/webhooks/", json=body)
        assert response.status_code == 400, body
        assert response.json()["field"].startswith(field)


def test_backoff_schedule() -> None:
    assert [retry_delay(n) for n in range(1, 8)] == [10, 60, 300, 1800, 3600, 3600, 3600]


@contextlib.asynccontextmanager
async def delivering(settings: Settings) -> AsyncIterator[WebhookDeliverer]:
    deliverer = WebhookDeliverer(settings, claim_interval=0.1)
    task = asyncio.create_task(deliverer.run())
    try:
        yield deliverer
    finally:
        deliverer.stop()
        await asyncio.wait_for(task, 10)


async def _subscription(client: Client) -> dict[str, Any]:
    await tracker(client)
    return await follow(client, await person(client), username())


async def test_delivery_is_signed_ordered_retried_and_survives_a_restart(
    client: Client, settings: Settings, db: asyncpg.Connection[Any]
) -> None:
    tracked = await _subscription(client)
    fast = msgspec.structs.replace(settings, webhook_allow_private=True, webhook_retry_scale=0.01)
    async with receiving(Receiver(script=[500, 500])) as receiver:
        hook = await _create_local(fast, db, receiver.url)
        await insert_statuses(db, tracked["id"], [True, False] * 60)  # 120 events: two batches
        async with delivering(fast):
            await wait_until(lambda: len(receiver.acknowledged_ids()) == 120, what="the first 120 events")
        # The deliverer is stopped ("supervisor restart"); more events commit meanwhile.
        await insert_statuses(db, tracked["id"], [True, False] * 10)
        async with delivering(fast):
            await wait_until(lambda: len(receiver.acknowledged_ids()) == 140, what="the rest after a restart")
    all_ids = [row[0] for row in await db.fetch("SELECT id FROM events ORDER BY id")]
    assert receiver.acknowledged_ids() == all_ids  # in order, none lost, none acknowledged twice
    statuses = [request.status for request in receiver.received]
    assert statuses[:3] == [500, 500, 200]
    assert receiver.received[0].body == receiver.received[2].body  # the failed batch was retried as it was
    assert max(len(request.ids) for request in receiver.received) == 100
    for request in receiver.received:
        assert verify(hook["secret"], request.headers[SIGNATURE_HEADER.lower()], request.body, now=int(time.time()))
        assert not verify("whsec_other", request.headers[SIGNATURE_HEADER.lower()], request.body, now=int(time.time()))
        assert request.headers[EVENT_ID_HEADER.lower()] == str(request.ids[-1])
        item = json.loads(request.body)[0]
        assert item["event"] == "status"
        assert item["data"]["tracked_user_id"] == tracked["id"]
    row = await db.fetchrow("SELECT cursor, attempts, last_error FROM webhooks WHERE id = $1", hook["id"])
    assert row is not None
    assert tuple(row) == (all_ids[-1], 0, None)


async def test_two_hosts_deliver_each_webhook_once_and_take_over(
    client: Client, settings: Settings, db: asyncpg.Connection[Any]
) -> None:
    tracked = await _subscription(client)
    local = msgspec.structs.replace(settings, webhook_allow_private=True)
    async with receiving(Receiver()) as receiver:
        await _create_local(local, db, receiver.url)
        first = WebhookDeliverer(local, claim_interval=0.1)
        first_task = asyncio.create_task(first.run())
        await wait_until(lambda: first.senders, what="the first host to claim the webhook")
        async with delivering(local) as second:
            await insert_statuses(db, tracked["id"], [True, False] * 30)
            await wait_until(lambda: len(receiver.acknowledged_ids()) == 60, what="delivery")
            assert not second.senders  # the lock is held by the first host
            first.stop()
            await asyncio.wait_for(first_task, 10)
            await wait_until(lambda: second.senders, what="the second host to take over")
            await insert_statuses(db, tracked["id"], [True, False] * 5)
            await wait_until(lambda: len(receiver.acknowledged_ids()) == 70, what="delivery by the second host")
    assert receiver.acknowledged_ids() == [row[0] for row in await db.fetch("SELECT id FROM events ORDER BY id")]


async def test_a_dead_endpoint_is_disabled_and_does_not_delay_another(
    client: Client, settings: Settings, db: asyncpg.Connection[Any]
) -> None:
    tracked = await _subscription(client)
    # 24 h of retries scaled to well under a second.
    fast = msgspec.structs.replace(settings, webhook_allow_private=True, webhook_retry_scale=0.00001)
    async with receiving(Receiver(default=500)) as dead, receiving(Receiver()) as alive:
        broken = await _create_local(fast, db, dead.url)
        await _create_local(fast, db, alive.url)
        async with delivering(fast):
            await insert_statuses(db, tracked["id"], [True, False])
            await wait_until(lambda: len(alive.acknowledged_ids()) == 2, what="the healthy endpoint")

            row = await wait_until(lambda: _disabled(db, broken["id"]), what="the dead endpoint to be disabled")
            assert row["last_error"].startswith("HTTP 500")
            assert len(dead.received) > 4
            # Re-enabled: delivered again from its cursor.
            dead.default = 200
            response = await client.patch(f"/webhooks/{broken['id']}/", json={"state": "active"})
            assert response.json()["state"] == "active"
            await wait_until(lambda: len(dead.acknowledged_ids()) == 2, what="delivery after re-enabling")


async def _disabled(db: asyncpg.Connection[Any], webhook_id: int) -> Any:
    row = await db.fetchrow("SELECT state, last_error FROM webhooks WHERE id = $1", webhook_id)
    return row if row is not None and row["state"] == "disabled" else None


async def _create_local(settings: Settings, db: asyncpg.Connection[Any], url: str) -> dict[str, Any]:
    """A webhook on a loopback receiver (the API refuses those unless private URLs are allowed)."""
    from seeonline.database.pool import create_pool  # noqa: PLC0415
    from seeonline.webhooks.schemas import WebhookCreate  # noqa: PLC0415
    from seeonline.webhooks.service import WebhookService  # noqa: PLC0415

    assert settings.secret_key is not None
    pool = await create_pool(settings.asyncpg_dsn, size=1)
    try:
        service = WebhookService(pool, settings.secret_key, allow_private=settings.webhook_allow_private)
        webhook_id, secret = await service.create(WebhookCreate(url=url))
    finally:
        await pool.close()
    return {"id": webhook_id, "secret": secret}


async def test_a_stop_lets_the_delivery_under_way_finish_so_a_restart_resends_nothing(
    client: Client, settings: Settings, db: asyncpg.Connection[Any]
) -> None:
    tracked = await _subscription(client)
    local = msgspec.structs.replace(settings, webhook_allow_private=True)
    async with receiving(Receiver(delay=0.5)) as receiver:
        await _create_local(local, db, receiver.url)
        await insert_statuses(db, tracked["id"], [True, False] * 5)
        async with delivering(local):
            await wait_until(lambda: receiver.received, what="a delivery under way")
        # Stopped while the endpoint was still answering: that batch's cursor was still written.
        assert await db.fetchval("SELECT cursor FROM webhooks") == receiver.received[-1].ids[-1]
        await insert_statuses(db, tracked["id"], [True, False])
        async with delivering(local):
            await wait_until(lambda: len(receiver.acknowledged_ids()) >= 12, what="the events after the restart")
    assert receiver.acknowledged_ids() == [row[0] for row in await db.fetch("SELECT id FROM events ORDER BY id")]

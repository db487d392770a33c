"""Authentication, health, readiness, OpenAPI, trailing slashes and secrets kept out of logs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from seeonline.logging import configure_logging
from seeonline.server.app import create_app
from seeonline.settings import Settings
from tests.api.builders import Client, create, tracker
from tests.support.keys import API_KEY
from tests.support.sessions import session_string

RESOURCE_PATHS = [
    "/tracker-accounts/",
    "/tracker-settings/",
    "/telegram-users/",
    "/tracked-users/",
    "/online-statuses/",
]


async def test_every_resource_requires_a_valid_key(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as anonymous:
        for path in RESOURCE_PATHS:
            assert (await anonymous.get(path)).status_code == 401, path
            assert (await anonymous.get(path, headers={"X-API-Key": "wrong-key-123"})).status_code == 401
            assert (await anonymous.post(path, json={}, headers={"X-API-Key": "x"})).status_code == 401
            assert (await anonymous.get(path, headers={"X-API-Key": API_KEY})).status_code == 200
            # Rotation: the second configured key works too.
            assert (await anonymous.get(path, headers={"X-API-Key": "second-key-abcdefghijklmnop"})).status_code == 200


async def test_open_operational_routes(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as anonymous:
        assert (await anonymous.get("/health")).json() == {"status": "ok"}
        assert (await anonymous.get("/ready")).json() == {"status": "ok"}
        schema = await anonymous.get("/schema/openapi.json")
        assert schema.status_code == 200
        document = schema.json()
        assert document["openapi"].startswith("3.1")
        assert "/tracked-users/by-username/{username}" in document["paths"]
        # The login's state is the LoginState enum, every value listed.
        login_state = document["components"]["schemas"]["TrackerLoginOut"]["properties"]["state"]
        assert sorted(login_state.get("enum") or document["components"]["schemas"]["LoginState"]["enum"]) == sorted(
            ["code_sent", "password_needed", "signed_in", "done", "expired"]
        )
        assert (await anonymous.get("/schema/swagger")).status_code == 200


async def test_metrics_are_open_and_count_the_pool(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as http:
        http.headers["X-API-Key"] = API_KEY
        await tracker(http, max_users=7)
        owner = await create(http, "/telegram-users/", {"telegram_id": 91})
        await create(http, "/tracked-users/", {"telegram_user_id": owner["id"], "username": "metric_target"})
        del http.headers["X-API-Key"]
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = set(response.text.splitlines())
    assert 'seeonline_trackers{state="stopped"} 1' in lines
    assert {"seeonline_slots_total 7", "seeonline_slots_used 1", "seeonline_targets_waiting 0"} <= lines


async def test_routes_answer_without_redirects(client: Client) -> None:
    created = await tracker(client)
    for path in (
        "/tracker-accounts",
        "/tracker-accounts/",
        f"/tracker-accounts/{created['id']}",
        f"/tracker-accounts/{created['id']}/",
    ):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 200, path
    for path in (
        f"/tracker-accounts/by-telegram-id/{created['telegram_id']}",
        f"/tracker-accounts/by-telegram-id/{created['telegram_id']}/",
    ):
        response = await client.patch(path, json={"is_active": True}, follow_redirects=False)
        assert response.status_code == 200, path


async def test_unsupported_method_is_405_not_500(client: Client) -> None:
    assert (await client.put("/tracker-accounts/")).status_code == 405


async def test_secrets_never_reach_the_logs(
    settings: Settings, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("debug", json=True)
    caplog.set_level(logging.DEBUG)
    api_hash = "SECRET-api-hash-7f3a9c"
    session, second_session = session_string(), session_string()
    async with AsyncTestClient(app=create_app(settings)) as http:
        http.headers["X-API-Key"] = API_KEY
        account = await create(http, "/tracker-accounts/", {"telegram_id": 77, "api_id": 78, "api_hash": api_hash})
        setting = await create(
            http,
            "/tracker-settings/",
            {"tracker_account_id": account["id"], "phone_number": "+7900", "session_string": session},
        )
        await http.patch(f"/tracker-accounts/{account['id']}", json={"api_hash": api_hash + "2", "is_active": True})
        await http.patch(f"/tracker-settings/{setting['id']}", json={"session_string": second_session})
        # An error path too: a duplicate, and a bad body, both logged nowhere with the secret.
        await http.post("/tracker-accounts/", json={"telegram_id": 77, "api_id": 79, "api_hash": api_hash})
        await http.post("/tracker-settings/", json={"tracker_account_id": "x", "session_string": session})
        listed = await http.get("/tracker-settings/")
        accounts = await http.get("/tracker-accounts/")
        # A webhook's signing secret is shown once, in the create answer, and nowhere after.
        webhook = await create(http, "/webhooks/", {"url": "https://93.184.216.34/hook"})
        webhook_secret = webhook["secret"]
        webhooks = await http.get("/webhooks/")
        one_webhook = await http.get(f"/webhooks/{webhook['id']}/")
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    # The cycle was logged (so the check below looked at real output) ...
    for event in (
        "tracker_account_created",
        "tracker_setting_created",
        "tracker_account_updated",
        "tracker_setting_updated",
    ):
        assert event in logs
    # ... and no secret reached the logs or the responses.
    assert "SECRET-" not in logs + listed.text + accounts.text
    assert len(webhook_secret) >= 32
    assert webhook_secret not in logs + webhooks.text + one_webhook.text


async def test_a_database_outage_is_a_503_not_a_500(client: Client, postgres_server: Any) -> None:
    server = postgres_server.require_embedded()
    created = await tracker(client)
    server.stop()
    try:
        response = await client.get(f"/tracker-accounts/{created['id']}/")
        assert response.status_code == 503
        assert (await client.get("/ready")).status_code == 503
    finally:
        server.start()
    for _ in range(50):  # the pool reconnects on its own
        response = await client.get(f"/tracker-accounts/{created['id']}/")
        if response.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert response.status_code == 200

"""GET /events/: live events in order, resume without gap or duplicate, reset, skipped, pings, limits."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from seeonline.settings import Settings
from tests.events.support import insert_statuses, open_stream, serving
from tests.polling import wait_until
from tests.support.keys import API_KEY
from tests.support.sessions import session_string


async def _people(base: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A tracker, two bot users following one target (modes online and both), one following another."""
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as http:
        account = (
            await http.post(
                "/tracker-accounts/",
                json={"telegram_id": 501, "api_id": 501, "api_hash": "h" * 32, "is_active": True, "is_auth": True},
            )
        ).json()
        await http.post(
            "/tracker-settings/",
            json={
                "tracker_account_id": account["id"],
                "phone_number": "+100501",
                "session_string": session_string(),
                "max_users": 10,
            },
        )
        first = (await http.post("/telegram-users/", json={"telegram_id": 7001})).json()
        second = (await http.post("/telegram-users/", json={"telegram_id": 7002})).json()
        a = (
            await http.post("/tracked-users/", json={"telegram_user_id": first["id"], "username": "target_one"})
        ).json()
        b = (
            await http.post(
                "/tracked-users/",
                json={
                    "telegram_user_id": second["id"],
                    "username": "target_one",
                    "notify_mode": "both",
                    "display_name": "One",
                },
            )
        ).json()
        c = (
            await http.post("/tracked-users/", json={"telegram_user_id": second["id"], "username": "target_two"})
        ).json()
    return a, b, c


async def test_live_events_in_order_with_notify_filtering(settings: Settings, db: asyncpg.Connection[Any]) -> None:
    async with serving(settings) as base:
        a, b, _c = await _people(base)
        async with (
            open_stream(base) as everything,
            open_stream(base, {"telegram_user_id": a["telegram_user_id"], "notify_only": "true"}) as first_only,
        ):
            await wait_until(lambda: True)  # both streams are subscribed once their headers arrived
            await insert_statuses(db, a["id"], [True, False, True])
            await insert_statuses(db, b["id"], [True, False])
            await wait_until(lambda: len(everything.of("status")) == 5, what="5 events")
            ids = [m.id for m in everything.of("status")]
            assert ids == sorted(ids) and len(set(ids)) == 5
            assert [m.data["tracked_user_id"] for m in everything.of("status")] == [a["id"]] * 3 + [b["id"]] * 2
            second = everything.of("status")[4].data
            assert second["display_name"] == "One"
            assert second["is_online"] is False
            assert second["previous_state_seconds"] == 1
            assert second["telegram_id"] == 7002
            assert second["username"] == "target_one"
            # notify_mode online: only a's two online transitions.
            await wait_until(lambda: len(first_only.of("status")) == 2, what="a's online events")
            assert [m.data["is_online"] for m in first_only.of("status")] == [True, True]


async def test_resume_after_last_event_id_has_no_gap_and_no_duplicate(
    settings: Settings, db: asyncpg.Connection[Any]
) -> None:
    async with serving(settings) as base:
        a, _b, _c = await _people(base)
        async with open_stream(base) as stream:
            await insert_statuses(db, a["id"], [True, False] * 5)
            await wait_until(lambda: len(stream.of("status")) >= 4, what="the first events")
            seen = list(stream.of("status"))
        # Disconnected mid-burst: more events commit meanwhile.
        await insert_statuses(db, a["id"], [True, False] * 5)
        last = seen[-1].id
        async with open_stream(base, {"after_id": 0}, headers={"Last-Event-ID": str(last)}) as resumed:
            await insert_statuses(db, a["id"], [True, False])
            total = await db.fetchval("SELECT count(*) FROM events")
            await wait_until(lambda: len(seen) + len(resumed.of("status")) == total, what="every event")
        ids = [m.id for m in seen + resumed.of("status")]
        assert ids == sorted(set(ids))
        assert ids == [row[0] for row in await db.fetch("SELECT id FROM events ORDER BY id")]


async def test_reset_skipped_and_pings(settings: Settings, db: asyncpg.Connection[Any]) -> None:
    quick = msgspec.structs.replace(settings, events_ping_interval=0.1)
    async with serving(quick) as base:
        a, _b, _c = await _people(base)
        await insert_statuses(db, a["id"], [True, False, True, False])
        ids = [row[0] for row in await db.fetch("SELECT id FROM events ORDER BY id")]
        await db.execute("UPDATE events SET recorded_at = now() - interval '1 hour' WHERE id <= $1", ids[2])
        async with open_stream(base, {"after_id": ids[0]}) as stream:
            await wait_until(lambda: stream.of("status") and stream.comments >= 2, what="backlog and pings")
            skipped = stream.of("skipped")
            assert [(m.id, m.data["count"]) for m in skipped] == [(ids[2], 2)]
            assert [m.id for m in stream.of("status")] == [ids[3]]
        await db.execute("DELETE FROM events WHERE id <= $1", ids[1])  # pruned
        async with open_stream(base, {"after_id": ids[0]}) as stream:
            await wait_until(lambda: stream.of("reset"), what="a reset")
            assert stream.of("reset")[0].id == ids[3]
            await insert_statuses(db, a["id"], [True])
            await wait_until(lambda: stream.of("status"), what="live events after the reset")


async def test_at_most_32_streams_per_key_and_closed_ones_are_released(settings: Settings) -> None:
    async with (
        serving(settings) as base,
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(5.0, read=None)) as http,
    ):
        headers = {"X-API-Key": API_KEY}
        streams = [http.stream("GET", "/events/", headers=headers) for _ in range(32)]
        opened = [await stream.__aenter__() for stream in streams]
        assert all(response.status_code == 200 for response in opened)
        refused = await http.get("/events/", headers=headers)
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_streams"
        async with http.stream("GET", "/events/", headers={"X-API-Key": "second-key-abcdefghijklmnop"}) as other:
            assert other.status_code == 200  # the limit is per key
        for stream in streams:
            await stream.__aexit__(None, None, None)

        async def accepted() -> bool:
            async with http.stream("GET", "/events/", headers=headers) as response:
                return response.status_code == 200

        for _ in range(2):
            await wait_until(accepted, what="streams released after their clients left")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"types": "status,nope"}, "types"),
        ({"after_id": "-1"}, "after_id"),
        ({"max_age_s": "nan"}, "max_age_s"),
        ({"notify_only": "maybe"}, "notify_only"),
        ({"telegram_user_id": "x"}, "telegram_user_id"),
    ],
)
async def test_bad_query_values_are_400s(settings: Settings, params: dict[str, str], field: str) -> None:
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as http:
        response = await http.get("/events/", params=params)
        assert response.status_code == 400
        assert response.json()["field"] == field
        assert (await http.get("/events/", headers={"X-API-Key": "wrong-key-123"})).status_code == 401


async def test_visibility_events_when_a_target_hides_and_shows(settings: Settings, db: asyncpg.Connection[Any]) -> None:
    async with serving(settings) as base:
        a, _b, _c = await _people(base)
        async with (
            open_stream(base, {"types": "status,visibility", "tracked_user_id": a["id"]}) as both_kinds,
            open_stream(base, {"tracked_user_id": a["id"]}) as status_only,
        ):
            target = "(SELECT target_id FROM tracked_users WHERE id = $1)"
            await db.execute(f"UPDATE targets SET visibility = 'hidden' WHERE id = {target}", a["id"])
            await db.execute("UPDATE tracked_users SET visible_online = false WHERE target_id = " + target, a["id"])
            await insert_statuses(db, a["id"], [True])
            await db.execute("UPDATE tracked_users SET visible_online = true WHERE id = $1", a["id"])
            await wait_until(lambda: len(both_kinds.messages) == 3, what="two visibility events and a status")
            assert [m.event for m in both_kinds.messages] == ["visibility", "status", "visibility"]
            assert [m.data.get("visibility") for m in both_kinds.of("visibility")] == ["hidden", "visible"]
            await wait_until(lambda: status_only.of("status"), what="the status event")
            assert [m.event for m in status_only.messages] == ["status"]


async def test_a_stream_that_falls_behind_is_closed_and_resumes_by_id(
    settings: Settings, db: asyncpg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("seeonline.events.hub.BUFFER_EVENTS", 5)
    async with serving(settings) as base:
        a, _b, _c = await _people(base)
        async with open_stream(base) as stream:
            await insert_statuses(db, a["id"], [True, False] * 10)  # one page of 20 > the buffer of 5
            reader = stream._task
            assert reader is not None
            await wait_until(reader.done, what="the server to end the stream that fell behind")
        sent = [m.id for m in stream.of("status")]
        async with open_stream(base, headers={"Last-Event-ID": str(sent[-1] if sent else 0)}) as resumed:
            await wait_until(lambda: len(sent) + len(resumed.of("status")) == 20, what="the rest by id")
        assert sent + [m.id for m in resumed.of("status")] == [r[0] for r in await db.fetch("SELECT id FROM events")]

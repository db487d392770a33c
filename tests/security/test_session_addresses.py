"""A session string decides where a client connects: outside sandbox mode, only Telegram's data centres.

A crafted one (a cloud metadata endpoint, a service on the loopback) is refused at the API when the
session is set, and by the worker before it dials.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg
import pytest
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from seeonline.settings import Settings
from seeonline.telegram.addresses import DC_ENV, refused_address, session_address
from seeonline_supervisor.exit_codes import EXIT_CRASHED
from seeonline_supervisor.worker.tracker import TrackerWorker
from tests.api.builders import Client, create, unique
from tests.support.keys import SECRET_KEY
from tests.worker import builders


def session_for(dc_id: int, host: str, port: int) -> str:
    session = StringSession()
    session.set_dc(dc_id, host, port)
    session.auth_key = AuthKey(os.urandom(256))
    saved: str = session.save()
    return saved


TELEGRAM = session_for(2, "149.154.167.51", 443)
CRAFTED = {
    "cloud metadata": session_for(2, "169.254.169.254", 80),
    "loopback service": session_for(2, "127.0.0.1", 5432),
    "private network": session_for(4, "10.0.0.5", 443),
    "Telegram host, other port": session_for(2, "149.154.167.51", 22),
    "IPv6 loopback": session_for(1, "::1", 443),
}


@pytest.fixture(autouse=True)
def outside_sandbox_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DC_ENV, raising=False)


def test_telegram_data_centres_are_accepted() -> None:
    for session in (TELEGRAM, session_for(5, "91.108.56.130", 443), session_for(4, "2001:67c:4e8:f004::a", 443)):
        assert refused_address(session) is None, session_address(session)


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_other_addresses_are_refused(name: str) -> None:
    assert refused_address(CRAFTED[name]) is not None


def test_sandbox_mode_accepts_the_sandbox_address_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DC_ENV, "127.0.0.1:5432")
    assert refused_address(CRAFTED["loopback service"]) is None
    assert refused_address(CRAFTED["cloud metadata"]) is not None


async def test_the_api_refuses_a_crafted_session_naming_the_field(client: Client) -> None:
    n = unique()
    account = await create(
        client, "/tracker-accounts/", {"telegram_id": 930_000 + n, "api_id": 940_000 + n, "api_hash": f"h{n:010d}"}
    )
    body = {"tracker_account_id": account["id"], "phone_number": f"+1666{n:07d}", "max_users": 3}
    for session in CRAFTED.values():
        refused = await client.post("/tracker-settings/", json={**body, "session_string": session})
        assert refused.status_code == 400, refused.text
        assert refused.json()["field"] == "session_string"
        assert session not in refused.text
    created = await create(client, "/tracker-settings/", {**body, "session_string": TELEGRAM})
    patched = await client.patch(
        f"/tracker-settings/{created['id']}/", json={"session_string": CRAFTED["cloud metadata"]}
    )
    assert (patched.status_code, patched.json()["field"]) == (400, "session_string")
    assert (
        await client.patch(f"/tracker-settings/{created['id']}/", json={"session_string": TELEGRAM})
    ).status_code == 200


async def test_the_worker_never_dials_a_crafted_session(settings: Settings, db: asyncpg.Connection[Any]) -> None:
    dialled: list[object] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dialled.append(writer.get_extra_info("peername"))
        writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    # Written straight to the database (as an attacker with write access to it, or an older release, could).
    tracker_id = await builders.tracker(
        db,
        SECRET_KEY,
        telegram_id=950_001,
        api_id=950_002,
        api_hash="crafted-session-hash",
        session=session_for(2, "127.0.0.1", port),
    )
    try:
        code = await asyncio.wait_for(TrackerWorker(tracker_id, settings).run(), 60)
    finally:
        listener.close()
        await listener.wait_closed()
    assert code == EXIT_CRASHED
    assert dialled == []

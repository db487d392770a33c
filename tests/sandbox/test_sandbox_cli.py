"""``seeonline sandbox`` end to end: a subprocess, its manifest, a separate client process, the control API."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from seeonline.sandbox.process import ControlError, SandboxProcess

CLIENT = Path(__file__).with_name("manifest_client.py")


@pytest.fixture
async def cli_sandbox(tmp_path: Path) -> AsyncIterator[SandboxProcess]:
    """``seeonline sandbox`` running as a subprocess with a manifest in ``tmp_path``."""
    process = SandboxProcess(trackers=2, people=6, seed="cli-test", manifest=tmp_path / "manifest.json")
    await process.start()
    try:
        yield process
    finally:
        assert await process.stop() == 0  # SIGTERM is a clean shutdown


async def test_manifest_lists_trackers_and_people(cli_sandbox: SandboxProcess) -> None:
    manifest = cli_sandbox.manifest
    assert len(manifest["trackers"]) == 2
    for tracker in manifest["trackers"]:
        assert {"telegram_id", "phone", "api_id", "api_hash", "session_string"} <= tracker.keys()
    assert len(manifest["people"]) == 6
    for person in manifest["people"]:
        assert person["privacy"] in {"everybody", "contacts", "nobody"}
        assert {"username", "telegram_id"} <= person.keys()
    served = await cli_sandbox.control("GET", "/manifest")
    assert served["trackers"] == manifest["trackers"]


async def test_cli_sandbox_end_to_end(cli_sandbox: SandboxProcess) -> None:
    visible = next(p for p in cli_sandbox.manifest["people"] if p["privacy"] == "everybody")
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        str(cli_sandbox.manifest_path),
        visible["username"],
        "2",
        stdout=asyncio.subprocess.PIPE,
    )
    assert client.stdout is not None
    try:
        assert (await asyncio.wait_for(client.stdout.readline(), 20)).strip() == b"ready"
        person = await cli_sandbox.set_status(visible["username"], online=True)
        assert person["online"] is True
        assert (await asyncio.wait_for(client.stdout.readline(), 10)).strip() == b"online"
        await cli_sandbox.control("POST", f"/people/{visible['username']}/status", {"online": False})
        assert (await asyncio.wait_for(client.stdout.readline(), 10)).strip() == b"offline"
        assert await asyncio.wait_for(client.wait(), 10) == 0
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()

    tracker_id = cli_sandbox.manifest["trackers"][0]["telegram_id"]
    calls = await cli_sandbox.calls()
    methods = {c["method"] for c in calls if c["account_id"] == tracker_id}
    assert {"contacts.resolveUsername", "contacts.addContact"} <= methods
    assert all(isinstance(c["time"], float) for c in calls)
    assert [c["method"] for c in await cli_sandbox.calls("contacts.AddContactRequest")] == ["contacts.addContact"]


async def test_control_api_routes(cli_sandbox: SandboxProcess) -> None:
    tracker = cli_sandbox.manifest["trackers"][1]
    fault = await cli_sandbox.inject_fault(
        "contacts.ResolveUsernameRequest", "FLOOD_WAIT_30", account=tracker["phone"], count=1
    )
    assert (fault["code"], fault["account"], fault["count"]) == (420, tracker["telegram_id"], 1)
    assert await cli_sandbox.control("GET", "/faults") == [fault]
    assert await cli_sandbox.control("DELETE", "/faults") == {"removed": 1}
    assert await cli_sandbox.drop_connections() == 0
    revoked = await cli_sandbox.revoke(tracker["telegram_id"])
    assert revoked["telegram_id"] == tracker["telegram_id"]
    added = await cli_sandbox.control("POST", "/people", {"username": "late_arrival", "privacy": "nobody"})
    assert (await cli_sandbox.control("GET", "/people/late_arrival"))["telegram_id"] == added["telegram_id"]
    new_tracker = await cli_sandbox.control("POST", "/trackers", {"password": "pw"})
    assert new_tracker["session_string"]
    refusals: list[tuple[str, str, dict[str, Any] | None, int]] = [
        ("POST", "/people/nobody_at_all/status", {"online": True}, 404),
        ("POST", "/people/person001/status", {"online": "yes"}, 400),
        ("GET", "/no/such/route", None, 404),
        ("DELETE", "/manifest", None, 405),
    ]
    for method, path, body, status in refusals:
        with pytest.raises(ControlError) as caught:
            await cli_sandbox.control(method, path, body)
        assert caught.value.status == status

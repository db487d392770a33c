"""``seeonline sandbox`` end to end: a subprocess, its manifest, a separate client process, the control API."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CLIENT = Path(__file__).with_name("manifest_client.py")


def _command() -> list[str]:
    """The installed ``seeonline`` script when present, else the same click group through the interpreter."""
    script = Path(sys.executable).with_name("seeonline")
    if script.exists():
        return [str(script)]
    found = shutil.which("seeonline")
    return [found] if found else [sys.executable, "-c", "from seeonline.cli import main; main()"]


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Call the control API without blocking the event loop."""
    return await asyncio.to_thread(_http, method, url, body)


@pytest.fixture
async def cli_sandbox(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """``seeonline sandbox`` running as a subprocess; yields its manifest."""
    manifest_path = tmp_path / "manifest.json"
    process = await asyncio.create_subprocess_exec(
        *_command(),
        "sandbox",
        "--port",
        "0",
        "--control-port",
        "0",
        "--trackers",
        "2",
        "--people",
        "6",
        "--seed",
        "cli-test",
        "--manifest",
        str(manifest_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
        assert ready["event"] == "sandbox_ready"
        manifest = json.loads(manifest_path.read_text())
        manifest["_path"] = str(manifest_path)
        yield manifest
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
    assert process.returncode == 0


async def test_manifest_lists_trackers_and_people(cli_sandbox: dict[str, Any]) -> None:
    assert len(cli_sandbox["trackers"]) == 2
    for tracker in cli_sandbox["trackers"]:
        assert {"telegram_id", "phone", "api_id", "api_hash", "session_string"} <= tracker.keys()
    assert len(cli_sandbox["people"]) == 6
    for person in cli_sandbox["people"]:
        assert person["privacy"] in {"everybody", "contacts", "nobody"}
        assert {"username", "telegram_id"} <= person.keys()
    status, served = await http("GET", f"{cli_sandbox['control_url']}/manifest")
    assert status == 200
    assert served["trackers"] == cli_sandbox["trackers"]


async def test_cli_sandbox_end_to_end(cli_sandbox: dict[str, Any]) -> None:
    control = cli_sandbox["control_url"]
    visible = next(p for p in cli_sandbox["people"] if p["privacy"] == "everybody")
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        cli_sandbox["_path"],
        visible["username"],
        "2",
        stdout=asyncio.subprocess.PIPE,
    )
    assert client.stdout is not None
    try:
        assert (await asyncio.wait_for(client.stdout.readline(), 20)).strip() == b"ready"
        status, person = await http("POST", f"{control}/people/{visible['username']}/status", {"online": True})
        assert (status, person["online"]) == (200, True)
        assert (await asyncio.wait_for(client.stdout.readline(), 10)).strip() == b"online"
        await http("POST", f"{control}/people/{visible['username']}/status", {"online": False})
        assert (await asyncio.wait_for(client.stdout.readline(), 10)).strip() == b"offline"
        assert await asyncio.wait_for(client.wait(), 10) == 0
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()

    tracker_id = cli_sandbox["trackers"][0]["telegram_id"]
    status, calls = await http("GET", f"{control}/calls")
    assert status == 200
    methods = {c["method"] for c in calls if c["account_id"] == tracker_id}
    assert {"contacts.resolveUsername", "contacts.addContact"} <= methods
    assert all(isinstance(c["time"], float) for c in calls)


async def test_control_api_routes(cli_sandbox: dict[str, Any]) -> None:
    control = cli_sandbox["control_url"]
    tracker = cli_sandbox["trackers"][1]
    status, fault = await http(
        "POST",
        f"{control}/faults",
        {
            "method": "contacts.ResolveUsernameRequest",
            "error": "FLOOD_WAIT_30",
            "account": tracker["phone"],
            "count": 1,
        },
    )
    assert status == 200
    assert (fault["code"], fault["account"], fault["count"]) == (420, tracker["telegram_id"], 1)
    assert (await http("GET", f"{control}/faults"))[1] == [fault]
    assert (await http("DELETE", f"{control}/faults"))[1] == {"removed": 1}
    assert (await http("POST", f"{control}/connections/drop", {}))[0] == 200
    status, revoked = await http("POST", f"{control}/trackers/{tracker['telegram_id']}/revoke")
    assert (status, revoked["telegram_id"]) == (200, tracker["telegram_id"])
    assert (await http("POST", f"{control}/people/nobody_at_all/status", {"online": True}))[0] == 404
    assert (await http("POST", f"{control}/people/person001/status", {"online": "yes"}))[0] == 400
    assert (await http("GET", f"{control}/no/such/route"))[0] == 404

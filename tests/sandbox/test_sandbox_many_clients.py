"""Fifty real client processes connected at once, each receiving only its own contact's pushes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from seeonline.sandbox import SandboxServer

CLIENTS = 50
SCRIPT = Path(__file__).with_name("swarm_client.py")


async def _read_until(process: asyncio.subprocess.Process, wanted: str, timeout: float) -> list[str]:
    lines: list[str] = []
    assert process.stdout is not None
    while True:
        raw = await asyncio.wait_for(process.stdout.readline(), timeout)
        if not raw:
            return lines
        line = raw.decode().strip()
        lines.append(line)
        if line == wanted:
            return lines


async def test_fifty_client_processes_each_get_their_own_pushes(sandbox: SandboxServer) -> None:
    world = sandbox.world
    pairs = []
    for number in range(CLIENTS):
        account = world.add_account()
        person = world.add_person(f"swarm_person_{number:02d}")
        world.add_contact(account.id, person.id)
        pairs.append((account, person))
    unwatched = world.add_person("swarm_nobody_watches")

    processes = []
    for account, person in pairs:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        config = {
            "session": sandbox.session_string_for(account),
            "api_id": account.api_id,
            "api_hash": account.api_hash,
            "expect": person.id,
        }
        assert process.stdin is not None
        process.stdin.write(json.dumps(config).encode() + b"\n")
        await process.stdin.drain()
        processes.append(process)
    try:
        startup = await asyncio.gather(*(_read_until(p, "ready", 40) for p in processes))
        assert all(lines[-1:] == ["ready"] for lines in startup), startup
        assert len({c.account_id for c in sandbox.connections}) == CLIENTS

        world.set_status(unwatched.id, online=True)
        for _, person in pairs:
            world.set_status(person.id, online=True)
        outputs = await asyncio.gather(*(_read_until(p, "", 20) for p in processes))
        codes = await asyncio.gather(*(p.wait() for p in processes))
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()

    assert codes == [0] * CLIENTS, list(zip(codes, outputs, strict=True))
    for (_, person), lines in zip(pairs, outputs, strict=True):
        assert lines == [f"push {person.id} UserStatusOnline"], lines

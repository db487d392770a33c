"""``seeonline demo``: the whole product against the Telegram sandbox, seeded and running in seconds.

It starts the sandbox (simulated Telegram with trackers and people whose statuses flip), registers
its trackers and a few bot users through the same services the API uses, then runs the supervisor
and the API, so statuses flow into ``GET /online-statuses/`` within a minute of cloning.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from seeonline.bot_users.schemas import TelegramUserCreate, TrackedUserCreate
from seeonline.bot_users.service import BotUserService
from seeonline.database.pool import create_pool
from seeonline.logging import get_logger
from seeonline.processes import stop_child
from seeonline.sandbox.process import sandbox_command_line
from seeonline.trackers.schemas import TrackerAccountCreate, TrackerSettingCreate
from seeonline.trackers.service import TrackerService

log = get_logger(__name__)

DEMO_DATABASE = "seeonline_demo"
DEMO_BOT_USERS = (100_001, 100_002, 100_003)


@dataclass
class DemoSandbox:
    """The sandbox child process and what its manifest says."""

    process: subprocess.Popen[bytes]
    manifest: dict[str, Any]
    workdir: tempfile.TemporaryDirectory[str]
    login_env: dict[str, str]  # sandbox mode: its address (sessions may point there) and RSA key

    def stop(self) -> None:
        """Stop the sandbox and remove its manifest (it holds session strings)."""
        stop_child(self.process)
        self.workdir.cleanup()


def start_sandbox(trackers: int, people: int, rate: float) -> DemoSandbox:
    """Start ``seeonline sandbox`` and wait for its ready line."""
    workdir = tempfile.TemporaryDirectory(prefix="seeonline-demo-")
    manifest_path = Path(workdir.name) / "manifest.json"
    command = sandbox_command_line(
        trackers=trackers, people=people, manifest=manifest_path, simulate=rate, extra=["--log-level", "warning"]
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    ready_line = process.stdout.readline()
    if not ready_line:
        workdir.cleanup()
        msg = "the Telegram sandbox exited before it was ready"
        raise RuntimeError(msg)
    ready = json.loads(ready_line)
    return DemoSandbox(process, json.loads(manifest_path.read_text()), workdir, ready["login_env"])


async def reset_database(admin_url: str, database_url: str) -> None:
    """Drop and recreate the demo database so every demo starts clean."""
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    finally:
        await connection.close()
    log.info("demo_database_ready", database=DEMO_DATABASE)  # not the URL: it holds the password


async def register(database_url: str, secret_key: str, manifest: dict[str, Any]) -> dict[str, int]:
    """Register the sandbox's trackers and some bot users following its people, through the services."""
    pool = await create_pool(database_url, size=2)
    try:
        trackers, people = TrackerService(pool, secret_key), BotUserService(pool)
        room = len(manifest["people"]) // max(1, len(manifest["trackers"])) + 5
        for tracker in manifest["trackers"]:
            account_id = await trackers.create_account(
                TrackerAccountCreate(
                    telegram_id=tracker["telegram_id"],
                    api_id=tracker["api_id"],
                    api_hash=tracker["api_hash"],
                    is_active=True,
                    is_auth=True,
                )
            )
            await trackers.create_setting(
                TrackerSettingCreate(
                    tracker_account_id=account_id,
                    phone_number=tracker["phone"],
                    session_string=tracker["session_string"],
                    max_users=room,
                )
            )
        usernames = [person["username"] for person in manifest["people"]]
        followed = 0
        for index, telegram_id in enumerate(DEMO_BOT_USERS):
            owner = await people.create_telegram_user(TelegramUserCreate(telegram_id=telegram_id, max_users=100))
            # Overlapping halves, so some targets have two subscribers and share one slot.
            share = usernames[index * len(usernames) // 4 :][: len(usernames) // 2 + 1]
            for username in share:
                await people.subscribe(TrackedUserCreate(telegram_user_id=owner, username=username))
                followed += 1
        return {"trackers": len(manifest["trackers"]), "people": len(usernames), "tracked_users": followed}
    finally:
        await pool.close()


def prepare_demo(
    admin_url: str, database_url: str, secret_key: str, *, trackers: int, people: int, rate: float
) -> DemoSandbox:
    """Reset the demo database, migrate it, start the sandbox and register everything."""
    from seeonline.database import migrations  # noqa: PLC0415

    asyncio.run(reset_database(admin_url, database_url))
    migrations.upgrade(database_url)
    sandbox = start_sandbox(trackers, people, rate)
    # Sandbox mode for this process and its children (the supervisor): sessions point at the sandbox.
    os.environ.update(sandbox.login_env)
    try:
        counts = asyncio.run(register(database_url, secret_key, sandbox.manifest))
    except BaseException:
        sandbox.stop()
        raise
    log.info("demo_registered", control_url=sandbox.manifest["control_url"], **counts)
    return sandbox

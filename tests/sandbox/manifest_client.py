"""A client that knows only a sandbox manifest and Telethon's public API (used by the CLI end-to-end test).

Usage: manifest_client.py MANIFEST USERNAME COUNT. Resolves USERNAME, adds it as a contact, prints ``ready``,
then prints ``online``/``offline`` for each of the next COUNT status pushes about that user.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from telethon import TelegramClient, events, functions
from telethon.sessions import StringSession


async def main(manifest_path: str, username: str, count: int) -> int:
    manifest = json.loads(Path(manifest_path).read_text())
    tracker = manifest["trackers"][0]
    client = TelegramClient(
        StringSession(tracker["session_string"]), tracker["api_id"], tracker["api_hash"], flood_sleep_threshold=0
    )
    seen: asyncio.Queue[str] = asyncio.Queue()
    await client.connect()
    me = await client.get_me()
    assert me.id == tracker["telegram_id"], me
    person = await client.get_entity(username)

    @client.on(events.UserUpdate(chats=[person.id]))  # type: ignore[untyped-decorator]
    async def on_status(event: events.UserUpdate.Event) -> None:
        if event.status is not None:
            await seen.put("online" if event.online else "offline")

    await client(functions.contacts.AddContactRequest(id=person, first_name=username, last_name="", phone=""))
    print("ready", flush=True)
    try:
        for _ in range(count):
            print(await asyncio.wait_for(seen.get(), 15), flush=True)
    finally:
        await client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))

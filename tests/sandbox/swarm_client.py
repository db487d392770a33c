"""A sandbox client process for the many-clients test: reads its config as JSON on stdin, reports on stdout.

Prints ``ready`` once connected, then one ``push <user_id> <StatusType>`` line per status update it receives,
and exits after seeing its expected user online (or after the timeout).
"""

from __future__ import annotations

import asyncio
import json
import sys

from telethon import TelegramClient, events
from telethon.sessions import StringSession


async def main() -> int:
    config = json.loads(sys.stdin.readline())
    client = TelegramClient(
        StringSession(config["session"]), config["api_id"], config["api_hash"], flood_sleep_threshold=0
    )
    done = asyncio.Event()

    @client.on(events.UserUpdate)  # type: ignore[untyped-decorator]
    async def on_update(event: events.UserUpdate.Event) -> None:
        if event.status is None:
            return
        print(f"push {event.user_id} {type(event.status).__name__}", flush=True)
        if event.user_id == config["expect"] and event.online:
            done.set()

    await client.connect()
    if not await client.is_user_authorized():
        print("unauthorized", flush=True)
        return 1
    print("ready", flush=True)
    try:
        await asyncio.wait_for(done.wait(), config.get("timeout", 30))
        # Linger briefly so a wrongly routed push would still be seen and reported.
        await asyncio.sleep(config.get("linger", 0.5))
    except TimeoutError:
        print("timeout", flush=True)
        return 2
    finally:
        await client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

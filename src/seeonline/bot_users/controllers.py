"""HTTP routes for /telegram-users and /tracked-users."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from seeonline.api.handler_types import AnyRequest, PathBigInt, PathId, Pool, Streams
from seeonline.api.listing import fetch_one, json_response, list_response, path_id
from seeonline.api.openapi import DOES_NOT_EXIST, DeletedCount, list_operation, query_operation, returns
from seeonline.api.params import choice_parser, in_path, parse_int
from seeonline.bot_users.resources import TELEGRAM_USERS, TRACKED_USERS
from seeonline.bot_users.schemas import (
    ROLES,
    USERNAME,
    PathUsername,
    TelegramUserCreate,
    TelegramUserOut,
    TelegramUserUpdate,
    TrackedUserCreate,
    TrackedUserOut,
    TrackedUserUpdate,
)
from seeonline.bot_users.service import BotUserService

BotUsers = NamedDependency[BotUserService]

parse_role = choice_parser(*ROLES)
PathRole = Annotated[str, in_path(parse_role)]
# A subscription names a bot user and maybe a tracker: either may be gone by the time it arrives.
SUBSCRIPTION_REFUSED = {
    400: f"{DOES_NOT_EXIST} (`telegram_user_id`, `tracker_account_id`)",
    403: "`banned`: the bot user is banned and cannot track anyone",
}
BY_BOT_USER = {"telegram_user__telegram_id": parse_int}


class TelegramUserController(Controller):
    """CRUD for the bot's users, plus bulk updates and deletes by role."""

    path = "/telegram-users"
    tags = ["telegram-users"]

    @get("/", operation_class=list_operation(TELEGRAM_USERS), responses=returns(TelegramUserOut, many=True))
    async def list_users(self, request: AnyRequest, pool: Pool, streams: Streams) -> Response[Any]:
        """List bot users."""
        return await list_response(pool, streams, TELEGRAM_USERS, request)

    @post("/", responses=returns(TelegramUserOut, status=201))
    async def create_user(self, bot_users: BotUsers, pool: Pool, data: JSONBody[TelegramUserCreate]) -> Response[bytes]:
        """Create a bot user."""
        user_id = await bot_users.create_telegram_user(data)
        return json_response(await fetch_one(pool, TELEGRAM_USERS, user_id), 201)

    @get("/{user_id:str}", responses=returns(TelegramUserOut))
    async def get_user(self, pool: Pool, user_id: PathId) -> Response[bytes]:
        """One bot user."""
        return json_response(await fetch_one(pool, TELEGRAM_USERS, path_id(user_id)))

    @patch("/{user_id:str}", responses=returns(TelegramUserOut))
    async def update_user(
        self, bot_users: BotUsers, pool: Pool, user_id: PathId, data: JSONBody[TelegramUserUpdate]
    ) -> Response[bytes]:
        """Update a bot user."""
        return await _update_one(bot_users, pool, path_id(user_id), data)

    @delete("/{user_id:str}", responses=returns(None))
    async def delete_user(self, bot_users: BotUsers, user_id: PathId) -> None:
        """Delete a bot user and their tracked users."""
        await bot_users.delete_telegram_users("id = $1", path_id(user_id))

    @patch("/by-telegram-id/{tg_id:str}", responses=returns(TelegramUserOut))
    async def update_by_telegram_id(
        self, bot_users: BotUsers, pool: Pool, tg_id: PathBigInt, data: JSONBody[TelegramUserUpdate]
    ) -> Response[bytes]:
        """Update the bot user with this Telegram id."""
        row_id = await bot_users.telegram_user_id_by_telegram_id(parse_int("tg_id", tg_id))
        return await _update_one(bot_users, pool, row_id, data)

    @delete("/by-telegram-id/{tg_id:str}", responses=returns(None))
    async def delete_by_telegram_id(self, bot_users: BotUsers, tg_id: PathBigInt) -> None:
        """Delete the bot user with this Telegram id."""
        await bot_users.delete_telegram_users("telegram_id = $1", parse_int("tg_id", tg_id))

    @patch("/by-role/{role:str}", responses=returns(TelegramUserOut, many=True))
    async def update_by_role(
        self, bot_users: BotUsers, pool: Pool, role: PathRole, data: JSONBody[TelegramUserUpdate]
    ) -> Response[bytes]:
        """Update every user with this role; answers the updated users."""
        ids = await bot_users.update_telegram_users("role = $1", parse_role("role", role), data)
        rows = await pool.fetch(
            f"SELECT {TELEGRAM_USERS.json}::text FROM {TELEGRAM_USERS.source} WHERE r.id = ANY($1) ORDER BY r.id", ids
        )
        return json_response("[" + ",".join(row[0] for row in rows) + "]")

    @delete("/by-role/{role:str}", status_code=200, responses=returns(DeletedCount))
    async def delete_by_role(self, bot_users: BotUsers, role: PathRole) -> dict[str, int]:
        """Delete every user with this role; answers ``{"deleted_count": N}``."""
        deleted = await bot_users.delete_telegram_users("role = $1", parse_role("role", role))
        return {"deleted_count": deleted}


async def _update_one(bot_users: BotUsers, pool: Pool, user_id: int, data: TelegramUserUpdate) -> Response[bytes]:
    await bot_users.update_telegram_users("id = $1", user_id, data)
    return json_response(await fetch_one(pool, TELEGRAM_USERS, user_id))


class TrackedUserController(Controller):
    """CRUD for tracked users; creation assigns a tracker slot."""

    path = "/tracked-users"
    tags = ["tracked-users"]

    @get("/", operation_class=list_operation(TRACKED_USERS), responses=returns(TrackedUserOut, many=True))
    async def list_tracked(self, request: AnyRequest, pool: Pool, streams: Streams) -> Response[Any]:
        """List tracked users."""
        return await list_response(pool, streams, TRACKED_USERS, request)

    @post("/", responses=returns(TrackedUserOut, status=201, refusals=SUBSCRIPTION_REFUSED))
    async def create_tracked(
        self, bot_users: BotUsers, pool: Pool, data: JSONBody[TrackedUserCreate]
    ) -> Response[bytes]:
        """Track a username for a bot user (quota, ban and slot checks)."""
        tracked_id = await bot_users.subscribe(data)
        return json_response(await fetch_one(pool, TRACKED_USERS, tracked_id), 201)

    @get("/{tracked_id:str}", responses=returns(TrackedUserOut))
    async def get_tracked(self, pool: Pool, tracked_id: PathId) -> Response[bytes]:
        """One tracked user."""
        return json_response(await fetch_one(pool, TRACKED_USERS, path_id(tracked_id)))

    @patch("/{tracked_id:str}", responses=returns(TrackedUserOut, refusals=SUBSCRIPTION_REFUSED))
    async def update_tracked(
        self, bot_users: BotUsers, pool: Pool, tracked_id: PathId, data: JSONBody[TrackedUserUpdate]
    ) -> Response[bytes]:
        """Update a tracked user."""
        return await _update_tracked(bot_users, pool, path_id(tracked_id), data)

    @delete("/{tracked_id:str}", responses=returns(None))
    async def delete_tracked(self, bot_users: BotUsers, tracked_id: PathId) -> None:
        """Stop tracking; frees the slot when it was the target's last tracked user."""
        await bot_users.unsubscribe(path_id(tracked_id))

    @patch(
        "/by-username/{username:str}",
        operation_class=query_operation(BY_BOT_USER),
        responses=returns(TrackedUserOut, refusals=SUBSCRIPTION_REFUSED),
    )
    async def update_by_username(
        self,
        request: AnyRequest,
        bot_users: BotUsers,
        pool: Pool,
        username: PathUsername,
        data: JSONBody[TrackedUserUpdate],
    ) -> Response[bytes]:
        """Update the one tracked user with this username (409 ambiguous_username if several)."""
        row_id = await _by_username(request, bot_users, username)
        return await _update_tracked(bot_users, pool, row_id, data)

    @delete(
        "/by-username/{username:str}",
        operation_class=query_operation(BY_BOT_USER),
        responses=returns(None),
    )
    async def delete_by_username(self, request: AnyRequest, bot_users: BotUsers, username: PathUsername) -> None:
        """Delete the one tracked user with this username (409 ambiguous_username if several)."""
        await bot_users.unsubscribe(await _by_username(request, bot_users, username))


async def _by_username(request: AnyRequest, bot_users: BotUsers, username: str) -> int:
    raw_bot_user = request.query_params.get("telegram_user__telegram_id")
    bot_user_id = parse_int("telegram_user__telegram_id", raw_bot_user) if raw_bot_user not in (None, "") else None
    return await bot_users.tracked_user_by_username(USERNAME("username", username), bot_user_id)


async def _update_tracked(bot_users: BotUsers, pool: Pool, tracked_id: int, data: TrackedUserUpdate) -> Response[bytes]:
    await bot_users.update_subscription(tracked_id, data)
    return json_response(await fetch_one(pool, TRACKED_USERS, tracked_id))

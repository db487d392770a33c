"""The old bot's client keeps working: its URL style, its query style, and its response models.

The bot (aiohttp + pydantic) builds ``{base}/{endpoint}/[{pk}/]?{params}``, sends booleans as
``true``/``false`` and validates responses with models whose non-optional fields must be present
with the right types. These Structs mirror those models' requirements.
"""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlencode

import msgspec

from tests.api.builders import Client, unique
from tests.support.sessions import session_string


class BotTrackerAccount(msgspec.Struct):
    id: int | None
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None
    telegram_id: int
    api_id: int
    api_hash: str
    is_active: bool = False
    is_auth: bool = False


class BotTrackerSetting(msgspec.Struct):
    id: int | None
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None
    tracker_account_id: int
    phone_number: str
    session_string: str | None = None
    max_users: int = 0
    current_users: int = 0


class BotTelegramUser(msgspec.Struct):
    id: int | None
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None
    telegram_id: int
    role: str = "user"
    current_users: int = 0
    max_users: int = 5


class BotTrackedUser(msgspec.Struct):
    id: int | None
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None
    tracker_account_id: int
    telegram_user_id: int
    username: str
    visible_online: bool = True


class BotOnlineStatus(msgspec.Struct):
    id: int | None
    created_at: datetime.datetime | None
    tracked_user_id: int
    is_online: bool


def bot_url(endpoint: str, pk: int | None = None, params: dict[str, Any] | None = None) -> str:
    url = f"/{endpoint}/"
    if pk is not None:
        url += f"{pk}/"
    if params:
        url += "?" + urlencode({key: value for key, value in params.items() if value is not None})
    return url


async def call(client: Client, method: str, url: str, model: type[Any], *, many: bool = False, data: Any = None) -> Any:
    response = await client.request(method, url, json=data)
    assert 200 <= response.status_code < 300, (method, url, response.status_code, response.text)
    target: Any = list.__class_getitem__(model) if many else model
    return msgspec.json.decode(response.content, type=target)


async def test_the_bot_flow_parses_every_response(client: Client) -> None:
    n = unique()
    account = await call(
        client,
        "POST",
        bot_url("tracker-accounts"),
        BotTrackerAccount,
        data={
            "telegram_id": 4_000 + n,
            "api_id": 4_100 + n,
            "api_hash": "0123456789abcdef",
            "is_active": True,
            "is_auth": True,
        },
    )
    await call(
        client,
        "GET",
        bot_url("tracker-accounts", params={"is_active": "true", "is_auth": "true"}),
        BotTrackerAccount,
        many=True,
    )
    setting = await call(
        client,
        "POST",
        bot_url("tracker-settings"),
        BotTrackerSetting,
        data={
            "tracker_account_id": account.id,
            "phone_number": f"+7{n:09d}",
            "session_string": session_string(),
            "max_users": 5,
        },
    )
    assert setting.session_string is None
    await call(
        client,
        "GET",
        bot_url("tracker-settings", params={"tracker_account__telegram_id": account.telegram_id}),
        BotTrackerSetting,
        many=True,
    )
    await call(
        client,
        "PATCH",
        f"/tracker-settings/by-phone-number/{setting.phone_number}",
        BotTrackerSetting,
        data={"max_users": 6},
    )

    user = await call(client, "POST", bot_url("telegram-users"), BotTelegramUser, data={"telegram_id": 5_000 + n})
    found = await call(
        client, "GET", bot_url("telegram-users", params={"telegram_id": user.telegram_id}), BotTelegramUser, many=True
    )
    assert [u.id for u in found] == [user.id]
    await call(
        client, "PATCH", f"/telegram-users/by-telegram-id/{user.telegram_id}", BotTelegramUser, data={"max_users": 7}
    )

    tracked = await call(
        client,
        "POST",
        bot_url("tracked-users"),
        BotTrackedUser,
        data={"telegram_user_id": user.id, "username": "bot_compat"},
    )
    assert tracked.tracker_account_id == account.id
    mine = await call(
        client,
        "GET",
        bot_url("tracked-users", params={"telegram_user__telegram_id": user.telegram_id, "visible_online": "true"}),
        BotTrackedUser,
        many=True,
    )
    assert [t.id for t in mine] == [tracked.id]
    status = await call(
        client,
        "POST",
        bot_url("online-statuses"),
        BotOnlineStatus,
        data={"tracked_user_id": tracked.id, "is_online": True},
    )
    history = await call(
        client,
        "GET",
        bot_url("online-statuses", params={"username": "bot_compat", "is_online": "true"}),
        BotOnlineStatus,
        many=True,
    )
    assert [s.id for s in history] == [status.id]
    await call(client, "GET", bot_url("online-statuses", status.id), BotOnlineStatus)

    assert (await client.delete(f"/online-statuses/by-tracked-user-id/{tracked.id}")).status_code == 200
    assert (await client.delete(bot_url("tracked-users", tracked.id))).status_code == 204
    assert (await client.delete(f"/telegram-users/by-telegram-id/{user.telegram_id}")).status_code == 204
    assert (await client.delete(f"/tracker-settings/by-tracker-telegram-id/{account.telegram_id}")).status_code == 204
    assert (await client.delete(f"/tracker-accounts/by-telegram-id/{account.telegram_id}")).status_code == 204

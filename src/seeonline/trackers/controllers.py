"""HTTP routes for /tracker-accounts and /tracker-settings."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from seeonline.api.handler_types import AnyRequest, PathBigInt, PathId, Pool, Streams, force_flag, query_flag
from seeonline.api.listing import fetch_one, json_response, list_response, path_id
from seeonline.api.openapi import DOES_NOT_EXIST, list_operation, query_operation, returns
from seeonline.api.params import parse_bool, parse_int
from seeonline.trackers import privacy_checks
from seeonline.trackers.resources import TRACKER_ACCOUNTS, TRACKER_SETTINGS
from seeonline.trackers.schemas import (
    PHONE,
    PathPhone,
    TrackerAccountCreate,
    TrackerAccountOut,
    TrackerAccountUpdate,
    TrackerPrivacyCheckOut,
    TrackerSettingCreate,
    TrackerSettingOut,
    TrackerSettingUpdate,
)
from seeonline.trackers.service import TrackerService

Trackers = NamedDependency[TrackerService]
FORCE = query_operation(
    {"force": parse_bool},
    described={"force": "true: delete even when the other trackers lack the room for its targets"},
)
SESSION_REFUSED = "`session_refused`: `session_string` was never logged in, or names an address outside Telegram's"
SETTING_REFUSED = {400: f"{DOES_NOT_EXIST} (`tracker_account_id`); {SESSION_REFUSED}"}


class TrackerAccountController(Controller):
    """CRUD for tracker accounts; ``api_hash`` is masked in every response."""

    path = "/tracker-accounts"
    tags = ["tracker-accounts"]

    @get("/", operation_class=list_operation(TRACKER_ACCOUNTS), responses=returns(TrackerAccountOut, many=True))
    async def list_accounts(self, request: AnyRequest, pool: Pool, streams: Streams) -> Response[Any]:
        """List tracker accounts."""
        return await list_response(pool, streams, TRACKER_ACCOUNTS, request)

    @post("/", responses=returns(TrackerAccountOut, status=201))
    async def create_account(
        self, pool: Pool, trackers: Trackers, data: JSONBody[TrackerAccountCreate]
    ) -> Response[bytes]:
        """Create a tracker account."""
        account_id = await trackers.create_account(data)
        return json_response(await fetch_one(pool, TRACKER_ACCOUNTS, account_id), 201)

    @get("/{account_id:str}", responses=returns(TrackerAccountOut))
    async def get_account(self, pool: Pool, account_id: PathId) -> Response[bytes]:
        """One tracker account."""
        return json_response(await fetch_one(pool, TRACKER_ACCOUNTS, path_id(account_id)))

    @patch("/{account_id:str}", responses=returns(TrackerAccountOut))
    async def update_account(
        self,
        pool: Pool,
        trackers: Trackers,
        account_id: PathId,
        data: JSONBody[TrackerAccountUpdate],
    ) -> Response[bytes]:
        """Update a tracker account; deactivating or de-authorizing it moves its targets."""
        row_id = path_id(account_id)
        await trackers.update_account(row_id, data)
        return json_response(await fetch_one(pool, TRACKER_ACCOUNTS, row_id))

    @delete("/{account_id:str}", operation_class=FORCE, responses=returns(None))
    async def delete_account(self, request: AnyRequest, trackers: Trackers, account_id: PathId) -> None:
        """Delete a tracker account after moving its targets (409 insufficient_capacity unless ?force=true)."""
        await trackers.delete_account(path_id(account_id), force=force_flag(request))

    @post(
        "/{account_id:str}/privacy-check",
        operation_class=query_operation(
            {"fix": parse_bool}, described={"fix": "true: set the rule to everybody if it is not"}
        ),
        responses={**returns(TrackerPrivacyCheckOut), 202: ResponseSpec(TrackerPrivacyCheckOut, description="Pending")},
        status_code=200,
    )
    async def check_privacy(self, request: AnyRequest, pool: Pool, account_id: PathId) -> Response[bytes]:
        """Ask the tracker's worker to check its last-seen privacy now (200 with the answer, 202 while pending)."""
        row_id = path_id(account_id)
        seq = await privacy_checks.request_check(pool, row_id, fix=query_flag(request, "fix"))
        body, done = await privacy_checks.answer(pool, row_id, seq)
        return json_response(body, 200 if done else 202)

    @get("/{account_id:str}/privacy-check", responses=returns(TrackerPrivacyCheckOut))
    async def privacy_check(self, pool: Pool, account_id: PathId) -> Response[bytes]:
        """The tracker's last privacy check (its worker runs one at start and every hour)."""
        body, _ = await privacy_checks.answer(pool, path_id(account_id))
        return json_response(body)

    @patch("/by-telegram-id/{telegram_id:str}", responses=returns(TrackerAccountOut))
    async def update_by_telegram_id(
        self,
        pool: Pool,
        trackers: Trackers,
        telegram_id: PathBigInt,
        data: JSONBody[TrackerAccountUpdate],
    ) -> Response[bytes]:
        """Update the tracker account with this Telegram id."""
        row_id = await trackers.account_id_by_telegram_id(parse_int("telegram_id", telegram_id))
        await trackers.update_account(row_id, data)
        return json_response(await fetch_one(pool, TRACKER_ACCOUNTS, row_id))

    @delete("/by-telegram-id/{telegram_id:str}", operation_class=FORCE, responses=returns(None))
    async def delete_by_telegram_id(self, request: AnyRequest, trackers: Trackers, telegram_id: PathBigInt) -> None:
        """Delete the tracker account with this Telegram id."""
        row_id = await trackers.account_id_by_telegram_id(parse_int("telegram_id", telegram_id))
        await trackers.delete_account(row_id, force=force_flag(request))


class TrackerSettingController(Controller):
    """CRUD for tracker settings; ``session_string`` is write-only."""

    path = "/tracker-settings"
    tags = ["tracker-settings"]

    @get("/", operation_class=list_operation(TRACKER_SETTINGS), responses=returns(TrackerSettingOut, many=True))
    async def list_settings(self, request: AnyRequest, pool: Pool, streams: Streams) -> Response[Any]:
        """List tracker settings."""
        return await list_response(pool, streams, TRACKER_SETTINGS, request)

    @post("/", responses=returns(TrackerSettingOut, status=201, refusals=SETTING_REFUSED))
    async def create_setting(
        self, pool: Pool, trackers: Trackers, data: JSONBody[TrackerSettingCreate]
    ) -> Response[bytes]:
        """Create a tracker setting; its capacity picks up waiting targets."""
        setting_id = await trackers.create_setting(data)
        return json_response(await fetch_one(pool, TRACKER_SETTINGS, setting_id), 201)

    @get("/{setting_id:str}", responses=returns(TrackerSettingOut))
    async def get_setting(self, pool: Pool, setting_id: PathId) -> Response[bytes]:
        """One tracker setting."""
        return json_response(await fetch_one(pool, TRACKER_SETTINGS, path_id(setting_id)))

    @patch("/{setting_id:str}", responses=returns(TrackerSettingOut, refusals={400: SESSION_REFUSED}))
    async def update_setting(
        self,
        pool: Pool,
        trackers: Trackers,
        setting_id: PathId,
        data: JSONBody[TrackerSettingUpdate],
    ) -> Response[bytes]:
        """Update a tracker setting; capacity and session changes rebalance targets."""
        return await _update_setting(pool, trackers, path_id(setting_id), data)

    @delete("/{setting_id:str}", operation_class=FORCE, responses=returns(None))
    async def delete_setting(self, request: AnyRequest, trackers: Trackers, setting_id: PathId) -> None:
        """Delete a tracker setting after moving its tracker's targets."""
        await trackers.delete_setting(path_id(setting_id), force=force_flag(request))

    @patch("/by-phone-number/{phone:str}", responses=returns(TrackerSettingOut, refusals={400: SESSION_REFUSED}))
    async def update_by_phone(
        self, pool: Pool, trackers: Trackers, phone: PathPhone, data: JSONBody[TrackerSettingUpdate]
    ) -> Response[bytes]:
        """Update the setting with this phone number."""
        row_id = await trackers.setting_id_by("phone_number", PHONE("phone", phone))
        return await _update_setting(pool, trackers, row_id, data)

    @delete("/by-phone-number/{phone:str}", operation_class=FORCE, responses=returns(None))
    async def delete_by_phone(self, request: AnyRequest, trackers: Trackers, phone: PathPhone) -> None:
        """Delete the setting with this phone number."""
        row_id = await trackers.setting_id_by("phone_number", PHONE("phone", phone))
        await trackers.delete_setting(row_id, force=force_flag(request))

    @patch("/by-tracker-telegram-id/{tg_id:str}", responses=returns(TrackerSettingOut, refusals={400: SESSION_REFUSED}))
    async def update_by_tracker(
        self, pool: Pool, trackers: Trackers, tg_id: PathBigInt, data: JSONBody[TrackerSettingUpdate]
    ) -> Response[bytes]:
        """Update the setting of the tracker with this Telegram id."""
        row_id = await trackers.setting_id_by("tracker_telegram_id", parse_int("tg_id", tg_id))
        return await _update_setting(pool, trackers, row_id, data)

    @delete("/by-tracker-telegram-id/{tg_id:str}", operation_class=FORCE, responses=returns(None))
    async def delete_by_tracker(self, request: AnyRequest, trackers: Trackers, tg_id: PathBigInt) -> None:
        """Delete the setting of the tracker with this Telegram id."""
        row_id = await trackers.setting_id_by("tracker_telegram_id", parse_int("tg_id", tg_id))
        await trackers.delete_setting(row_id, force=force_flag(request))


async def _update_setting(
    pool: Pool, trackers: Trackers, setting_id: int, data: TrackerSettingUpdate
) -> Response[bytes]:
    await trackers.update_setting(setting_id, data)
    return json_response(await fetch_one(pool, TRACKER_SETTINGS, setting_id))

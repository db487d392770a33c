"""RPC handlers for config, users, update state and the account's own status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telethon.tl import functions, types

from seeonline.sandbox.handler_kit import RpcContext, handles, input_user, now_utc

SANDBOX_DC_ID = 2


@handles(functions.help.GetConfigRequest, auth=False)
def get_config(ctx: RpcContext, _request: Any) -> Any:
    """Config whose every DC points back at the sandbox, so a migration could not leave it."""
    now = now_utc()
    host, port = ctx.server.host, ctx.server.port
    return types.Config(
        date=now,
        expires=now + timedelta(hours=1),
        test_mode=False,
        this_dc=SANDBOX_DC_ID,
        dc_options=[types.DcOption(id=dc, ip_address=host, port=port) for dc in range(1, 6)],
        dc_txt_domain_name="sandbox.invalid",
        chat_size_max=200,
        megagroup_size_max=200_000,
        forwarded_count_max=100,
        online_update_period_ms=210_000,
        offline_blur_timeout_ms=5_000,
        offline_idle_timeout_ms=30_000,
        online_cloud_timeout_ms=300_000,
        notify_cloud_delay_ms=30_000,
        notify_default_delay_ms=1_500,
        push_chat_period_ms=60_000,
        push_chat_limit=2,
        edit_time_limit=172_800,
        revoke_time_limit=2_147_483_647,
        revoke_pm_time_limit=2_147_483_647,
        rating_e_decay=2_419_200,
        stickers_recent_limit=200,
        channels_read_media_period=604_800,
        call_receive_timeout_ms=20_000,
        call_ring_timeout_ms=90_000,
        call_connect_timeout_ms=30_000,
        call_packet_timeout_ms=10_000,
        me_url_prefix="https://t.me/",
        caption_length_max=1024,
        message_length_max=4096,
        webfile_dc_id=SANDBOX_DC_ID,
    )


@handles(functions.help.GetNearestDcRequest, auth=False)
def get_nearest_dc(_ctx: RpcContext, _request: Any) -> Any:
    """Always the sandbox's one DC."""
    return types.NearestDc(country="ZZ", this_dc=SANDBOX_DC_ID, nearest_dc=SANDBOX_DC_ID)


@handles(functions.users.GetUsersRequest)
def get_users(ctx: RpcContext, request: Any) -> Any:
    """The requested users as this account sees them."""
    return [ctx.world.user_view(ctx.me.id, input_user(ctx, peer).id) for peer in request.id]


@handles(functions.users.GetFullUserRequest)
def get_full_user(ctx: RpcContext, request: Any) -> Any:
    """A minimal ``users.userFull``."""
    target = input_user(ctx, request.id)
    full = types.UserFull(
        id=target.id,
        settings=types.PeerSettings(),
        notify_settings=types.PeerNotifySettings(),
        common_chats_count=0,
        about=f"sandbox user {target.first_name}",
    )
    return types.users.UserFull(full_user=full, chats=[], users=[ctx.world.user_view(ctx.me.id, target.id)])


@handles(functions.updates.GetStateRequest)
def get_state(_ctx: RpcContext, _request: Any) -> Any:
    """A constant state: the sandbox never sends pts-carrying updates, only UpdateShort."""
    return types.updates.State(pts=1, qts=0, date=now_utc(), seq=0, unread_count=0)


@handles(functions.updates.GetDifferenceRequest)
def get_difference(_ctx: RpcContext, _request: Any) -> Any:
    """Nothing missed: statuses are never replayed (the real Telegram doesn't either)."""
    return types.updates.DifferenceEmpty(date=now_utc(), seq=0)


@handles(functions.account.UpdateStatusRequest)
def update_status(ctx: RpcContext, request: Any) -> Any:
    """Set the account itself online or offline; its watchers get the push."""
    ctx.world.set_status(ctx.me.id, online=not request.offline)
    return True

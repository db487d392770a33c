"""Logging in to the sandbox by phone code (and 2FA password) with an unmodified Telethon client."""

from __future__ import annotations

from typing import Any

import pytest
from telethon import errors

from seeonline.sandbox import SandboxServer
from seeonline.telegram import build_client
from seeonline.telegram.client import DC_ENV, RSA_KEY_ENV


@pytest.mark.usefixtures("login_env")
async def test_login_by_phone_code_then_reconnect_from_saved_session(sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account(username="tracker_login")
    client = build_client(None, account.api_id, account.api_hash)
    await client.connect()
    assert not await client.is_user_authorized()
    await client.send_code_request(account.phone)
    me = await client.sign_in(account.phone, account.login_code)
    assert me.id == account.id
    saved = client.session.save()
    await client.disconnect()

    again = build_client(saved, account.api_id, account.api_hash)
    await again.connect()
    try:
        assert await again.is_user_authorized()
        assert (await again.get_me()).username == "tracker_login"
    finally:
        await again.disconnect()


@pytest.mark.usefixtures("login_env")
async def test_login_with_two_factor_password(sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account(password="correct horse")
    client = build_client(None, account.api_id, account.api_hash)
    await client.connect()
    try:
        await client.send_code_request(account.phone)
        with pytest.raises(errors.SessionPasswordNeededError):
            await client.sign_in(account.phone, account.login_code)
        assert not await client.is_user_authorized()
        with pytest.raises(errors.PasswordHashInvalidError):
            await client.sign_in(password="wrong")
        me = await client.sign_in(password="correct horse")
        assert me.id == account.id
        assert await client.is_user_authorized()
        saved = client.session.save()
    finally:
        await client.disconnect()

    again = build_client(saved, account.api_id, account.api_hash)
    await again.connect()
    try:
        assert (await again.get_me()).id == account.id
    finally:
        await again.disconnect()


@pytest.mark.usefixtures("login_env")
async def test_wrong_code_and_unknown_phone_are_rejected(sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    client = build_client(None, account.api_id, account.api_hash)
    await client.connect()
    try:
        with pytest.raises(errors.PhoneNumberInvalidError):
            await client.send_code_request("+15550000000")
        await client.send_code_request(account.phone)
        with pytest.raises(errors.PhoneCodeInvalidError):
            await client.sign_in(account.phone, "00000")
    finally:
        await client.disconnect()


@pytest.mark.usefixtures("login_env")
async def test_log_out_unregisters_the_key(sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    session = sandbox.session_string_for(account)
    client = build_client(session, account.api_id, account.api_hash)
    await client.connect()
    assert await client.log_out()
    again = build_client(session, account.api_id, account.api_hash)
    await again.connect()
    try:
        assert not await again.is_user_authorized()
    finally:
        await again.disconnect()


def test_build_client_ignores_overrides_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DC_ENV, raising=False)
    monkeypatch.delenv(RSA_KEY_ENV, raising=False)
    client = build_client(None, 1, "hash")
    assert client.flood_sleep_threshold == 0
    assert client.session.server_address is None


@pytest.mark.usefixtures("login_env")
async def test_a_code_only_works_on_the_key_that_asked_for_it_and_expires(sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    asking = build_client(None, account.api_id, account.api_hash)
    other = build_client(None, account.api_id, account.api_hash)
    await asking.connect()
    await other.connect()
    try:
        sent = await asking.send_code_request(account.phone)
        with pytest.raises(errors.PhoneCodeExpiredError):
            await other.sign_in(account.phone, account.login_code, phone_code_hash=sent.phone_code_hash)
        sandbox.logins.code_ttl = 0.0
        with pytest.raises(errors.PhoneCodeExpiredError):
            await asking.sign_in(account.phone, account.login_code, phone_code_hash=sent.phone_code_hash)
    finally:
        await asking.disconnect()
        await other.disconnect()


@pytest.mark.usefixtures("login_env")
async def test_resend_flood_limit_banned_phone_and_unknown_app(sandbox: SandboxServer) -> None:
    from telethon.tl import functions, types  # noqa: PLC0415

    account = sandbox.world.add_account()
    banned = sandbox.world.add_account(banned=True)
    sandbox.logins.max_codes = 2
    client = build_client(None, account.api_id, account.api_hash)
    await client.connect()
    try:
        with pytest.raises(errors.PhoneNumberBannedError):
            await client.send_code_request(banned.phone)
        with pytest.raises(errors.ApiIdInvalidError):
            await client(functions.auth.SendCodeRequest(account.phone, 1, "nope", types.CodeSettings()))
        # Telethon remembers a flood wait per request type, so the flood comes last.
        sent = await client(
            functions.auth.SendCodeRequest(account.phone, account.api_id, account.api_hash, types.CodeSettings())
        )
        resent = await client(functions.auth.ResendCodeRequest(account.phone, sent.phone_code_hash))
        assert isinstance(resent.type, types.auth.SentCodeTypeSms)
        with pytest.raises(errors.PhoneCodeExpiredError):  # the old hash was replaced
            await client.sign_in(account.phone, account.login_code, phone_code_hash=sent.phone_code_hash)
        with pytest.raises(errors.FloodWaitError) as flood:
            await client(
                functions.auth.SendCodeRequest(account.phone, account.api_id, account.api_hash, types.CodeSettings())
            )
        assert flood.value.seconds > 3500
        me = await client.sign_in(account.phone, account.login_code, phone_code_hash=resent.phone_code_hash)
        assert me.id == account.id
    finally:
        await client.disconnect()


async def test_account_privacy_rule_can_be_read_and_set(sandbox: SandboxServer, connect: Any) -> None:
    from telethon.tl import functions, types  # noqa: PLC0415

    account = sandbox.world.add_account(privacy="nobody")
    key = types.InputPrivacyKeyStatusTimestamp()
    async with connect(account) as client:
        rules = (await client(functions.account.GetPrivacyRequest(key=key))).rules
        assert [type(r) for r in rules] == [types.PrivacyValueDisallowAll]
        await client(functions.account.SetPrivacyRequest(key=key, rules=[types.InputPrivacyValueAllowAll()]))
        rules = (await client(functions.account.GetPrivacyRequest(key=key))).rules
        assert [type(r) for r in rules] == [types.PrivacyValueAllowAll]
        with pytest.raises(errors.PrivacyKeyInvalidError):
            await client(functions.account.GetPrivacyRequest(key=types.InputPrivacyKeyPhoneCall()))
    assert account.user.privacy == "everybody"

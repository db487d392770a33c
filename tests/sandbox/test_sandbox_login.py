"""Logging in to the sandbox by phone code (and 2FA password) with an unmodified Telethon client."""

from __future__ import annotations

from pathlib import Path

import pytest
from telethon import errors

from seeonline.sandbox import SandboxServer
from seeonline.telegram import build_client
from seeonline.telegram.client import DC_ENV, RSA_KEY_ENV


@pytest.fixture
def login_env(sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test-only settings that point a fresh login at the sandbox and trust its RSA key."""
    key = tmp_path / "sandbox.pem"
    key.write_text(sandbox.rsa_public_key_pem())
    monkeypatch.setenv(DC_ENV, f"127.0.0.1:{sandbox.port}")
    monkeypatch.setenv(RSA_KEY_ENV, str(key))


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

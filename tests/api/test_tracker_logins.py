"""POST /tracker-logins/: logging a sandbox account in through the API with the unmodified Telethon client."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeAlias

import asyncpg
import httpx
import pytest

from seeonline.logging import configure_logging
from seeonline.sandbox import Account, SandboxServer
from seeonline.secrets import decrypt, login_secret, tracker_session
from seeonline.settings import Settings
from seeonline.telegram.client import DC_ENV
from tests.support.http import same_loop_client
from tests.support.keys import SECRET_KEY

pytestmark = pytest.mark.usefixtures("login_env")
Connection: TypeAlias = "asyncpg.Connection[Any]"
Api: TypeAlias = httpx.AsyncClient


def body(account: Account, **extra: Any) -> dict[str, Any]:
    """The POST body that logs ``account`` in."""
    return {
        "api_id": account.api_id,
        "api_hash": account.api_hash,
        "phone_number": f"+{account.phone}",
        "max_users": 7,
        **extra,
    }


async def start(client: Api, account: Account, **extra: Any) -> dict[str, Any]:
    response = await client.post("/tracker-logins/", json=body(account, **extra))
    assert response.status_code == 201, response.text
    login: dict[str, Any] = response.json()
    return login


async def step(client: Api, login: dict[str, Any], name: str, payload: dict[str, Any] | None = None) -> Any:
    return await client.post(f"/tracker-logins/{login['id']}/{name}", json=payload or {})


async def test_plain_login_creates_an_authorized_tracker_with_its_session(
    api: Api, sandbox: SandboxServer, db: Connection
) -> None:
    account = sandbox.world.add_account()
    login = await start(api, account)
    assert login["state"] == "code_sent"
    assert (login["code_type"], login["code_length"]) == ("app", 5)
    assert login["expires_at"].endswith("+00:00")
    # The code as an operator forwards it through the bot: with separators.
    response = await step(api, login, "code", {"code": "1-2 3-4 5"})
    assert response.status_code == 200, response.text
    done = response.json()
    assert (done["state"], done["privacy_ok"]) == ("done", True)
    tracker = (await api.get(f"/tracker-accounts/{done['tracker_account_id']}/")).json()
    assert (tracker["telegram_id"], tracker["is_auth"], tracker["is_active"]) == (account.id, True, True)
    setting = (await api.get(f"/tracker-settings/?tracker_account__telegram_id={account.id}")).json()[0]
    assert (setting["max_users"], setting["has_session"], setting["phone_number"]) == (7, True, f"+{account.phone}")
    # The stored session is the login's own auth key, logged in: the sandbox knows that key as this account.
    encrypted = await db.fetchval("SELECT session_encrypted FROM tracker_settings WHERE id = $1", setting["id"])
    from telethon.sessions import StringSession  # noqa: PLC0415

    key_id = StringSession(
        decrypt(SECRET_KEY, encrypted, tracker_session(setting["tracker_account_id"]))
    ).auth_key.key_id
    assert sandbox.world.account_for_key(key_id) is account
    # Nothing of the pre-login session is left behind.
    assert await db.fetchval("SELECT session_encrypted FROM tracker_logins WHERE id = $1", login["id"]) is None
    assert (await api.get(f"/tracker-logins/{login['id']}")).json()["state"] == "done"
    # Two HTTP calls, two connections, one auth key: the sandbox refuses a code on any other key.
    (sent,), (signed,) = sandbox.calls_to("auth.sendCode"), sandbox.calls_to("auth.signIn")
    assert sent.connection != signed.connection and signed.error is None


async def test_two_factor_login_with_a_wrong_then_the_right_password(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account(password="correct horse", password_hint="horse")
    login = await start(api, account)
    needed = (await step(api, login, "code", {"code": "12345"})).json()
    assert (needed["state"], needed["password_hint"]) == ("password_needed", "horse")
    wrong = await step(api, login, "password", {"password": "wrong"})
    assert (wrong.status_code, wrong.json()["code"], wrong.json()["field"]) == (400, "invalid_password", "password")
    done = await step(api, login, "password", {"password": "correct horse"})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "done"
    assert done.json()["password_hint"] is None
    # A finished login takes no more steps.
    again = await step(api, login, "password", {"password": "correct horse"})
    assert (again.status_code, again.json()["code"]) == (409, "wrong_state")


async def test_wrong_code_then_right_code(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    login = await start(api, account)
    wrong = await step(api, login, "code", {"code": "54321"})
    assert (wrong.status_code, wrong.json()["code"], wrong.json()["field"]) == (400, "invalid_code", "code")
    assert (await step(api, login, "code", {"code": "no digits"})).json()["code"] == "invalid_code"
    right = await step(api, login, "code", {"code": account.login_code})
    assert right.json()["state"] == "done"


async def test_expired_login_and_expired_code_are_409_code_expired(
    api: Api, sandbox: SandboxServer, db: Connection
) -> None:
    account = sandbox.world.add_account()
    login = await start(api, account)
    await db.execute("UPDATE tracker_logins SET expires_at = now() - interval '1 second' WHERE id = $1", login["id"])
    response = await step(api, login, "code", {"code": account.login_code})
    assert (response.status_code, response.json()["code"]) == (409, "code_expired")
    assert (await api.get(f"/tracker-logins/{login['id']}/")).json()["state"] == "expired"
    # Telegram's own code expiry (a few minutes) is the same answer; a resend brings a fresh code.
    sandbox.logins.code_ttl = 0.0
    second = await start(api, account)
    response = await step(api, second, "code", {"code": account.login_code})
    assert (response.status_code, response.json()["code"]) == (409, "code_expired")
    sandbox.logins.code_ttl = 300.0
    resent = await step(api, second, "resend")
    assert resent.status_code == 200, resent.text
    assert (await step(api, second, "code", {"code": account.login_code})).json()["state"] == "done"


async def test_resend_sends_the_code_again_on_the_same_key(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    login = await start(api, account)
    resent = await step(api, login, "resend")
    assert resent.status_code == 200, resent.text
    assert resent.json()["code_type"] == "sms"
    assert len(sandbox.calls_to("auth.resendCode")) == 1
    assert (await step(api, login, "code", {"code": account.login_code})).json()["state"] == "done"


async def test_flood_wait_on_send_is_429_with_retry_after(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    sandbox.inject_fault("auth.sendCode", "FLOOD_WAIT_120", count=1)
    response = await api.post("/tracker-logins/", json=body(account))
    assert (response.status_code, response.json()["code"]) == (429, "flood_wait")
    assert response.headers["retry-after"] == "120"
    # The sandbox's own limit: too many codes for one phone.
    sandbox.logins.max_codes = 1
    await start(api, account)
    limited = await api.post("/tracker-logins/", json=body(account))
    assert (limited.status_code, limited.json()["code"]) == (429, "flood_wait")
    assert int(limited.headers["retry-after"]) > 3000


async def test_phone_refusals_and_conflicts(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    unknown = await api.post("/tracker-logins/", json=body(account, phone_number="+1 555 000 0000"))
    assert (unknown.status_code, unknown.json()["code"], unknown.json()["field"]) == (
        400,
        "phone_invalid",
        "phone_number",
    )
    banned = sandbox.world.add_account(banned=True)
    refused = await api.post("/tracker-logins/", json=body(banned))
    assert (refused.status_code, refused.json()["code"]) == (403, "phone_banned")
    bad_app = await api.post("/tracker-logins/", json=body(account, api_hash="not-the-hash"))
    assert (bad_app.status_code, bad_app.json()["field"]) == (400, "api_id")


async def test_relogin_replaces_the_session_and_restores_is_auth(
    api: Api, sandbox: SandboxServer, db: Connection
) -> None:
    account = sandbox.world.add_account()
    first = await step(api, await start(api, account), "code", {"code": account.login_code})
    tracker_id = first.json()["tracker_account_id"]
    old = await db.fetchval("SELECT session_encrypted FROM tracker_settings WHERE tracker_account_id = $1", tracker_id)
    await db.execute("UPDATE tracker_accounts SET is_auth = false WHERE id = $1", tracker_id)
    await db.execute("INSERT INTO tracker_health (tracker_account_id, state) VALUES ($1, 'auth_lost')", tracker_id)
    again = await step(api, await start(api, account, max_users=9), "code", {"code": account.login_code})
    assert again.json()["tracker_account_id"] == tracker_id
    tracker = (await api.get(f"/tracker-accounts/{tracker_id}")).json()
    assert (tracker["is_auth"], tracker["health"]["state"]) == (True, "stopped")
    row = await db.fetchrow(
        "SELECT session_encrypted, max_users FROM tracker_settings WHERE tracker_account_id = $1", tracker_id
    )
    assert row is not None
    assert row["session_encrypted"] != old and row["max_users"] == 9
    assert await db.fetchval("SELECT count(*) FROM tracker_accounts") == 1


async def test_delete_mid_flow_forgets_the_login(api: Api, sandbox: SandboxServer, db: Connection) -> None:
    account = sandbox.world.add_account(password="pw")
    login = await start(api, account)
    assert (await step(api, login, "code", {"code": account.login_code})).json()["state"] == "password_needed"
    assert (await api.delete(f"/tracker-logins/{login['id']}/")).status_code == 204
    assert (await step(api, login, "password", {"password": "pw"})).status_code == 404
    assert (await api.get(f"/tracker-logins/{login['id']}")).status_code == 404
    assert (await api.delete(f"/tracker-logins/{login['id']}")).status_code == 404
    assert await db.fetchval("SELECT count(*) FROM tracker_logins") == 0
    assert await db.fetchval("SELECT count(*) FROM tracker_accounts") == 0


async def test_a_hidden_last_seen_is_reported_and_makes_the_tracker_unusable(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account(privacy="nobody")
    done = (await step(api, await start(api, account), "code", {"code": account.login_code})).json()
    assert (done["state"], done["privacy_ok"]) == ("done", False)
    tracker = (await api.get(f"/tracker-accounts/{done['tracker_account_id']}")).json()
    assert tracker["health"]["state"] == "privacy_misconfigured"
    assert "last seen" in tracker["health"]["last_error"]


async def test_unreachable_telegram_is_503_with_retry_after(
    api: Api, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = sandbox.world.add_account()
    from seeonline.local.embedded_postgres import find_free_port  # noqa: PLC0415

    monkeypatch.setenv(DC_ENV, f"127.0.0.1:{find_free_port()}")
    response = await api.post("/tracker-logins/", json=body(account))
    assert (response.status_code, response.json()["code"]) == (503, "telegram_unavailable")
    assert response.headers["retry-after"] == "5"


async def test_something_else_on_telegrams_address_is_503_too(
    api: Api, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def answer_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(64)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    proxy = await asyncio.start_server(answer_http, "127.0.0.1", 0)
    try:
        monkeypatch.setenv(DC_ENV, f"127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
        response = await api.post("/tracker-logins/", json=body(sandbox.world.add_account()))
    finally:
        proxy.close()
    assert (response.status_code, response.json()["code"]) == (503, "telegram_unavailable")


async def test_routes_answer_with_and_without_a_trailing_slash(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    response = await api.post("/tracker-logins", json=body(account))
    assert response.status_code == 201
    login = response.json()
    for path in (f"/tracker-logins/{login['id']}", f"/tracker-logins/{login['id']}/"):
        assert (await api.get(path, follow_redirects=False)).status_code == 200
    assert (await api.post(f"/tracker-logins/{login['id']}/resend/", follow_redirects=False)).status_code == 200
    bad = await api.post("/tracker-logins/", json={**body(account), "max_users": -1})
    assert (bad.status_code, bad.json()["field"]) == (400, "max_users")
    assert (await api.get("/tracker-logins/abc")).status_code == 400


async def test_secrets_of_a_login_never_reach_logs_or_responses(
    settings: Settings,
    sandbox: SandboxServer,
    db: Connection,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("debug", json=True)
    caplog.set_level(logging.DEBUG)
    account = sandbox.world.add_account(password="SECRET-password-2fa", login_code="97531")
    texts = []
    async with same_loop_client(settings) as http:
        login = await start(http, account)
        texts.append(str(login))
        texts.append((await http.get(f"/tracker-logins/{login['id']}")).text)
        stored = await db.fetchval("SELECT session_encrypted FROM tracker_logins WHERE id = $1", login["id"])
        pre_login_session = decrypt(SECRET_KEY, stored, login_secret("session_encrypted", login["id"]))
        for payload in ({"code": "9-7-5-3-0"}, {"code": "9-7-5-3-1"}):
            texts.append((await step(http, login, "code", payload)).text)
        for password in ("SECRET-wrong-password", "SECRET-password-2fa"):
            texts.append((await step(http, login, "password", {"password": password})).text)
        texts.append((await http.get("/tracker-accounts/")).text)
        texts.append((await http.get("/tracker-settings/")).text)
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "tracker_login_started" in logs and "tracker_login_done" in logs
    everything = logs + "".join(texts)
    assert "SECRET-" not in everything
    assert account.api_hash not in everything
    assert "97531" not in everything and "9-7-5-3" not in everything
    # The pre-login session (an auth key that becomes the tracker's once signed in), whole or in part.
    assert pre_login_session not in everything and pre_login_session[:40] not in everything
    assert stored not in everything


async def test_telegram_internal_errors_are_503_not_500(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    # Telethon retries a 5xx request_retries times; the last error must still reach the 503 mapping.
    sandbox.inject_fault("auth.sendCode", "INTERNAL", code=500)
    response = await api.post("/tracker-logins/", json=body(account))
    assert (response.status_code, response.json()["code"]) == (503, "telegram_unavailable")
    assert response.headers["retry-after"] == "5"
    sandbox.clear_faults()
    login = await start(api, account)
    sandbox.inject_fault("auth.signIn", "RPC_CALL_FAIL", code=500)
    failed = await step(api, login, "code", {"code": account.login_code})
    assert (failed.status_code, failed.json()["code"]) == (503, "telegram_unavailable")
    sandbox.clear_faults()
    assert (await step(api, login, "code", {"code": account.login_code})).json()["state"] == "done"


async def test_a_non_ascii_api_hash_is_400_api_id(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    response = await api.post("/tracker-logins/", json=body(account, api_hash="hash-ünïcode-²"))
    assert (response.status_code, response.json()["field"]) == (400, "api_id"), response.text


def key_id_of(session: str) -> int:
    from telethon.sessions import StringSession  # noqa: PLC0415

    key_id: int = StringSession(session).auth_key.key_id
    return key_id


async def test_a_clash_with_another_tracker_is_409_unique_and_the_signed_in_login_can_retry_the_save(
    api: Api, sandbox: SandboxServer, db: Connection
) -> None:
    other = sandbox.world.add_account()
    other_id = (await step(api, await start(api, other), "code", {"code": other.login_code})).json()[
        "tracker_account_id"
    ]
    # This account's app uses the api_id of the other tracker (a different Telegram id).
    account = sandbox.world.add_account()
    account.api_id = other.api_id
    login = await start(api, account)
    clash = await step(api, login, "code", {"code": account.login_code})
    assert (clash.status_code, clash.json()["code"], clash.json()["field"]) == (409, "unique", "api_id")
    # Telegram accepted the sign-in: the login keeps it (not code_sent with an authorized key).
    kept = (await api.get(f"/tracker-logins/{login['id']}")).json()
    assert kept["state"] == "signed_in"
    again = await step(api, login, "code", {"code": account.login_code})
    assert (again.status_code, again.json()["field"]) == (409, "api_id")
    assert len(sandbox.calls_to("auth.signIn")) == 2  # the retry did not sign in again
    # Once the clash is gone, repeating the call saves the tracker.
    assert (await api.delete(f"/tracker-accounts/{other_id}/?force=true")).status_code == 204
    done = await step(api, login, "code", {"code": account.login_code})
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["privacy_ok"]) == ("done", True)
    tracker = (await api.get(f"/tracker-accounts/{done.json()['tracker_account_id']}")).json()
    assert (tracker["telegram_id"], tracker["is_auth"]) == (account.id, True)
    row = await db.fetchrow("SELECT session_encrypted, tracker_account_id FROM tracker_settings")
    assert row is not None
    plain = decrypt(SECRET_KEY, row["session_encrypted"], tracker_session(row["tracker_account_id"]))
    assert sandbox.world.account_for_key(key_id_of(plain)) is account


async def test_relogin_of_a_tracker_created_without_a_setting_is_decided_by_telegram_id(
    api: Api, sandbox: SandboxServer, db: Connection
) -> None:
    account = sandbox.world.add_account()
    created = await api.post(
        "/tracker-accounts/",
        json={"telegram_id": account.id, "api_id": account.api_id, "api_hash": account.api_hash},
    )
    assert created.status_code == 201, created.text
    done = await step(api, await start(api, account), "code", {"code": account.login_code})
    assert done.status_code == 200, done.text
    assert done.json()["tracker_account_id"] == created.json()["id"]
    # The setting names another phone (changed since): still the same tracker, its setting follows.
    await db.execute("UPDATE tracker_settings SET phone_number = '+15550001234'")
    again = await step(api, await start(api, account), "code", {"code": account.login_code})
    assert again.status_code == 200, again.text
    assert again.json()["tracker_account_id"] == created.json()["id"]
    setting = (await api.get(f"/tracker-settings/?tracker_account__telegram_id={account.id}")).json()
    assert [row["phone_number"] for row in setting] == [f"+{account.phone}"]


async def test_a_failing_privacy_check_leaves_privacy_unknown_not_the_login_failed(
    api: Api, sandbox: SandboxServer
) -> None:
    account = sandbox.world.add_account()
    login = await start(api, account)
    sandbox.inject_fault("account.getPrivacy", drop=True)  # the network fails right after the sign-in
    done = await step(api, login, "code", {"code": account.login_code})
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["privacy_ok"]) == ("done", None)


async def test_delete_while_a_step_runs_is_409_login_busy_and_a_signed_in_login_is_logged_out(
    api: Api, sandbox: SandboxServer
) -> None:
    account = sandbox.world.add_account()
    login = await start(api, account)
    sandbox.inject_fault("auth.signIn", delay=1.5, count=1)
    signing = asyncio.ensure_future(step(api, login, "code", {"code": account.login_code}))
    await asyncio.sleep(0.5)
    busy = await api.delete(f"/tracker-logins/{login['id']}")
    assert (busy.status_code, busy.json()["code"]) == (409, "login_busy")
    assert (await signing).json()["state"] == "done"
    # A signed-in login whose save failed holds an authorized key: deleting it logs that key out.
    other = sandbox.world.add_account()
    other.api_id = account.api_id
    clashing = await start(api, other)
    assert (await step(api, clashing, "code", {"code": other.login_code})).status_code == 409
    assert [b for b in sandbox.world.keys.values() if b.account_id == other.id]  # signed in
    assert (await api.delete(f"/tracker-logins/{clashing['id']}")).status_code == 204
    assert len(sandbox.calls_to("auth.logOut")) == 1
    assert not [b for b in sandbox.world.keys.values() if b.account_id == other.id]


async def test_two_concurrent_code_calls_one_gets_409_login_busy(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account()
    login = await start(api, account)
    sandbox.inject_fault("auth.signIn", delay=1.0, count=1)
    first, second = await asyncio.gather(
        step(api, login, "code", {"code": account.login_code}), step(api, login, "code", {"code": account.login_code})
    )
    answers = sorted([(first.status_code, first.json().get("code")), (second.status_code, second.json().get("code"))])
    assert answers == [(200, None), (409, "login_busy")]
    assert (await api.get(f"/tracker-logins/{login['id']}")).json()["state"] == "done"


@pytest.mark.parametrize("code", ["1²345", "١٢٣٤٥", "12a45"])
async def test_only_ascii_digits_make_a_code(api: Api, sandbox: SandboxServer, code: str) -> None:
    account = sandbox.world.add_account()
    login = await start(api, account)
    refused = await step(api, login, "code", {"code": code})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_code")
    assert not sandbox.calls_to("auth.signIn")


async def test_phone_password_flood_is_429_flood_wait(api: Api, sandbox: SandboxServer) -> None:
    account = sandbox.world.add_account(password="pw")
    login = await start(api, account)
    assert (await step(api, login, "code", {"code": account.login_code})).json()["state"] == "password_needed"
    sandbox.inject_fault("auth.checkPassword", "PHONE_PASSWORD_FLOOD", code=400, count=1)
    flooded = await step(api, login, "password", {"password": "pw"})
    assert (flooded.status_code, flooded.json()["code"]) == (429, "flood_wait")
    assert "retry-after" in flooded.headers
    assert (await step(api, login, "password", {"password": "pw"})).json()["state"] == "done"

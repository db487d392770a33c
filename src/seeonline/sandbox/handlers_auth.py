"""RPC handlers for logging in by phone code (with 2FA, resends, expiry, flood limits) and logging out."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from telethon.tl import functions, types

from seeonline.sandbox.handler_kit import RpcContext, RpcError, handles
from seeonline.sandbox.srp import PasswordSecret, SrpChallenge, no_password_info
from seeonline.sandbox.world import Account

# Telegram's login codes stop working after a few minutes; tests shorten this.
DEFAULT_CODE_TTL = 300.0
# Codes one phone may be sent (auth.sendCode + auth.resendCode) per window before FLOOD_WAIT_X.
DEFAULT_MAX_CODES = 5
CODE_WINDOW = 3600.0


@dataclass(frozen=True)
class SentCode:
    """A code sent to an account, valid only on the auth key that asked for it (as on Telegram)."""

    account_id: int
    key_id: int
    sent_at: float


@dataclass
class LoginState:
    """Logins in progress: sent codes, keys waiting for their 2FA password, open SRP challenges."""

    codes: dict[str, SentCode] = field(default_factory=dict)
    awaiting_password: dict[int, int] = field(default_factory=dict)
    challenges: dict[int, SrpChallenge] = field(default_factory=dict)
    secrets: dict[int, PasswordSecret] = field(default_factory=dict)
    sends: dict[int, list[float]] = field(default_factory=dict)
    code_ttl: float = DEFAULT_CODE_TTL
    max_codes: int = DEFAULT_MAX_CODES

    def secret_for(self, account: Account) -> PasswordSecret:
        """The account's password verifier, derived once (PBKDF2 with 100000 rounds is slow)."""
        if account.password is None:
            raise ValueError("account has no password")
        if account.id not in self.secrets:
            self.secrets[account.id] = PasswordSecret.create(account.password)
        return self.secrets[account.id]

    def count_send(self, account: Account, now: float) -> None:
        """Record one code sent to the account, or raise FLOOD_WAIT_X when it had too many lately."""
        recent = [at for at in self.sends.get(account.id, []) if now - at < CODE_WINDOW]
        if len(recent) >= self.max_codes:
            raise RpcError(f"FLOOD_WAIT_{max(int(recent[0] + CODE_WINDOW - now), 1)}", 420)
        recent.append(now)
        self.sends[account.id] = recent

    def issue(self, ctx: RpcContext, account: Account, now: float) -> str:
        """A new phone_code_hash for the account, bound to the calling key."""
        code_hash = os.urandom(9).hex()
        self.codes[code_hash] = SentCode(account.id, _key_id(ctx), now)
        return code_hash

    def valid(self, ctx: RpcContext, code_hash: str, phone: str, now: float) -> SentCode:
        """The sent code ``code_hash`` names, or PHONE_CODE_EXPIRED (unknown, too old, other key or phone)."""
        sent = self.codes.get(code_hash)
        user = ctx.world.find_phone(phone)
        if sent is None or user is None or user.id != sent.account_id or sent.key_id != _key_id(ctx):
            raise RpcError("PHONE_CODE_EXPIRED", 400)
        if now - sent.sent_at > self.code_ttl:
            del self.codes[code_hash]
            raise RpcError("PHONE_CODE_EXPIRED", 400)
        return sent


def _key_id(ctx: RpcContext) -> int:
    key_id = ctx.connection.key_id
    assert key_id is not None  # an RPC only arrives encrypted, hence with a key
    return key_id


def _authorize(ctx: RpcContext, account: Account) -> Any:
    ctx.world.keys[_key_id(ctx)].account_id = account.id
    ctx.server.logins.awaiting_password.pop(_key_id(ctx), None)
    return types.auth.Authorization(user=ctx.world.user_view(account.id, account.id))


@handles(functions.auth.SendCodeRequest, auth=False)
def send_code(ctx: RpcContext, request: Any) -> Any:
    """Pretend to send the login code (the account's ``login_code``) to the app."""
    if ctx.world.find_app(request.api_id, request.api_hash) is None:
        raise RpcError("API_ID_INVALID", 400)
    user = ctx.world.find_phone(request.phone_number)
    if user is None or user.id not in ctx.world.accounts:
        raise RpcError("PHONE_NUMBER_INVALID", 400)
    account = ctx.world.accounts[user.id]
    if account.banned:
        raise RpcError("PHONE_NUMBER_BANNED", 400)
    now = time.time()
    ctx.server.logins.count_send(account, now)
    return types.auth.SentCode(
        type=types.auth.SentCodeTypeApp(length=len(account.login_code)),
        phone_code_hash=ctx.server.logins.issue(ctx, account, now),
        next_type=types.auth.CodeTypeSms(),
    )


@handles(functions.auth.ResendCodeRequest, auth=False)
def resend_code(ctx: RpcContext, request: Any) -> Any:
    """Send the code again, by SMS this time; the old hash stops working."""
    logins = ctx.server.logins
    now = time.time()
    sent = logins.valid(ctx, request.phone_code_hash, request.phone_number, now)
    account = ctx.world.accounts[sent.account_id]
    logins.count_send(account, now)
    del logins.codes[request.phone_code_hash]
    return types.auth.SentCode(
        type=types.auth.SentCodeTypeSms(length=len(account.login_code)),
        phone_code_hash=logins.issue(ctx, account, now),
    )


@handles(functions.auth.SignInRequest, auth=False)
def sign_in(ctx: RpcContext, request: Any) -> Any:
    """Check the code; 2FA accounts then need ``auth.checkPassword`` (SESSION_PASSWORD_NEEDED)."""
    logins = ctx.server.logins
    sent = logins.valid(ctx, request.phone_code_hash, request.phone_number, time.time())
    account = ctx.world.accounts[sent.account_id]
    if request.phone_code != account.login_code:
        raise RpcError("PHONE_CODE_INVALID", 400)
    del logins.codes[request.phone_code_hash]
    if account.password is not None:
        logins.awaiting_password[_key_id(ctx)] = account.id
        raise RpcError("SESSION_PASSWORD_NEEDED", 401)
    return _authorize(ctx, account)


def _password_account(ctx: RpcContext) -> Account:
    if ctx.account is not None:
        return ctx.account
    account_id = ctx.server.logins.awaiting_password.get(_key_id(ctx))
    if account_id is None:
        raise RpcError("AUTH_KEY_UNREGISTERED", 401)
    return ctx.world.accounts[account_id]


@handles(functions.account.GetPasswordRequest, auth=False)
def get_password(ctx: RpcContext, _request: Any) -> Any:
    """SRP parameters for the account logging in on this key (or logged in)."""
    account = _password_account(ctx)
    if account.password is None:
        return no_password_info()
    challenge = SrpChallenge.start(ctx.server.logins.secret_for(account))
    ctx.server.logins.challenges[challenge.srp_id] = challenge
    return challenge.password_info(hint=account.password_hint)


@handles(functions.auth.CheckPasswordRequest, auth=False)
def check_password(ctx: RpcContext, request: Any) -> Any:
    """Verify the SRP proof and finish the login."""
    account = _password_account(ctx)
    srp = request.password
    if not isinstance(srp, types.InputCheckPasswordSRP):
        raise RpcError("PASSWORD_HASH_INVALID", 400)
    challenge = ctx.server.logins.challenges.pop(srp.srp_id, None)
    if challenge is None:
        raise RpcError("SRP_ID_INVALID", 400)
    if not challenge.verify(srp.A, srp.M1):
        raise RpcError("PASSWORD_HASH_INVALID", 400)
    return _authorize(ctx, account)


@handles(functions.auth.LogOutRequest)
def log_out(ctx: RpcContext, _request: Any) -> Any:
    """Unbind the key from the account; later calls on it get AUTH_KEY_UNREGISTERED."""
    ctx.world.keys[_key_id(ctx)].account_id = None
    return types.auth.LoggedOut()

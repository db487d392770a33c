"""RPC handlers for logging in by phone code (with 2FA) and logging out."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from telethon.tl import functions, types

from seeonline.sandbox.rpc import RpcContext, RpcError, handles
from seeonline.sandbox.srp import PasswordSecret, SrpChallenge, no_password_info
from seeonline.sandbox.world import Account


@dataclass
class LoginState:
    """Logins in progress: sent codes, keys waiting for their 2FA password, open SRP challenges."""

    codes: dict[str, int] = field(default_factory=dict)
    awaiting_password: dict[int, int] = field(default_factory=dict)
    challenges: dict[int, SrpChallenge] = field(default_factory=dict)
    secrets: dict[int, PasswordSecret] = field(default_factory=dict)

    def secret_for(self, account: Account) -> PasswordSecret:
        """The account's password verifier, derived once (PBKDF2 with 100000 rounds is slow)."""
        if account.password is None:
            raise ValueError("account has no password")
        if account.id not in self.secrets:
            self.secrets[account.id] = PasswordSecret.create(account.password)
        return self.secrets[account.id]


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
    user = ctx.world.find_phone(request.phone_number)
    if user is None or user.id not in ctx.world.accounts:
        raise RpcError("PHONE_NUMBER_INVALID", 400)
    account = ctx.world.accounts[user.id]
    code_hash = os.urandom(9).hex()
    ctx.server.logins.codes[code_hash] = account.id
    return types.auth.SentCode(
        type=types.auth.SentCodeTypeApp(length=len(account.login_code)), phone_code_hash=code_hash
    )


@handles(functions.auth.SignInRequest, auth=False)
def sign_in(ctx: RpcContext, request: Any) -> Any:
    """Check the code; 2FA accounts then need ``auth.checkPassword`` (SESSION_PASSWORD_NEEDED)."""
    account_id = ctx.server.logins.codes.get(request.phone_code_hash)
    user = ctx.world.find_phone(request.phone_number)
    if account_id is None or user is None or user.id != account_id:
        raise RpcError("PHONE_CODE_EXPIRED", 400)
    account = ctx.world.accounts[account_id]
    if request.phone_code != account.login_code:
        raise RpcError("PHONE_CODE_INVALID", 400)
    del ctx.server.logins.codes[request.phone_code_hash]
    if account.password is not None:
        ctx.server.logins.awaiting_password[_key_id(ctx)] = account.id
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
    return challenge.password_info()


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

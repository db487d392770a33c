"""The Telegram half of a login: one short-lived client per step, on the login's saved pre-login session.

``auth.sendCode`` and ``auth.signIn`` must run on the same auth key (Telegram answers
PHONE_CODE_EXPIRED otherwise), so every step starts from the session the previous one saved and
saves it again. Telegram's refusals become ``ApiError``s with the stable codes of /tracker-logins/.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from seeonline.api.errors import ApiError
from seeonline.logging import get_logger
from seeonline.telegram.client import build_client
from seeonline.telegram.privacy import PrivacyReport, check_last_seen

log = get_logger(__name__)

# A whole step (connect, one or two calls, disconnect) may take this long before Telegram counts as unreachable.
STEP_TIMEOUT = 30.0
# After the sign-in, the privacy check gets this long of its own (the sign-in must not be lost to it).
PRIVACY_TIMEOUT = 10.0
UNREACHABLE_RETRY_AFTER = 5
PHONE_FLOOD_RETRY_AFTER = 3600
# No Telegram answers there: a network failure, or something else on that address (a proxy answering HTTP
# makes Telethon read a truncated packet, an EOFError).
UNREACHABLE = (
    OSError,
    TimeoutError,
    EOFError,
    errors.InvalidBufferError,
    errors.SecurityError,
    errors.TypeNotFoundError,
)


@dataclass(frozen=True)
class LoginKey:
    """What a step connects with: the pre-login session (None: a new one) and the app's credentials."""

    session: str | None
    api_id: int
    api_hash: str = field(repr=False)


@dataclass(frozen=True)
class SentCode:
    """What Telegram said about the code it sent."""

    phone_code_hash: str
    code_type: str
    code_length: int | None


@dataclass(frozen=True)
class SignedIn:
    """A finished login: the account's Telegram id, its session and its privacy check (None if unknown)."""

    telegram_id: int
    session: str
    privacy: PrivacyReport | None


class PasswordNeededError(Exception):
    """The account has 2FA: the login continues with its password."""

    def __init__(self, hint: str | None) -> None:
        super().__init__("password needed")
        self.hint = hint


def code_type_name(sent_type: Any) -> str:
    """``SentCodeTypeFlashCall`` -> ``flash_call``."""
    name = type(sent_type).__name__.removeprefix("SentCodeType")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() or "unknown"


def _sent_code(answer: Any) -> SentCode:
    if not isinstance(answer, types.auth.SentCode):
        raise ApiError(502, "Telegram answered the code request unexpectedly", code="telegram_error")
    return SentCode(answer.phone_code_hash, code_type_name(answer.type), getattr(answer.type, "length", None))


def _wait(seconds: int, what: str) -> ApiError:
    return ApiError(
        429,
        f"Telegram asks to wait {seconds} s before {what}",
        code="flood_wait",
        headers={"Retry-After": str(seconds)},
    )


# Telethon's error class -> (status, code, field, detail).
_REFUSALS: dict[type[Exception], tuple[int, str, str | None, str]] = {
    errors.PhoneNumberInvalidError: (400, "phone_invalid", "phone_number", "Telegram does not know this phone number"),
    errors.PhoneNumberUnoccupiedError: (400, "phone_invalid", "phone_number", "no Telegram account uses this phone"),
    errors.PhoneNumberBannedError: (403, "phone_banned", "phone_number", "Telegram banned this phone number"),
    errors.PhoneCodeInvalidError: (400, "invalid_code", "code", "the login code is wrong"),
    errors.PhoneCodeEmptyError: (400, "invalid_code", "code", "the login code is empty"),
    errors.PhoneCodeExpiredError: (409, "code_expired", None, "the login code expired: resend it or start again"),
    errors.AuthRestartError: (409, "code_expired", None, "Telegram asks to start the login again"),
    errors.PasswordHashInvalidError: (400, "invalid_password", "password", "the 2FA password is wrong"),
    errors.ApiIdInvalidError: (400, "api_id_invalid", "api_id", "Telegram rejects this api_id/api_hash pair"),
    errors.ApiIdPublishedFloodError: (400, "api_id_invalid", "api_id", "this api_id was published and is blocked"),
}


@contextlib.contextmanager
def telegram_errors(what: str) -> Iterator[None]:
    """Turn Telegram's refusals and outages inside the block into the API's errors."""
    try:
        yield
    except errors.FloodWaitError as exc:
        raise _wait(int(exc.seconds), what) from None
    except (errors.PhoneNumberFloodError, errors.PhonePasswordFloodError):
        raise _wait(PHONE_FLOOD_RETRY_AFTER, what) from None
    except errors.RPCError as exc:
        refusal = next((spec for cls, spec in _REFUSALS.items() if isinstance(exc, cls)), None)
        if refusal is not None:
            status, code, field, detail = refusal
            raise ApiError(status, detail, code=code, field=field) from None
        if isinstance(exc, errors.ServerError | errors.TimedOutError):
            raise _unreachable(f"Telegram had an internal error ({exc.code})") from None
        log.warning("login_telegram_refused", step=what, error=type(exc).__name__, rpc_code=exc.code)
        detail = f"Telegram refused {what}: {exc.code} {type(exc).__name__}"
        raise ApiError(502, detail, code="telegram_error") from None
    except UNREACHABLE as exc:
        log.warning("login_telegram_unreachable", step=what, error=type(exc).__name__)
        raise _unreachable("Telegram is unreachable, retry shortly") from None


def _unreachable(detail: str) -> ApiError:
    return ApiError(503, detail, code="telegram_unavailable", headers={"Retry-After": str(UNREACHABLE_RETRY_AFTER)})


@dataclass
class Step:
    """A connected login client and the step's deadline (which the privacy check may push back)."""

    client: TelegramClient
    deadline: asyncio.Timeout


@contextlib.asynccontextmanager
async def login_client(key: LoginKey, what: str) -> AsyncIterator[Step]:
    """A connected client on the key's session, always disconnected afterwards; errors translated."""
    client = build_client(
        key.session,
        key.api_id,
        key.api_hash,
        connection_retries=2,
        retry_delay=0.5,
        request_retries=2,
        receive_updates=False,
    )
    try:
        with telegram_errors(what):
            async with asyncio.timeout(STEP_TIMEOUT) as deadline:
                try:
                    await client.connect()
                except errors.AuthKeyNotFound:
                    if key.session is None:  # a key made a moment ago: Telegram is not itself
                        raise _unreachable("Telegram lost a new connection's key, retry shortly") from None
                    # The login's own key is forgotten: nothing of this login can be continued.
                    detail = "Telegram no longer knows this login's key: start a new login"
                    raise ApiError(409, detail, code="code_expired") from None
                yield Step(client, deadline)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), 5)


def saved(client: TelegramClient) -> str:
    """The client's session string (its auth key): the next step must use the same one."""
    text: str = client.session.save()
    return text


async def send_code(key: LoginKey, phone: str) -> tuple[SentCode, str]:
    """``auth.sendCode`` on a new (or the given) pre-login session; returns what was sent and the session."""
    async with login_client(key, "sending the code") as step:
        answer = await step.client.send_code_request(phone)
        return _sent_code(answer), saved(step.client)


async def resend_code(key: LoginKey, phone: str, code_hash: str) -> tuple[SentCode, str]:
    """``auth.resendCode`` (the next delivery type); when the old code expired, a fresh ``auth.sendCode``."""
    async with login_client(key, "resending the code") as step:
        try:
            answer = await step.client(functions.auth.ResendCodeRequest(phone, code_hash))
        except errors.PhoneCodeExpiredError:
            answer = await step.client.send_code_request(phone)
        return _sent_code(answer), saved(step.client)


async def _finish(step: Step, user: Any) -> SignedIn:
    """The signed-in result; any failure of the privacy check leaves privacy unknown, never the login failed."""
    signed_in = SignedIn(telegram_id=int(user.id), session=saved(step.client), privacy=None)
    # The check gets its own time even when the sign-in used up most of the step's.
    step.deadline.reschedule(asyncio.get_running_loop().time() + PRIVACY_TIMEOUT + 5)
    try:
        async with asyncio.timeout(PRIVACY_TIMEOUT):
            privacy = await check_last_seen(step.client)
    except Exception as exc:  # whatever failed, the sign-in stands (the worker re-checks at start)
        log.warning("login_privacy_check_failed", error=type(exc).__name__)
        return signed_in
    return SignedIn(telegram_id=signed_in.telegram_id, session=signed_in.session, privacy=privacy)


async def sign_in_with_code(key: LoginKey, phone: str, code: str, code_hash: str) -> SignedIn:
    """``auth.signIn``; raises ``PasswordNeededError`` (with the hint) when the account has 2FA.

    The 2FA step continues on the same auth key, which the saved session already holds.
    """
    async with login_client(key, "signing in") as step:
        try:
            user = await step.client.sign_in(phone, code, phone_code_hash=code_hash)
        except errors.SessionPasswordNeededError:
            password = await step.client(functions.account.GetPasswordRequest())
            raise PasswordNeededError(password.hint) from None
        return await _finish(step, user)


async def sign_in_with_password(key: LoginKey, password: str) -> SignedIn:
    """The 2FA step (SRP: the password itself never leaves this process)."""
    async with login_client(key, "checking the password") as step:
        user = await step.client.sign_in(password=password)
        return await _finish(step, user)


async def log_out(key: LoginKey) -> bool:
    """Best effort ``auth.logOut`` of a signed-in session nobody will use; whether Telegram confirmed it."""
    try:
        async with login_client(key, "logging out") as step:
            await step.client(functions.auth.LogOutRequest())
    except Exception as exc:  # best effort: the caller is already failing or forgetting the login
        log.warning("login_log_out_failed", error=type(exc).__name__)
        return False
    return True

"""The one login code path, used by the API and by ``seeonline tracker login``.

send the code -> sign in with it -> (2FA) sign in with the password -> the tracker is saved. Each step
leases the login's row, runs one short Telegram client on the login's saved pre-login session, then
stores where the login stands. Secrets (api_hash, session, code, password) are never logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar, cast

import asyncpg

from seeonline.api.errors import ApiError
from seeonline.api.listing import fetch_one
from seeonline.choices import LoginState
from seeonline.logging import get_logger
from seeonline.logins.accounts import ASCII_DIGITS, digits, save_tracker
from seeonline.logins.resources import TRACKER_LOGINS
from seeonline.logins.schemas import MAX_CODE_DIGITS, TrackerLoginCreate
from seeonline.logins.store import LoginRow, LoginStore

if TYPE_CHECKING:
    from types import ModuleType

    from seeonline.logins.telegram import LoginKey, SignedIn

log = get_logger(__name__)
T = TypeVar("T")


def clean_code(raw: str) -> str:
    """The digits of a code typed with separators (``1-2-3 4 5``), or a 400 ``invalid_code``.

    Separators are whatever is neither a letter nor a digit; what is left must be ASCII digits (a ``²``
    or an Arabic-Indic digit is not a code digit Telegram sent).
    """
    code = "".join(ch for ch in raw if ch.isalnum())
    if not code or len(code) > MAX_CODE_DIGITS or not set(code) <= ASCII_DIGITS:
        detail = "code: a login code is a few digits 0-9 (separators are fine)"
        raise ApiError(400, detail, code="invalid_code", field="code")
    return code


def _telegram() -> ModuleType:
    """The Telethon side, imported on first use: an API that never logs a tracker in never loads Telethon."""
    return importlib.import_module("seeonline.logins.telegram")


def _key(login: LoginRow) -> LoginKey:
    return cast("LoginKey", _telegram().LoginKey(login.session, login.api_id, login.api_hash))


class LoginService:
    """Tracker logins over Telegram, persisted between steps."""

    def __init__(self, pool: asyncpg.Pool, secret_key: str) -> None:
        self.pool = pool
        self.secret_key = secret_key
        self.store = LoginStore(pool, secret_key)

    async def render(self, login_id: int) -> str:
        """The login's JSON, or a 404."""
        return await fetch_one(self.pool, TRACKER_LOGINS, login_id)

    async def start(self, data: TrackerLoginCreate) -> int:
        """Ask Telegram to send the code; returns the new login's id.

        No uniqueness check here: only the signed-in account's Telegram id says whether this is a re-login
        of an existing tracker (which may keep its api_id and phone) or a clash with another (a 409 then).
        """
        phone = "+" + digits(data.phone_number)  # the Phone pattern guarantees at least one
        telegram = _telegram()
        sent, session = await telegram.send_code(telegram.LoginKey(None, data.api_id, data.api_hash), phone)
        login_id = await self.store.create(
            phone=phone,
            api_id=data.api_id,
            api_hash=data.api_hash,
            session=session,
            code_hash=sent.phone_code_hash,
            code_type=sent.code_type,
            code_length=sent.code_length,
            max_users=data.max_users,
            is_active=data.is_active,
        )
        log.info("tracker_login_started", login_id=login_id, api_id=data.api_id, code_type=sent.code_type)
        return login_id

    async def _leased(self, login: LoginRow, step: Awaitable[T]) -> T:
        """Run a Telegram step of a leased login; on any failure the lease ends (nothing else changes)."""
        try:
            return await step
        except BaseException:
            await self.store.release(login.id)
            raise

    async def resend(self, login_id: int) -> None:
        """Send the code again (Telegram picks the next delivery type)."""
        login = await self.store.claim(login_id, LoginState.CODE_SENT)
        assert login.session is not None and login.phone_code_hash is not None
        step = _telegram().resend_code(_key(login), login.phone_number, login.phone_code_hash)
        sent, session = await self._leased(login, step)
        await self.store.release(
            login_id,
            session_encrypted=self.store.seal_session(login_id, session),
            phone_code_hash=sent.phone_code_hash,
            code_type=sent.code_type,
            code_length=sent.code_length,
        )
        log.info("tracker_login_code_resent", login_id=login_id, code_type=sent.code_type)

    async def submit_code(self, login_id: int, raw_code: str) -> None:
        """Sign in with the code: the login is done, or needs the 2FA password.

        On a login already signed in (its save failed), only the save is retried.
        """
        code = clean_code(raw_code)
        login = await self.store.claim(login_id, LoginState.CODE_SENT, LoginState.SIGNED_IN)
        if login.state == LoginState.SIGNED_IN:
            await self._save(login)
            return
        assert login.session is not None and login.phone_code_hash is not None
        telegram = _telegram()
        try:
            signed_in = await telegram.sign_in_with_code(_key(login), login.phone_number, code, login.phone_code_hash)
        except telegram.PasswordNeededError as needed:
            await self.store.release(
                login_id, state=LoginState.PASSWORD_NEEDED, password_hint=needed.hint, phone_code_hash=None
            )
            log.info("tracker_login_password_needed", login_id=login_id)
            return
        except BaseException as exc:
            await self.store.release(login_id)
            if isinstance(exc, ApiError):
                log.info("tracker_login_code_refused", login_id=login_id, reason=exc.code)
            raise
        await self._signed_in(login, signed_in)

    async def submit_password(self, login_id: int, password: str) -> None:
        """Finish a 2FA login with the account's password (used for the SRP check only, never stored).

        On a login already signed in (its save failed), only the save is retried.
        """
        login = await self.store.claim(login_id, LoginState.PASSWORD_NEEDED, LoginState.SIGNED_IN)
        if login.state == LoginState.SIGNED_IN:
            await self._save(login)
            return
        assert login.session is not None
        step = _telegram().sign_in_with_password(_key(login), password)
        try:
            signed_in = await self._leased(login, step)
        except ApiError as exc:
            log.info("tracker_login_password_refused", login_id=login_id, reason=exc.code)
            raise
        await self._signed_in(login, signed_in)

    async def _signed_in(self, login: LoginRow, signed_in: SignedIn) -> None:
        """Keep the signed-in result (the session is an authorized key now), then save the tracker."""
        privacy_ok = None if signed_in.privacy is None else signed_in.privacy.ok
        privacy_detail = None if signed_in.privacy is None else signed_in.privacy.detail
        try:
            await self.store.record(
                login.id,
                state=LoginState.SIGNED_IN,
                session_encrypted=self.store.seal_session(login.id, signed_in.session),
                telegram_id=signed_in.telegram_id,
                privacy_ok=privacy_ok,
                privacy_detail=privacy_detail,
                phone_code_hash=None,
                password_hint=None,
            )
        except BaseException:
            # Nowhere to keep it: an authorized key nobody can use again must not stay valid at Telegram.
            log.warning("tracker_login_signed_in_not_recorded", login_id=login.id)
            telegram = _telegram()
            await telegram.log_out(telegram.LoginKey(signed_in.session, login.api_id, login.api_hash))
            with contextlib.suppress(Exception):
                await self.store.release(login.id)
            raise
        log.info("tracker_login_signed_in", login_id=login.id, telegram_id=signed_in.telegram_id)
        await self._save(
            dataclasses.replace(
                login,
                state=LoginState.SIGNED_IN,
                session=signed_in.session,
                telegram_id=signed_in.telegram_id,
                privacy_ok=privacy_ok,
                privacy_detail=privacy_detail,
            )
        )

    async def _save(self, login: LoginRow) -> None:
        # The login client has disconnected (telegram.* return only after it did): now the tracker may run.
        try:
            tracker_id = await save_tracker(self.pool, self.secret_key, login)
        except BaseException as exc:
            await self.store.release(login.id)  # still signed_in: repeating the step retries the save
            log.warning("tracker_login_not_saved", login_id=login.id, error=getattr(exc, "code", type(exc).__name__))
            raise
        log.info(
            "tracker_login_done",
            login_id=login.id,
            tracker_account_id=tracker_id,
            telegram_id=login.telegram_id,
            privacy_ok=login.privacy_ok,
        )

    async def delete(self, login_id: int) -> None:
        """Abandon a login (409 ``login_busy`` while a step runs); a signed-in session is logged out first."""
        deleted = await self.store.delete(login_id)
        if deleted.state == LoginState.SIGNED_IN and deleted.session is not None:
            telegram = _telegram()
            await telegram.log_out(telegram.LoginKey(deleted.session, deleted.api_id, deleted.api_hash))
        log.info("tracker_login_deleted", login_id=login_id)

"""HTTP routes for /tracker-logins: log a Telegram account in as a tracker, step by step."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from seeonline.api.handler_types import PathId
from seeonline.api.listing import json_response, path_id
from seeonline.api.openapi import ErrorBody, returns
from seeonline.logins.schemas import LoginCode, LoginPassword, TrackerLoginCreate, TrackerLoginOut
from seeonline.logins.service import LoginService

Logins = NamedDependency[LoginService]

TELEGRAM_ERRORS = {
    403: ResponseSpec(ErrorBody, description="`phone_banned`: Telegram banned this phone number"),
    429: ResponseSpec(ErrorBody, description="`flood_wait`: Telegram asks to wait (see Retry-After)"),
    502: ResponseSpec(ErrorBody, description="`telegram_error`: Telegram refused the step unexpectedly"),
    503: ResponseSpec(ErrorBody, description="`telegram_unavailable`: Telegram unreachable (see Retry-After)"),
}


def login_returns(status: int = 200, refused: str | None = None) -> dict[int, ResponseSpec]:
    """The responses of a login step: the login, or the contract's errors plus Telegram's (``refused``: its 400s)."""
    refusals = {400: refused} if refused else None
    return {**returns(TrackerLoginOut, status=status, refusals=refusals), **TELEGRAM_ERRORS}


class TrackerLoginController(Controller):
    """Phone-code logins of tracker accounts: code, then (2FA) password; done creates the tracker."""

    path = "/tracker-logins"
    tags = ["tracker-logins"]

    @post(
        "/",
        responses=login_returns(
            201, "Telegram's `api_id_invalid` (the api_id/api_hash pair) or `phone_invalid` (no such account)"
        ),
    )
    async def start_login(self, logins: Logins, data: JSONBody[TrackerLoginCreate]) -> Response[bytes]:
        """Start a login: Telegram sends the account a code (state code_sent; expires in 15 minutes)."""
        return json_response(await logins.render(await logins.start(data)), 201)

    @get("/{login_id:str}", responses=returns(TrackerLoginOut))
    async def get_login(self, logins: Logins, login_id: PathId) -> Response[bytes]:
        """Where a login stands (state code_sent, password_needed, signed_in, done or expired)."""
        return json_response(await logins.render(path_id(login_id)))

    @delete(
        "/{login_id:str}",
        responses={**returns(None), 409: ResponseSpec(ErrorBody, description="`login_busy`: a step is running")},
    )
    async def delete_login(self, logins: Logins, login_id: PathId) -> None:
        """Abandon a login (its pre-login session is deleted; a signed-in one is logged out first)."""
        await logins.delete(path_id(login_id))

    @post("/{login_id:str}/code", status_code=200, responses=login_returns(refused="Telegram's `invalid_code`"))
    async def submit_code(self, logins: Logins, login_id: PathId, data: JSONBody[LoginCode]) -> Response[bytes]:
        """Sign in with the code (separators allowed): state done, or password_needed with its hint."""
        row_id = path_id(login_id)
        await logins.submit_code(row_id, data.code)
        return json_response(await logins.render(row_id))

    @post("/{login_id:str}/password", status_code=200, responses=login_returns(refused="Telegram's `invalid_password`"))
    async def submit_password(self, logins: Logins, login_id: PathId, data: JSONBody[LoginPassword]) -> Response[bytes]:
        """Finish a 2FA login with the account's password (never stored or logged): state done."""
        row_id = path_id(login_id)
        await logins.submit_password(row_id, data.password)
        return json_response(await logins.render(row_id))

    @post("/{login_id:str}/resend", status_code=200, responses=login_returns())
    async def resend_code(self, logins: Logins, login_id: PathId) -> Response[bytes]:
        """Send the code again (Telegram picks the next delivery type, e.g. SMS)."""
        row_id = path_id(login_id)
        await logins.resend(row_id)
        return json_response(await logins.render(row_id))

"""Hostile inputs get the contract's 4xx answers, never a 500, and errors never echo a long input back."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.exceptions import InternalServerException
from litestar.routes import HTTPRoute

from seeonline.api.errors import from_validation_error, http_exception_handler
from seeonline.server.app import create_app
from seeonline.settings import Settings
from tests.api.builders import Client, create, person

BODY_METHODS = ("POST", "PUT", "PATCH")
PATH_PARAMETER = re.compile(r"\{[^}:]+(?::[^}]+)?\}")


def body_routes(app: Litestar) -> list[tuple[str, str]]:
    """Every (method, path) whose handler takes a JSON body, with each path parameter filled in."""
    routes = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if "data" not in handler.parsed_fn_signature.parameters:
                continue
            for method in handler.http_methods & set(BODY_METHODS):
                routes.add((method, PATH_PARAMETER.sub("1", route.path)))
    return sorted(routes)


@pytest.fixture
def routes(settings: Settings) -> list[tuple[str, str]]:
    found = body_routes(create_app(settings))
    assert len(found) >= 15, found  # every domain's create and update routes
    return found


NOT_JSON = ("parse_error", "Malformed JSON")
TOO_DEEP = ("parse_error", "JSON nested deeper than")


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        (b"[" * 20_000 + b"]" * 20_000, TOO_DEEP),
        (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, TOO_DEEP),
        (b'{"telegram_id": 1, "extra": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", TOO_DEEP),
        (b"{", NOT_JSON),
        (b"[", NOT_JSON),
        (b'{"telegram_id": 1}x', NOT_JSON),
        (b'{"telegram_id": NaN}', NOT_JSON),
        (b'{"a": "\xff"}', NOT_JSON),
        (b'{"a": "\\udfff"}', NOT_JSON),
        (b'{"telegram_id": 1e400}', ("invalid", "Number out of range")),  # JSON, but no double holds it
    ],
    ids=["deep-arrays", "deep-objects", "deep-in-an-unknown-field", "truncated-object", "truncated-array",
         "trailing", "nan", "bad-utf8", "lone-surrogate", "number-out-of-range"],
)  # fmt: skip
async def test_a_body_that_cannot_be_decoded_is_400_with_a_code_on_every_body_route(
    client: Client, routes: list[tuple[str, str]], body: bytes, answer: tuple[str, str]
) -> None:
    code, detail = answer
    for method, path in routes:
        response = await client.request(method, path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, (method, path, response.status_code, response.text[:200])
        got = response.json()
        assert got["code"] == code, (method, path, got)
        assert got["detail"].startswith(detail), (method, path, got)


def test_a_value_that_does_not_fit_stays_invalid_and_only_bad_syntax_is_a_parse_error() -> None:
    class Login(msgspec.Struct):
        api_id: int

    with pytest.raises(msgspec.ValidationError) as wrong_type:  # a DecodeError subclass: must not read as syntax
        msgspec.json.decode(b'{"api_id": "x"}', type=Login)
    misfit = from_validation_error(wrong_type.value)
    assert (misfit.code, misfit.field, misfit.detail) == ("invalid", "api_id", "api_id: Expected `int`, got `str`")
    with pytest.raises(msgspec.DecodeError) as bad_syntax:
        msgspec.json.decode(b'{"api_id": ', type=Login)
    assert from_validation_error(bad_syntax.value).code == "parse_error"


def test_a_server_error_caused_by_a_value_that_did_not_fit_stays_a_server_error() -> None:
    try:
        try:
            msgspec.convert("x", int)
        except msgspec.ValidationError as exc:
            raise InternalServerException from exc  # what Litestar raises when a dependency's value does not fit
    except InternalServerException as wrapped:
        response = http_exception_handler(None, wrapped)  # type: ignore[arg-type] # the request is not read
    assert response.status_code == 500


async def test_an_empty_body_where_one_is_required_says_so(client: Client) -> None:
    for path in ("/telegram-users/", "/online-statuses/", "/tracked-users/"):
        response = await client.post(path, content=b"", headers={"content-type": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert response.json() == {"detail": "A JSON body is required", "code": "parse_error"}, path


async def test_nesting_inside_strings_does_not_count(client: Client) -> None:
    user = await person(client)
    response = await client.patch(f"/telegram-users/{user['id']}/", json={"timezone": "[" * 500})
    assert response.status_code == 400
    assert response.json()["field"] == "timezone"


async def test_a_body_that_is_not_json_is_415_on_every_body_route(
    client: Client, routes: list[tuple[str, str]]
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        for method, path in routes:
            response = await client.request(method, path, content=b'{"telegram_id": 1}', headers=headers)
            assert response.status_code == 415, (method, path, content_type, response.text[:200])
            assert response.json()["code"] == "unsupported_media_type"


async def test_json_with_a_charset_and_bodiless_posts_still_pass(client: Client) -> None:
    response = await client.post(
        "/telegram-users/",
        content=b'{"telegram_id": 987654}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text
    # A POST without a body needs no Content-Type (the privacy-check and resend routes take none).
    account = await create(
        client, "/tracker-accounts/", {"telegram_id": 4242, "api_id": 4242, "api_hash": "h" * 32, "is_active": True}
    )
    checked = await client.post(f"/tracker-accounts/{account['id']}/privacy-check")
    assert checked.status_code != 415


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tracker-accounts%2F{id}"),
        ("GET", "/tracker-accounts%2f{id}/"),
        ("DELETE", "/tracker-accounts/by-telegram-id%2F4343"),
    ],
)
async def test_an_encoded_slash_is_not_a_path_separator(client: Client, method: str, path: str) -> None:
    account = await create(client, "/tracker-accounts/", {"telegram_id": 4343, "api_id": 4343, "api_hash": "x" * 32})
    response = await client.request(method, path.format(id=account["id"]))
    assert response.status_code == 404, response.text
    assert response.json()["detail"]
    assert (await client.get(f"/tracker-accounts/{account['id']}/")).status_code == 200  # it was not deleted
    # Encoded slashes in a query value are just characters.
    assert (await client.get("/tracked-users/?username=a%2Fb")).status_code == 200


LONG = "x" * 8_000  # far more than an error may quote (httpx refuses URLs over 64 KiB)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/telegram-users/?telegram_id={LONG}", None),
        ("GET", f"/tracker-accounts/?is_active={LONG}", None),
        ("GET", f"/tracked-users/?visible_online={LONG}", None),
        ("GET", f"/online-statuses/?created_at_after={LONG}", None),
        ("GET", f"/telegram-users/?role={LONG}", None),
        ("GET", f"/telegram-users/?ordering={LONG}", None),
        ("GET", f"/telegram-users/?limit={LONG}", None),
        ("GET", f"/telegram-users/{LONG}/", None),
        ("POST", "/telegram-users/", {"telegram_id": 1, "role": LONG}),
        ("POST", "/telegram-users/", {"telegram_id": 1, "timezone": LONG}),
        ("POST", "/telegram-users/", {"telegram_id": LONG}),
        ("POST", "/tracked-users/", {"telegram_user_id": 1, "username": LONG}),
    ],
)
async def test_errors_do_not_echo_long_inputs(client: Client, method: str, path: str, body: Any) -> None:
    response = await client.request(method, path, json=body)
    assert 400 <= response.status_code < 500, response.text[:300]
    assert len(response.content) < 600, response.text[:700]
    assert "x" * 300 not in response.text


async def test_a_huge_limit_is_lowered_to_the_maximum_page(client: Client, db: Any) -> None:
    await db.execute("INSERT INTO telegram_users (telegram_id) SELECT 7_000_000 + i FROM generate_series(1, 1205) AS i")
    response = await client.get("/telegram-users/?limit=4611686018427387904")
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 1000  # one page of at most 1,000 rows, however large the limit
    assert 'rel="next"' in response.headers["link"]
    assert "limit=1000&offset=1000" in response.headers["link"]
    last = await client.get("/telegram-users/?limit=99999999999999999999999&offset=1000")
    assert len(last.json()) == 205
    assert "link" not in last.headers


@pytest.mark.parametrize("offset", ["abc", "-1", "1.5", "99999999999999999999"])
async def test_offset_without_limit_is_validated(client: Client, offset: str) -> None:
    for query in (f"offset={offset}", f"offset={offset}&limit=0", f"offset={offset}&limit=5"):
        response = await client.get(f"/telegram-users/?{query}")
        assert response.status_code == 400, (query, response.text)
        assert response.json()["field"] == "offset"


async def test_a_negative_or_malformed_limit_is_still_400(client: Client) -> None:
    for limit in ("-1", "abc", "1e3"):
        response = await client.get(f"/telegram-users/?limit={limit}")
        assert response.status_code == 400
        assert response.json()["field"] == "limit"

"""Schema-driven fuzzing of every route against a real server process: no input may produce a 500.

Schemathesis generates requests from the app's own OpenAPI document (valid and invalid bodies,
query strings and path values) and sends them, with the API key, to ``seeonline api``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from seeonline.processes import stop_child
from seeonline.sandbox.process import sandbox_command_line
from tests.api.live_server import running_api
from tests.support.keys import API_KEY
from tests.support.postgres import PostgresServer, new_database
from tests.support.sessions import session_string

MAX_EXAMPLES = int(os.environ.get("SEEONLINE_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
async def fuzz_database(postgres_server: PostgresServer, template_database: str) -> AsyncIterator[str]:
    name = await new_database(postgres_server, template_database)
    yield postgres_server.url(name)
    await postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``seeonline sandbox`` in a subprocess, so the fuzzed logins reach a Telegram; yields its ready line."""
    manifest = tmp_path_factory.mktemp("fuzz-sandbox") / "manifest.json"
    command = sandbox_command_line(trackers=1, people=0, manifest=manifest, simulate=0.0)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        ready: dict[str, Any] = json.loads(process.stdout.readline())
        ready["tracker"] = json.loads(manifest.read_text())["trackers"][0]
        yield ready
    finally:
        stop_child(process)


@pytest.fixture(scope="module")
def api_server(fuzz_database: str, sandbox_process: dict[str, Any]) -> Iterator[str]:
    """``seeonline api`` in a subprocess, with a few rows so generated ids sometimes exist."""
    with running_api(fuzz_database, **sandbox_process["login_env"]) as base:
        seed(base, sandbox_process["tracker"])
        yield base


def seed(base: str, sandbox_tracker: dict[str, Any]) -> None:
    headers = {"X-API-Key": API_KEY}
    with httpx.Client(base_url=base, headers=headers) as http:
        login = http.post(
            "/tracker-logins/",
            json={
                "api_id": sandbox_tracker["api_id"],
                "api_hash": sandbox_tracker["api_hash"],
                "phone_number": sandbox_tracker["phone"],
                "max_users": 1,
            },
        )
        assert login.status_code == 201, login.text
        account = http.post(
            "/tracker-accounts/",
            json={"telegram_id": 1, "api_id": 1, "api_hash": "fuzz-hash-1", "is_active": True, "is_auth": True},
        ).json()
        http.post(
            "/tracker-settings/",
            json={
                "tracker_account_id": account["id"],
                "phone_number": "1",
                "session_string": session_string(),
                "max_users": 1000,
            },
        )
        person = http.post("/telegram-users/", json={"telegram_id": 1, "max_users": 1000}).json()
        tracked = http.post(
            "/tracked-users/", json={"telegram_user_id": person["id"], "username": "fuzz_target"}
        ).json()
        http.post("/online-statuses/", json={"tracked_user_id": tracked["id"], "is_online": True})


def test_no_input_produces_a_server_error(api_server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server}/schema/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself must be valid
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def exercise(case: Any) -> None:
            if case.path.rstrip("/") == "/events":
                # An accepted event stream never ends: check its status and hang up.
                opened = case.call(base_url=api_server, headers={"X-API-Key": API_KEY}, stream=True, timeout=10)
                if opened.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} {case.query} -> {opened.status_code}")
                if opened.status_code in (200, 429) or opened.status_code >= 500:
                    return
            response = case.call(base_url=api_server, headers={"X-API-Key": API_KEY})
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} {case.body!r} -> {response.status_code}"
                )
                return
            # Every answer, success or error, has the shape the OpenAPI document promises.
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except (AssertionError, FailureGroup) as exc:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {str(exc)[:400]}")

        exercise()
    assert operations >= 35  # every route of the contract was exercised
    assert not failures, "\n".join(failures[:20])

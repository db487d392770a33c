"""Schema-driven fuzzing of every route against a real server process: the OpenAPI document tells the truth.

Schemathesis generates requests from the app's own OpenAPI document and sends them, with the API key, to
``seeonline api``. Requests the schema allows must be accepted (unless what exists refuses them, see
``expected_refusal``) and answered as documented; requests it does not allow must never produce a 500.
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
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from seeonline.processes import stop_child
from seeonline.sandbox.process import sandbox_command_line
from tests.api.live_server import running_api
from tests.support.keys import API_KEY
from tests.support.postgres import PostgresServer, new_database
from tests.support.sessions import session_string

Operation = APIOperation[Any, Any, Any, Any]
MAX_EXAMPLES = int(os.environ.get("SEEONLINE_FUZZ_EXAMPLES", "25"))  # per operation, for schema-valid data
NEGATIVE_EXAMPLES = int(os.environ.get("SEEONLINE_FUZZ_NEGATIVE_EXAMPLES", "10"))  # per operation, for invalid data


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
    # A quick first ping, so that an accepted event stream sends its headers at once.
    with running_api(fuzz_database, SEEONLINE_EVENTS_PING_INTERVAL="0.1", **sandbox_process["login_env"]) as base:
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


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
]
NEGATIVE_CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Refusals of a well-formed request that depend on what exists (rows, Telegram's answer, open streams), so no
# schema can rule them out; each has its own code, and the operation that gives it must document it.
STATE_CODES = {
    "does_not_exist": "a referenced id is drawn at random and rarely names a row",
    "invalid_range": "two dates drawn apart make a window that runs backwards or longer than allowed",
    "session_refused": "a session string of the right form, but its key or address is not one this server uses",
    "url_refused": "a URL of the right form whose host does not resolve (no DNS here) or is private",
    "api_id_invalid": "Telegram (the sandbox) knows only its own api_id/api_hash pairs",
    "phone_invalid": "Telegram (the sandbox) knows only its own phone numbers",
    "invalid_code": "Telegram (the sandbox) expects the code it sent",
    "invalid_password": "Telegram (the sandbox) expects the account's 2FA password",
    "flood_wait": "Telegram (the sandbox) limits how many codes one phone gets",
    "too_many_streams": "the event streams this test opened may still be closing",
}


def expected_refusal(operation: Operation, status: int, code: str | None) -> bool:
    """Whether a schema-valid request may be refused like this because of state rather than its form."""
    if status == 404:  # a path names a row; ids and keys are drawn at random
        return "{" in operation.path
    if status in (403, 409):  # by the contract: a conflict with existing rows, a banned owner or phone
        return operation.method.upper() in WRITES
    if status in (400, 429) and code in STATE_CODES:
        documented = operation.definition.raw.get("responses", {}).get(str(status), {}).get("description", "")
        return f"`{code}`" in documented
    return False


def error_code(response: Any) -> str | None:
    """The ``code`` of an error body, if it is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def test_the_document_tells_the_truth(api_server: str) -> None:
    """Every operation accepts what its schema allows, answers as documented, and never fails on bad input."""
    # Only 2xx/3xx count as accepting; the refusals that state explains are let through by expected_refusal.
    accepting = {"positive_data_acceptance": {"expected-statuses": ["2xx", "3xx"]}}
    schema = schemathesis.openapi.from_url(
        f"{api_server}/schema/openapi.json", config=SchemathesisConfig.from_dict({"checks": accepting})
    )
    mismatches: dict[str, list[str]] = {}
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself must be valid
        operation = result.ok()
        operations += 1
        failures = mismatches.setdefault(f"{operation.method.upper()} {operation.path}", [])
        for mode, examples in ((GenerationMode.POSITIVE, MAX_EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
            exercise(api_server, operation, mode, examples, failures)
    assert operations >= 60  # every route was exercised
    wrong = {label: found for label, found in mismatches.items() if found}
    report = "\n".join(f"{label} ({len(found)}x): {found[0]}" for label, found in wrong.items())
    assert not wrong, f"{len(wrong)} of {operations} operations do not do what the document says:\n{report}"


def exercise(api_server: str, operation: Operation, mode: GenerationMode, examples: int, failures: list[str]) -> None:
    """Send ``examples`` generated requests of ``mode`` to ``operation``, collecting what does not match."""
    checks = CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS

    # Reproducible (derandomized, no example database) and bounded: mismatches are collected, not shrunk.
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        label = f"{mode.value} {case.method} {case.formatted_path} {case.query}"
        if operation.path.rstrip("/") == "/events":
            response: Any = call_event_stream(case, api_server, label, failures)
            if response is None:
                return
        else:
            response = case.call(base_url=api_server, headers={"X-API-Key": API_KEY}, timeout=30)
        applied = checks
        if expected_refusal(operation, response.status_code, error_code(response)):
            applied = [check for check in checks if check is not positive_data_acceptance]
        try:
            case.validate_response(response, checks=applied)
        except (AssertionError, FailureGroup) as exc:
            answer = f"{response.status_code} {response.text[:200]}"
            failures.append(f"{label} {case.body!r:.200} -> {answer}: {str(exc)[:300]}")

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # An operation without parameters or body (/health) has nothing that could be made invalid.


def call_event_stream(case: Any, api_server: str, label: str, failures: list[str]) -> httpx.Response | None:
    """``case`` sent to GET /events; None once an accepted stream's status and type are checked (it never ends)."""
    sent = case.as_transport_kwargs(base_url=api_server, headers={"X-API-Key": API_KEY})
    request = {"params": sent["params"], "headers": sent["headers"], "timeout": 10}
    with httpx.stream(sent["method"], sent["url"], **request) as opened:
        if opened.status_code == 200:
            if not opened.headers.get("content-type", "").startswith("text/event-stream"):
                failures.append(f"{label} -> 200 {opened.headers.get('content-type')}")
            return None
        opened.read()
        return opened

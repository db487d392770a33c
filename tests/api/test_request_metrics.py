"""``/metrics`` counts the API's requests and times them, per route template and status."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from seeonline.server.request_metrics import DURATION, REQUESTS
from tests.api.builders import Client


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def _for_route(samples: dict[tuple[tuple[str, str], ...], float], **wanted: str) -> float:
    return sum(v for labels, v in samples.items() if wanted.items() <= dict(labels).items())


async def test_requests_are_counted_and_timed_per_route_template(client: Client) -> None:
    before = (await client.get("/metrics")).text
    for n in range(3):
        assert (await client.post("/telegram-users/", json={"telegram_id": 70_000 + n})).status_code == 201
    created = (await client.get("/telegram-users/")).json()
    assert (await client.get(f"/telegram-users/{created[0]['id']}/")).status_code == 200
    assert (await client.get("/telegram-users/999999999/")).status_code == 404
    assert (await client.get("/no-such-route/at-all/")).status_code == 404
    after = (await client.get("/metrics")).text

    counts_before, counts = _samples(before, REQUESTS), _samples(after, REQUESTS)
    post = {"method": "POST", "path": "/telegram-users", "status_code": "201"}
    assert _for_route(counts, **post) - _for_route(counts_before, **post) == 3
    by_id = [dict(labels)["path"] for labels in counts if "{" in dict(labels)["path"]]
    assert by_id, "a route with a path parameter is labelled by its template, not by each id"
    assert not any(re.search(r"/\d+", dict(labels)["path"]) for labels in counts)
    assert not any("no-such-route" in dict(labels)["path"] for labels in counts)
    assert _for_route(counts, method="GET", status_code="404") >= 1

    durations = _samples(after, f"{DURATION}_count")
    assert _for_route(durations, method="POST", path="/telegram-users") >= 3
    assert _samples(after, f"{DURATION}_bucket"), "latency is a histogram"


async def test_the_openapi_document_says_metrics_are_prometheus_text(client: Client) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    content = schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain; version=0.0.4"]
    answered = await client.get("/metrics")
    assert answered.headers["content-type"].startswith("text/plain")

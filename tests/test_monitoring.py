"""The monitoring profile asks only for metrics the services export, where they export them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from seeonline_supervisor import metrics as supervisor_metrics
from tests.api.builders import Client

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "seeonline.json"
METRIC_NAME = re.compile(r"\bseeonline_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def dashboard_metrics() -> set[str]:
    """Every metric name the dashboard's queries use."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    assert exprs
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


def scraped_names(text: str) -> set[str]:
    """Sample names, and the names of gauge families declared without samples yet (no trackers)."""
    families = list(text_string_to_metric_families(text))
    return {sample.name for family in families for sample in family.samples} | {
        family.name for family in families if family.type == "gauge"
    }


def supervisor_names() -> set[str]:
    """The sample names the supervisor serves: its metric objects, and the workers-by-state gauge."""
    names = {"seeonline_supervisor_workers"}
    for value in vars(supervisor_metrics).values():
        if isinstance(value, MetricWrapperBase):
            names |= {value._name + suffix for suffix in SUFFIXES[str(value._type)]}
    return names


async def test_every_dashboard_query_names_an_exported_metric(client: Client) -> None:
    await client.get("/telegram-users/")  # one request, so the request metrics have samples
    exported = scraped_names((await client.get("/metrics")).text) | supervisor_names()
    assert dashboard_metrics() - exported == set()


def test_the_dashboard_check_catches_a_name_nobody_exports() -> None:
    assert "seeonline_worker_transitions_total" in supervisor_names()
    assert {"seeonline_no_such_metric"} - supervisor_names() == {"seeonline_no_such_metric"}


def test_prometheus_scrapes_the_ports_compose_gives_the_services() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    scrape = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]}
    port = compose["services"]["supervisor"]["environment"]["SEEONLINE_SUPERVISOR_METRICS_PORT"]
    assert targets["seeonline-supervisor"] == [f"supervisor:{port}"]
    assert compose["services"]["supervisor"]["environment"]["SEEONLINE_SUPERVISOR_METRICS_BIND"] == "0.0.0.0"
    assert targets["seeonline-api"] == ["api:8000"]
    for service in ("prometheus", "grafana"):
        assert compose["services"][service]["profiles"] == ["monitoring"]

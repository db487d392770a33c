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


def grafana_mounts() -> dict[str, str]:
    """Grafana's bind mounts in compose.yaml: repository path -> path in the container."""
    grafana = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["grafana"]
    mounts = {}
    for volume in grafana["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[source.removeprefix("./")] = target
    return mounts


def test_grafana_provisioning_parses_and_names_the_prometheus_service_and_the_dashboard() -> None:
    """Grafana has no image or package here, so its files are checked: a bad one would only show on a real host."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    provisioning = ROOT / "monitoring" / "grafana" / "provisioning"
    mounts = grafana_mounts()
    assert mounts["monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"

    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert sources["apiVersion"] == 1
    [source] = sources["datasources"]
    prometheus_port = compose["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert (source["type"], source["url"]) == ("prometheus", f"http://prometheus:{prometheus_port}")
    assert source["access"] == "proxy"  # Grafana's server asks, on the compose network; browsers never do

    providers = yaml.safe_load((provisioning / "dashboards" / "seeonline.yml").read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == mounts["monitoring/grafana/dashboards"]
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"

    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    wanted = {"type": "prometheus", "uid": source["uid"]}
    for panel in panels:
        assert panel["datasource"] == wanted, panel["title"]
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"]), panel["title"]
        assert all(target["datasource"] == wanted for target in panel["targets"]), panel["title"]


def metrics_key_file() -> tuple[str, str]:
    """The file Prometheus reads its bearer token for the API from, and the value compose puts there unset."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    [config] = compose["services"]["prometheus"]["configs"]
    placeholder = re.fullmatch(r"\$\{SEEONLINE_METRICS_KEY:-(.+)\}", compose["configs"][config["source"]]["content"])
    assert placeholder is not None
    return config["target"], placeholder.group(1)


async def test_prometheus_scrapes_the_api_with_its_metrics_key_and_an_open_api_ignores_the_placeholder(
    client: Client,
) -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert compose["services"]["api"]["environment"]["SEEONLINE_METRICS_KEY"] == "${SEEONLINE_METRICS_KEY:-}"
    scrape = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    [api_job] = [job for job in scrape["scrape_configs"] if job["job_name"] == "seeonline-api"]
    target, placeholder = metrics_key_file()
    assert api_job["authorization"] == {"type": "Bearer", "credentials_file": target}
    # No key set: Prometheus sends the placeholder, and the open /metrics answers anyway.
    answered = await client.get("/metrics", headers={"Authorization": f"Bearer {placeholder}"})
    assert answered.status_code == 200

"""``seeonline api``: serve the HTTP API, in one process or several on one port."""

from __future__ import annotations

import gc
import os

import click

from seeonline.cli.common import require_database, settings_or_exit
from seeonline.logging import get_logger
from seeonline.settings import Settings, SettingsError

log = get_logger("seeonline.cli")

# Each worker process builds its app from the environment (uvicorn imports this by name).
APP_FACTORY = "seeonline.cli.serve:app_from_environment"


def cpu_count() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def freeze_startup_objects() -> None:
    """Keep what lives as long as the process (imported modules, the app) out of the collector's full passes.

    Those walk every tracked object: with 1,000 event streams open that was ~450,000 objects and a loop
    paused 100-370 ms (bench/events.py); frozen, a pass walks only what requests made.
    """
    gc.collect()
    gc.freeze()


def app_from_environment() -> object:
    """The app for one of several worker processes: settings read again from the environment."""
    from seeonline.server.app import create_app  # noqa: PLC0415

    settings = settings_or_exit()
    require_database(settings)
    app = create_app(settings)
    freeze_startup_objects()
    return app


def serve_api(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve the API with uvicorn (uvloop + httptools) until interrupted; ``workers`` processes share the port."""
    import uvicorn  # noqa: PLC0415 - only the API needs it

    from seeonline import multiprocess_metrics  # noqa: PLC0415
    from seeonline.server.app import create_app  # noqa: PLC0415
    from seeonline.server.http_protocol import SETTINGS_PROTOCOL, limited  # noqa: PLC0415

    try:
        app = create_app(settings)  # also checks the settings before any worker starts
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    protocol = limited(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_headers=settings.max_headers,
        max_header_bytes=settings.max_header_bytes,
    )
    common = {"host": host, "port": port, "loop": "uvloop", "http": protocol, "log_config": None}
    common |= {"timeout_keep_alive": settings.keep_alive_timeout, "limit_concurrency": settings.max_connections}
    common |= {"access_log": False, "lifespan": "on", "ws": "none"}  # no WebSocket routes: upgrades are plain HTTP
    log.info("api_listening", url=f"http://{host}:{port}", workers=workers, docs=f"http://{host}:{port}/schema/swagger")
    if workers == 1:
        freeze_startup_objects()
        uvicorn.Server(uvicorn.Config(app, **common)).run()  # type: ignore[arg-type]
        return
    common["http"] = SETTINGS_PROTOCOL  # each process imports its protocol (and its limits) by name
    # Before the workers start: they write their request metrics there, and /metrics sums them.
    directory = multiprocess_metrics.share_with_children("seeonline-api-metrics-")
    try:
        uvicorn.run(APP_FACTORY, factory=True, workers=workers, **common)  # type: ignore[arg-type]
    finally:
        multiprocess_metrics.remove(directory)


def _workers(value: str) -> int:
    if value == "auto":
        return cpu_count()
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        msg = f"--workers: a number of processes (1 or more) or auto, got {value!r}"
        raise click.BadParameter(msg)
    return count


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default="1",
    show_default=True,
    help="Processes serving the port: a number, or auto (one per CPU this process may use; the image's default).",
)
def api(host: str, port: int, workers: str) -> None:
    """Serve the HTTP API."""
    settings = settings_or_exit()
    require_database(settings)
    serve_api(settings, host, port, _workers(workers))

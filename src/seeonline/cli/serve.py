"""``seeonline api``: serve the HTTP API."""

from __future__ import annotations

import click

from seeonline.cli.common import require_database, settings_or_exit
from seeonline.logging import get_logger
from seeonline.settings import Settings, SettingsError

log = get_logger("seeonline.cli")


def serve_api(settings: Settings, host: str, port: int) -> None:
    """Serve the API with uvicorn (uvloop + httptools) until interrupted."""
    import uvicorn  # noqa: PLC0415 - only the API needs it

    from seeonline.server.app import create_app  # noqa: PLC0415
    from seeonline.server.http_protocol import limited  # noqa: PLC0415

    try:
        app = create_app(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    protocol = limited(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_headers=settings.max_headers,
        max_header_bytes=settings.max_header_bytes,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=protocol,
        timeout_keep_alive=settings.keep_alive_timeout,
        limit_concurrency=settings.max_connections,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    log.info("api_listening", url=f"http://{host}:{port}", docs=f"http://{host}:{port}/schema/swagger")
    uvicorn.Server(config).run()


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api(host: str, port: int) -> None:
    """Serve the HTTP API."""
    settings = settings_or_exit()
    require_database(settings)
    serve_api(settings, host, port)

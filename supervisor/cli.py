"""``seeonline supervisor``: run one worker process per runnable tracker until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import importlib
import signal

import click
import msgspec
from setproctitle import setproctitle

from seeonline.logging import get_logger
from seeonline.parent_death import die_with_parent, expected_parent_from_env
from seeonline_supervisor.process import ProcessOptions, WorkerTarget

log = get_logger("supervisor.cli")


def load_target(spec: str) -> WorkerTarget:
    """Import ``module:function``."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        msg = f"--worker-target: expected module:function, got {spec!r}"
        raise click.BadParameter(msg)
    target: WorkerTarget = getattr(importlib.import_module(module_name), attribute)
    return target


@click.command("supervisor")
@click.option(
    "--stop-grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="SIGTERM → SIGKILL (also for orphans).",
)
@click.option("--start-seconds", type=click.FloatRange(min=0), default=3.0, show_default=True, help="Alive → RUNNING.")
@click.option("--fatal-after", type=click.IntRange(min=1), default=5, show_default=True, help="Fast exits → FATAL.")
@click.option("--exit-with-parent", is_flag=True, help="Stop (gracefully) when the process that started this one dies.")
@click.option("--worker-target", default=None, hidden=True, help="module:function run in each worker (tests).")
def supervisor(
    stop_grace: float, start_seconds: float, fatal_after: int, exit_with_parent: bool, worker_target: str | None
) -> None:
    """Run one tracker worker process per runnable tracker account."""
    if exit_with_parent and not die_with_parent(signal.SIGTERM, expected_parent_from_env()):
        raise SystemExit(1)  # the parent died before the signal was armed
    setproctitle("seeonline supervisor")
    from seeonline.cli.common import require_database, settings_or_exit  # noqa: PLC0415

    settings = settings_or_exit()
    require_database(settings)
    from seeonline_supervisor.supervisor import Supervisor, SupervisorOptions  # noqa: PLC0415 - keeps `seeonline` start-up light

    options = SupervisorOptions(
        process=msgspec.structs.replace(
            ProcessOptions(),
            stop_grace=stop_grace,
            orphan_grace=stop_grace,
            start_seconds=start_seconds,
            fatal_after=fatal_after,
        )
    )
    target = load_target(worker_target) if worker_target else None
    runner = Supervisor(settings, target=target, options=options)
    if settings.supervisor_metrics_port is None:
        asyncio.run(runner.run(handle_signals=True))
        return
    from seeonline_supervisor import metrics_server  # noqa: PLC0415 - only when serving metrics

    directory = metrics_server.enable()  # before run() starts the forkserver: the workers inherit it
    try:
        metrics_server.serve(settings.supervisor_metrics_bind, settings.supervisor_metrics_port, runner, directory)
        log.info("supervisor_metrics_serving", port=settings.supervisor_metrics_port)
        asyncio.run(runner.run(handle_signals=True))
    finally:
        metrics_server.remove(directory)

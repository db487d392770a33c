"""``seeonline sandbox``: run a local Telegram with tracker accounts, simulated people and a control API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from seeonline.logging import configure_logging, get_logger
from seeonline.sandbox.control import ControlServer
from seeonline.sandbox.crypto import ServerKey
from seeonline.sandbox.manifest import build_manifest, write_manifest
from seeonline.sandbox.privacy import Privacy
from seeonline.sandbox.server import SandboxServer
from seeonline.sandbox.world import World
from seeonline.telegram.client import DC_ENV, RSA_KEY_ENV

log = get_logger("seeonline.sandbox.cli")

DEFAULT_PORT = 8443
# Most people show their last seen; the rest exercise the hidden-status paths.
PRIVACY_MIX = ((Privacy.EVERYBODY, 0.7), (Privacy.CONTACTS, 0.15), (Privacy.NOBODY, 0.15))


@dataclass(frozen=True)
class SandboxOptions:
    """The command's options, for ``run_sandbox``."""

    host: str
    port: int | None
    control_port: int | None
    trackers: int
    people: int
    manifest: Path
    simulate: float
    seed: str | None
    rsa_key: Path | None
    exit_with_parent: bool = False


def populate(world: World, trackers: int, people: int, rng: random.Random) -> None:
    """Create tracker accounts and people named ``person001``… with a mixed privacy."""
    for _ in range(trackers):
        world.add_account()
    privacies = [p for p, _ in PRIVACY_MIX]
    weights = [w for _, w in PRIVACY_MIX]
    for number in range(1, people + 1):
        world.add_person(
            f"person{number:03d}",
            privacy=rng.choices(privacies, weights)[0],
            phone=f"4470000{number:05d}",
            last_seen_ago=rng.uniform(60, 86400),
        )


async def run_sandbox(options: SandboxOptions, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM), writing the manifest once listening."""
    rng = random.Random(options.seed)  # noqa: S311 - simulated data, reproducible with --seed
    world = World(seed=options.seed)
    populate(world, options.trackers, options.people, rng)
    key = ServerKey.load(options.rsa_key) if options.rsa_key else None
    port = DEFAULT_PORT if options.port is None else options.port
    server = SandboxServer(world, host=options.host, port=port, server_key=key)
    await _listen(server, fallback=options.port is None)
    control_port = server.port + 1 if options.control_port is None else options.control_port
    control = ControlServer(server, port=control_port)  # loopback only, whatever --host says
    await _listen(control, fallback=options.control_port is None)
    write_manifest(options.manifest, build_manifest(server, control.port))
    # A phone-code login against the sandbox needs its public key in a file (SEEONLINE_TELEGRAM_RSA_KEY).
    key_file = options.manifest.with_name(options.manifest.stem + "-rsa-public.pem")
    key_file.write_text(server.rsa_public_key_pem())
    if options.simulate > 0:
        server.start_simulation(options.simulate, rng)
    ready = {
        "event": "sandbox_ready",
        "port": server.port,
        "control_port": control.port,
        "manifest": str(options.manifest),
        "login_env": {
            DC_ENV: f"{server.public_host}:{server.port}",
            RSA_KEY_ENV: str(key_file.absolute()),
        },
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    watchdog = loop.create_task(_watch_parent(stop)) if options.exit_with_parent else None
    try:
        await stop.wait()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        await control.stop()
        await server.stop()
        log.info("sandbox_stopped")


async def _watch_parent(stop: asyncio.Event) -> None:
    """Set ``stop`` when the parent process dies (we get re-parented), so a crashed test leaves no orphan."""
    parent = os.getppid()
    # Polling is the portable way: no event fires when the parent dies (PR_SET_PDEATHSIG is Linux-only).
    while True:
        await asyncio.sleep(1)
        if os.getppid() != parent:
            break
    log.warning("sandbox_parent_died")
    stop.set()


async def _listen(server: SandboxServer | ControlServer, *, fallback: bool) -> None:
    """Start ``server``; when its port was only a default and is taken, take any free port instead."""
    try:
        await server.start()
    except OSError:
        if not fallback:
            raise
        server.requested_port = 0
        await server.start()


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="MTProto address (control API: loopback only).")
@click.option("--port", type=int, default=None, help=f"MTProto port [default: {DEFAULT_PORT}, else any free; 0: any].")
@click.option("--control-port", type=int, default=None, help="Control API port [default: port + 1, else any free].")
@click.option("--trackers", type=click.IntRange(min=0), default=3, show_default=True, help="Tracker accounts.")
@click.option("--people", type=click.IntRange(min=0), default=20, show_default=True, help="Simulated people.")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("sandbox-manifest.json"),
    show_default=True,
    help="Where to write the JSON manifest (holds session strings: keep it private).",
)
@click.option("--simulate", type=click.FloatRange(min=0), default=0.0, help="Random status flips per second.")
@click.option("--seed", default=None, help="Make ids, hashes and session strings reproducible across restarts.")
@click.option("--rsa-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM private key.")
@click.option("--exit-with-parent", is_flag=True, help="Stop when the process that started this one dies.")
@click.option("--log-level", default="info", show_default=True)
def sandbox(
    *,
    host: str,
    port: int | None,
    control_port: int | None,
    trackers: int,
    people: int,
    manifest: Path,
    simulate: float,
    seed: str | None,
    rsa_key: Path | None,
    exit_with_parent: bool,
    log_level: str,
) -> None:
    """Run a local Telegram sandbox that unmodified Telethon clients can use."""
    configure_logging(log_level)
    options = SandboxOptions(
        host, port, control_port, trackers, people, manifest, simulate, seed, rsa_key, exit_with_parent
    )
    asyncio.run(run_sandbox(options))

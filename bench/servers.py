"""uvicorn (what ``seeonline api`` runs) against granian: the same limits, probed on real sockets, then throughput.

    .venv/bin/python bench/servers.py [--database-url postgresql://postgres@127.0.0.1:5432/test] [--duration 10]

granian is not a dependency: put it where this interpreter finds it (``pip install granian``, or
``pip install --target DIR granian`` and ``PYTHONPATH=DIR``). Both servers get the same app
(``seeonline.cli.serve:app_from_environment``), the same settings and the closest options each has:
uvicorn through ``seeonline api`` (its limited httptools protocol, ``limit_concurrency``,
``timeout_keep_alive``), granian with ``--http1-header-read-timeout``, ``--http1-buffer-size`` and
``--backpressure`` (it has no body deadline, keep-alive timeout or header count option). Each probe is
the behaviour a test in ``tests/security`` or ``tests/events`` asserts for uvicorn; a server that does
not behave that way within a generous deadline is marked ``no``. Then ``wrk`` (``bench/wrk/``) measures
requests per second with ``--workers`` processes, alternating the servers ``--rounds`` times.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from bench.api import API_KEY, SECRET_KEY, Result, _die_with_parent, _run_async, _seed, database, parse_wrk, wrk
from bench.server_probes import probe_concurrency_limit, probes
from seeonline.database import migrations
from seeonline.local.embedded_postgres import find_free_port
from seeonline.logging import configure_logging

# The deadlines of tests/security/test_connection_limits.py; every probe allows GIVE_UP_AFTER.
LIMITS = {
    "SEEONLINE_HEADER_TIMEOUT": "1",
    "SEEONLINE_BODY_TIMEOUT": "1",
    "SEEONLINE_KEEP_ALIVE_TIMEOUT": "1",
    "SEEONLINE_MAX_HEADERS": "20",
    "SEEONLINE_MAX_HEADER_BYTES": "4096",
    "SEEONLINE_DB_POOL_SIZE": "4",
    "SEEONLINE_STATEMENT_TIMEOUT": "0",  # only a cancel ends a query that waits for a lock
}
CONCURRENCY = {"SEEONLINE_MAX_CONNECTIONS": "4"}
SERVERS = ("uvicorn", "granian")
APP_FACTORY = "seeonline.cli.serve:app_from_environment"


def command_line(server: str, port: int, workers: int, env: dict[str, str]) -> list[str]:
    """Each server with the closest options it has to the settings in ``env``."""
    if server == "uvicorn":
        return [sys.executable, "-m", "seeonline", "api", "--port", str(port), "--workers", str(workers)]
    header_ms = int(float(env.get("SEEONLINE_HEADER_TIMEOUT", "10")) * 1000)
    buffer = max(8192, int(env.get("SEEONLINE_MAX_HEADER_BYTES", "16384")))  # granian's minimum is 8192
    return [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop", "--http", "1",
        "--no-ws", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--http1-header-read-timeout", str(header_ms), "--http1-buffer-size", str(buffer),
        "--backpressure", env.get("SEEONLINE_MAX_CONNECTIONS", "1000"), "--log-level", "warning", APP_FACTORY,
    ]  # fmt: skip


@contextlib.contextmanager
def serving(server: str, url: str, workdir: Path, settings: dict[str, str], workers: int = 1) -> Iterator[str]:
    """``server`` on a free port until the block ends; yields its base URL once /ready answers."""
    port = find_free_port()
    env = dict(os.environ) | {"DATABASE_URL": url, "SEEONLINE_API_KEYS": API_KEY, "SEEONLINE_SECRET_KEY": SECRET_KEY}
    env |= {"SEEONLINE_LOG_LEVEL": "warning", **settings}
    log = (workdir / f"{server}.log").open("ab")
    process = subprocess.Popen(
        command_line(server, port, workers, env),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers go with it: the group is signalled
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads yet that could hold locks
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                msg = f"{server} exited with {process.returncode}: see {workdir / f'{server}.log'}"
                raise RuntimeError(msg)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                msg = f"{server} was not ready in 60 s"
                raise RuntimeError(msg)
            time.sleep(0.1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


@dataclass
class Probed:
    name: str
    observed: dict[str, str]
    wanted: dict[str, bool]


def probe_all(url: str, workdir: Path) -> list[Probed]:
    """Every probe against each server: one start with LIMITS, one more for the concurrency limit."""
    listed = probes(url)
    results = [Probed(name, {}, {}) for name, _ in listed]
    results.append(Probed("concurrency limit 4, 4 streams open: the next request 503 at once", {}, {}))
    for server in SERVERS:
        print(f"probing {server} ...", flush=True)
        with serving(server, url, workdir, LIMITS) as base:
            for result, (name, probe) in zip(results, listed, strict=False):
                observed, ok = probe(base)
                result.observed[server], result.wanted[server] = observed, ok
                print(f"  {'yes' if ok else 'NO '}  {name}: {observed}", flush=True)
        with serving(server, url, workdir, LIMITS | CONCURRENCY) as base:
            observed, ok = probe_concurrency_limit(base)
            results[-1].observed[server], results[-1].wanted[server] = observed, ok
            print(f"  {'yes' if ok else 'NO '}  {results[-1].name}: {observed}", flush=True)
    return results


# -- throughput -------------------------------------------------------------------------------------------


def throughput(
    url: str, workdir: Path, args: argparse.Namespace, person_ids: tuple[int, int]
) -> dict[str, list[Result]]:
    measured: dict[str, list[Result]] = {server: [] for server in SERVERS}
    for round_number in range(args.rounds):
        for server in SERVERS if round_number % 2 == 0 else reversed(SERVERS):
            with serving(server, url, workdir, {}, workers=args.workers) as base:
                wrk(base, "telegram_user.lua", 2, args.connections, [str(n) for n in person_ids])  # warm-up
                result = Result("a", f"{server} GET /telegram-users/{{id}}/")
                parse_wrk(
                    wrk(base, "telegram_user.lua", args.duration, args.connections, [str(n) for n in person_ids]),
                    result,
                )
                measured[server].append(result)
                print(
                    f"  {server} round {round_number + 1}: {result.rps:,.0f} req/s, "
                    f"p99 {result.p99_ms:.1f} ms, errors {result.errors}",
                    flush=True,
                )
    return measured


def print_tables(probed: list[Probed], measured: dict[str, list[Result]], args: argparse.Namespace) -> None:
    print("\n| behaviour (as the tests want it) | uvicorn | granian |\n|---|---|---|")
    for result in probed:
        cells = [f"{'yes' if result.wanted[s] else '**no**'}: {result.observed[s]}" for s in SERVERS]
        print(f"| {result.name} | {' | '.join(cells)} |")
    if measured:
        print(
            f"\n`wrk -t1 -c{args.connections}` GET /telegram-users/{{id}}/, {args.duration:g} s, "
            f"--workers {args.workers}:\n"
        )
        print("| server | req/s per round | p99 ms per round | errors |\n|---|---|---|---:|")
        for server, results in measured.items():
            rps = ", ".join(f"{r.rps:,.0f}" for r in results)
            p99 = ", ".join(f"{r.p99_ms:.1f}" for r in results)
            print(f"| {server} | {rps} | {p99} | {sum(r.errors for r in results)} |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a server to create the scratch database on (else embedded)")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="processes per server for the throughput runs")
    parser.add_argument("--rounds", type=int, default=2, help="throughput runs per server, alternating")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--no-probes", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if importlib.util.find_spec("granian") is None:
        print("granian is not importable: pip install granian (see the docstring)", file=sys.stderr)
        return 2
    if not args.no_throughput and shutil.which("wrk") is None:
        print("wrk is not installed: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    configure_logging("warning")
    workdir = Path(tempfile.mkdtemp(prefix="seeonline-servers-"))
    workdir.chmod(0o755)  # an embedded server runs as an unprivileged user when we are root
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; logs in {workdir}", flush=True)
    with database(args, workdir) as url:
        migrations.upgrade(url)
        seeded, _ = _run_async(_seed(url))
        probed = [] if args.no_probes else probe_all(url, workdir)
        measured = {} if args.no_throughput else throughput(url, workdir, args, seeded.person_ids)
    print_tables(probed, measured, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run ``seeonline sandbox`` as a child process and steer it through its control API (for end-to-end tests)."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any


class ControlError(RuntimeError):
    """The control API answered with an error status."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(f"control API answered {status}: {payload}")
        self.status = status
        self.payload = payload


def sandbox_command() -> list[str]:
    """The ``seeonline`` script next to this interpreter, else the same click group run through it."""
    script = Path(sys.executable).with_name("seeonline")
    if script.exists():
        return [str(script)]
    found = shutil.which("seeonline")
    return [found] if found else [sys.executable, "-c", "from seeonline.cli import main; main()"]


def sandbox_command_line(
    *,
    trackers: int,
    people: int,
    manifest: Path,
    simulate: float,
    seed: str | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    """``seeonline sandbox`` as a child: free ports, its manifest at ``manifest``, gone with its parent."""
    args = ["--port", "0", "--control-port", "0", "--trackers", str(trackers), "--people", str(people)]
    args += ["--manifest", str(manifest), "--simulate", str(simulate), "--exit-with-parent"]
    if seed is not None:
        args += ["--seed", seed]
    return [*sandbox_command(), "sandbox", *args, *(extra or [])]


class SandboxProcess:
    """A ``seeonline sandbox`` subprocess: ``async with SandboxProcess(trackers=2) as sandbox: ...``."""

    def __init__(
        self,
        *,
        trackers: int = 2,
        people: int = 10,
        seed: str | None = None,
        simulate: float = 0.0,
        manifest: Path | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if manifest is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="seeonline-sandbox-")
            manifest = Path(self._tmp.name) / "manifest.json"
        self.manifest_path = manifest
        self.command = sandbox_command_line(
            trackers=trackers, people=people, manifest=manifest, simulate=simulate, seed=seed, extra=extra_args
        )
        self.process: asyncio.subprocess.Process | None = None
        self.manifest: dict[str, Any] = {}

    async def start(self, ready_within: float = 30.0) -> None:
        """Start the child and wait (up to ``ready_within`` seconds) for its ready line and manifest."""
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), ready_within)
        if not line:
            await self.stop()
            raise RuntimeError("seeonline sandbox exited before it was ready")
        self.manifest = json.loads(self.manifest_path.read_text())

    async def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace):  # not wait_for: it can swallow a cancellation (bpo-42130)
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return None if process is None else process.returncode

    async def __aenter__(self) -> SandboxProcess:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- the control API ----------------------------------------------------------------------

    @property
    def control_url(self) -> str:
        """Base URL of the control API."""
        return str(self.manifest["control_url"])

    @property
    def port(self) -> int:
        """The MTProto port."""
        return int(self.manifest["dc"]["port"])

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - always our own http://127.0.0.1 control URL
            self.control_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ControlError(exc.code, json.loads(exc.read() or b"null")) from None

    async def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the control API without blocking the event loop; raises ``ControlError`` on 4xx/5xx."""
        return await asyncio.to_thread(self._request, method, path, body)

    async def set_status(self, username: str, *, online: bool, expires_in: float = 300) -> Any:
        """``POST /people/{username}/status``."""
        return await self.control("POST", f"/people/{username}/status", {"online": online, "expires_in": expires_in})

    async def inject_fault(self, method: str, error: str | None = None, **options: Any) -> Any:
        """``POST /faults`` (options: account, count, delay, drop, code)."""
        return await self.control("POST", "/faults", {"method": method, "error": error, **options})

    async def drop_connections(self, account: int | str | None = None) -> int:
        """``POST /connections/drop``; returns how many connections were reset."""
        result = await self.control("POST", "/connections/drop", {"account": account})
        return int(result["dropped"])

    async def revoke(self, telegram_id: int) -> Any:
        """``POST /trackers/{telegram_id}/revoke``."""
        return await self.control("POST", f"/trackers/{telegram_id}/revoke")

    async def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """``GET /calls``, optionally only one method's."""
        query = "" if method is None else f"?method={method}"
        result: list[dict[str, Any]] = await self.control("GET", f"/calls{query}")
        return result

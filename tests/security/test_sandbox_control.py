"""The sandbox control API (it hands out session strings and adds accounts) listens on loopback only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psutil

from seeonline.sandbox.process import sandbox_command_line


def test_the_control_api_stays_on_loopback_whatever_host_says(tmp_path: Path) -> None:
    command = sandbox_command_line(
        trackers=1,
        people=0,
        manifest=tmp_path / "manifest.json",
        simulate=0.0,
        extra=["--host", "0.0.0.0"],
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        listening = {
            connection.laddr.port: connection.laddr.ip
            for connection in psutil.Process(process.pid).net_connections(kind="tcp")
            if connection.status == psutil.CONN_LISTEN
        }
        assert listening[ready["port"]] == "0.0.0.0"
        assert listening[ready["control_port"]] == "127.0.0.1"
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        assert manifest["control_url"] == f"http://127.0.0.1:{ready['control_port']}"
    finally:
        process.terminate()
        process.wait(30)

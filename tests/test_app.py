"""The web app starts on the port it is given and serves its page."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_app_starts_and_serves_the_page(tmp_path: Path) -> None:
    port = _free_port()
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False", "HOME": str(tmp_path)}
    command = [
        sys.executable,
        str(REPO / "app.py"),
        "--port",
        str(port),
        "--logs-dir",
        str(tmp_path / "logs"),
        "--assets-dir",
        str(tmp_path / "assets"),
    ]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        page = ""
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert "RVC Studio" in page
    finally:
        process.terminate()
        process.wait(timeout=30)

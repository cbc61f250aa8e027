"""Run a real TensorBoard server on the logs folder, as a child process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rvc.errors import UserError

START_TIMEOUT_S = 90.0  # TensorBoard imports a lot; a loaded 2-core machine needs tens of seconds


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Return whether nothing listens on ``host:port`` and we may bind it."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port the OS says is free now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class TensorBoardServer:
    """A running ``tensorboard`` process and where it answers."""

    process: subprocess.Popen[bytes]
    logdir: Path
    host: str
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (kill it if it does not exit within ``timeout``)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_tensorboard(
    logdir: Path, port: int, log_path: Path, host: str = "127.0.0.1", timeout: float = START_TIMEOUT_S
) -> TensorBoardServer:
    """Start ``tensorboard --logdir logdir --port port --host host`` and wait until it answers HTTP.

    When ``port`` is taken (another TensorBoard, another app), a free port is used
    instead; the returned server says which. Its output goes to ``log_path``.
    Raises UserError, with the end of its output, if it exits or does not answer in time.
    """
    if not port_is_free(port, host):
        port = free_port(host)
    logdir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port), "--host", host]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    server = TensorBoardServer(process, logdir, host, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _answers(server.url):
            return server
        time.sleep(0.5)
    server.stop()
    tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
    raise UserError(
        f"TensorBoard did not start on {host}:{port} (log {log_path}): "
        + (" | ".join(tail) or "no output")
        + "; check that tensorboard is installed (pip install tensorboard)"
    )

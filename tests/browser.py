"""Browser-test fixtures: the real app in a subprocess and a headless Chromium page (Playwright).

Use them from a test module like this (tests/test_webui_train.py does)::

    from tests.browser import open_tab, screenshot  # helpers, if the module wants them

    pytest_plugins = ["tests.browser"]  # the fixtures; no need to import them

    def test_my_tab(page):  # page: signed in, loaded; app / app_url: the running app
        open_tab(page, "Prepare Dataset")

A module that imports nothing from here needs only the ``pytest_plugins`` line. Its asserts
are rewritten like a test module's (readable failures): tests/conftest.py registers it first.

Fixtures:

- ``app_args`` (module): extra ``app.py`` flags, ``[]`` by default; override it in a
  module (``@pytest.fixture(scope="module") def app_args(): return ["--auth", "u:p"]``).
- ``app`` (module): a ``RunningApp`` (``url``, ``logs_dir``, ``assets_dir``,
  ``process``, ``output()``), started once per module on a free port with
  temporary logs and assets folders; stopped (and its trainers) after the module.
- ``app_url`` (module): ``app.url``.
- ``browser`` (module): a Chromium launched by Playwright from ``/usr/bin/chromium``.
- ``page`` (function): a fresh page on ``app_url``, already loaded (and signed in
  when the module's ``app_args`` hold ``--auth USER:PASS``); when the test fails, a
  screenshot of it is saved in ``tests/screenshots/<test>.png`` (set ``RVC_SCREENSHOTS``
  to put them elsewhere). ``screenshot(page, name)`` saves one on demand: each browser
  test saves what it shows.

Needs Debian's ``chromium`` (``apt-get install chromium``) and ``pip install playwright``;
without them the browser tests are skipped with that message.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 180.0  # importing gradio and torch on a busy 2-core machine
APP_LOG_TAIL = 6000  # characters of the app's output a failed browser test shows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def screenshots_dir() -> Path:
    folder = Path(os.environ.get("RVC_SCREENSHOTS", REPO / "tests" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Any, name: str, full_page: bool = True) -> Path:
    """Save a PNG of ``page`` as ``<screenshots>/<name>.png`` and return its path."""
    path = screenshots_dir() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def app_env(home: Path) -> dict[str, str]:
    """The environment of an app started by a test: offline, no analytics, this checkout importable."""
    return {
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": os.environ.get("TMPDIR", tempfile.gettempdir()),
    }


@dataclass
class RunningApp:
    """A started ``python app.py`` and its folders."""

    url: str
    logs_dir: Path
    assets_dir: Path
    process: subprocess.Popen[str]
    log_path: Path
    auth: tuple[str, str] | None = None  # the --auth login, which the page fixture signs in with

    def output(self) -> str:
        """Return what the app printed so far."""
        return self.log_path.read_text(errors="replace")


def start_app(
    root: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = START_TIMEOUT_S
) -> RunningApp:
    """Start ``python app.py`` with logs and assets under ``root``; return once its page answers.

    ``env`` replaces the child's environment (default ``app_env(root)``; start from that to change it).
    """
    port = free_port()
    logs, assets = root / "logs", root / "assets"
    command = [
        sys.executable,
        str(REPO / "app.py"),
        "--port",
        str(port),
        "--logs-dir",
        str(logs),
        "--assets-dir",
        str(assets),
        *extra,
    ]
    log_path = root / "app.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env or app_env(root), stdout=log, stderr=subprocess.STDOUT, text=True
        )
    auth = tuple(extra[extra.index("--auth") + 1].split(":", 1)) if "--auth" in extra else None
    app = RunningApp(f"http://127.0.0.1:{port}/", logs, assets, process, log_path, auth)  # type: ignore[arg-type]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited with status {process.returncode}:\n{app.output()}")
        try:
            with urllib.request.urlopen(app.url, timeout=5):
                return app
        except OSError:
            time.sleep(0.5)
    stop_app(app)
    raise AssertionError(f"the app did not answer on {app.url} within {timeout} s:\n{app.output()}")


def stop_app(app: RunningApp, leave_jobs: bool = False) -> None:
    """Stop the app (SIGTERM: it closes and stops its TensorBoard) and any trainer or stage job it left in its logs.

    leave_jobs : stop the app alone (a restart: the next app re-attaches to what runs).
    """
    from rvc.experiment import Workspace
    from rvc.jobs import launcher as jobs
    from rvc.train import launcher

    if app.process.poll() is None:
        app.process.send_signal(signal.SIGTERM)
        try:
            app.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.process.kill()
            app.process.wait()
    workspace = Workspace(app.logs_dir, app.assets_dir)
    if app.logs_dir.is_dir() and not leave_jobs:
        for folder in app.logs_dir.iterdir():
            if folder.is_dir() and not folder.name.startswith("."):
                launcher.stop(workspace.experiment(folder.name), timeout=30)
                for job in jobs.running_jobs(workspace.experiment(folder.name)):
                    jobs.stop(job, timeout=10)


def processes_mentioning(text: str) -> list[str]:
    """Return the command lines of live processes that contain ``text`` (e.g. a test's logs folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
            state = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        line = " ".join(arg.decode(errors="replace") for arg in args if arg)
        if text in line and state != "Z":
            found.append(line)
    return found


@pytest.fixture(scope="module")
def app_args() -> list[str]:
    """Extra app.py flags for this module's app; override in a module to change them."""
    return []


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, app_args: list[str]) -> Iterator[RunningApp]:
    running = start_app(tmp_path_factory.mktemp("app"), *app_args)
    try:
        yield running
    finally:
        stop_app(running)


@pytest.fixture(scope="module")
def app_url(app: RunningApp) -> str:
    return app.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def login(context: Any, app: RunningApp) -> None:
    """Sign a Playwright browser context in to an app started with --auth (Gradio's /login sets a cookie)."""
    assert app.auth is not None
    user, password = app.auth
    response = context.request.post(app.url + "login", form={"username": user, "password": password})
    assert response.ok, f"login failed: {response.status} {response.text()}"


REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()  # a test's report of each phase: setup, call, teardown


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so that the page fixture knows whether it failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def page(browser: Any, app: RunningApp, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    if app.auth is not None:
        login(context, app)
    opened = context.new_page()
    opened.goto(app.url)
    opened.wait_for_selector("button[role=tab]", state="visible")
    try:
        yield opened
    finally:
        try:
            # Where the test failed. A passing test saved its own (a full page with plots takes up to 10 s
            # while a trainer runs: one at every end was about a minute of the suite).
            if any(report.failed for report in request.node.stash.get(REPORTS, {}).values()):
                screenshot(opened, request.node.name)
                # CI keeps no screenshots: what the app printed (its handlers' tracebacks) goes in the report.
                sys.stderr.write(f"--- the app's output, last {APP_LOG_TAIL} characters ---\n")
                sys.stderr.write(app.output()[-APP_LOG_TAIL:] + "\n")
        finally:
            context.close()


def open_tab(page: Any, label: str) -> None:
    """Click the tab called ``label``."""
    page.get_by_role("tab", name=label, exact=True).click()

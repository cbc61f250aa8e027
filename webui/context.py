"""AppContext: what every tab needs, made once by app.py and passed to each ``render(ctx)``; never global."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.experiment import Workspace
from rvc.train.tensorboard import TensorBoardServer, start_tensorboard
from webui.jobs import JobRegistry
from webui.paths_guard import PathGuard
from webui.settings import Settings, save_settings
from webui.stage_jobs import StageJobs

if TYPE_CHECKING:
    from webui.current import CurrentExperiment


class TensorBoardHandle:
    """The app's one TensorBoard server on the logs folder, started on first use."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self._server: TensorBoardServer | None = None
        self._lock = threading.Lock()

    @property
    def server(self) -> TensorBoardServer | None:
        server = self._server
        return server if server is not None and server.running() else None

    def ensure(self, port: int) -> TensorBoardServer:
        """Return the running server, starting it (on ``port``, or a free one if taken) if needed."""
        with self._lock:
            if self._server is None or not self._server.running():
                # Its output goes to a dotfile in the logs folder: never mistaken for an experiment.
                self._server = start_tensorboard(self.logdir, port, self.logdir / ".tensorboard.log")
            return self._server

    def stop(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.stop()
                self._server = None


@dataclass
class AppContext:
    """The app's state: workspace, settings (and where they are saved), jobs, TensorBoard, the path guard.

    ``overrides`` names the settings that command-line flags replaced for this run
    (e.g. ``{"logs_dir": "--logs-dir"}``); the Settings tab says so.
    """

    workspace: Workspace
    settings: Settings
    settings_path: Path
    jobs: JobRegistry
    tensorboard: TensorBoardHandle
    paths: PathGuard
    stage_jobs: StageJobs  # prepare, extract, index, export: child processes, re-attached from their events
    overrides: dict[str, str] = field(default_factory=dict)
    current: CurrentExperiment | None = None  # the page's current experiment: build_ui makes it before the tabs
    tiny_model: bool = False  # app.py --tiny-model (tests, debug): one-click runs train the tiny model

    @classmethod
    def create(
        cls, workspace: Workspace, settings: Settings, settings_path: Path, overrides: dict[str, str] | None = None
    ) -> AppContext:
        """Make the context of an app working in ``workspace``."""
        return cls(
            workspace=workspace,
            settings=settings,
            settings_path=settings_path,
            jobs=JobRegistry(workspace),
            tensorboard=TensorBoardHandle(workspace.logs_dir),
            paths=PathGuard(settings_path.parent, (workspace.logs_dir, workspace.assets_dir)),
            stage_jobs=StageJobs(workspace),
            overrides=dict(overrides or {}),
        )

    def current_experiment(self) -> CurrentExperiment:
        """Return the page's current experiment, which every tab's experiment chooser follows."""
        if self.current is None:
            raise RuntimeError("build_ui makes the current experiment before it draws the tabs")
        return self.current

    def save_settings(self, settings: Settings) -> None:
        """Validate and save ``settings``; the running app uses them from now on where it can."""
        save_settings(settings, self.settings_path)
        self.settings = settings

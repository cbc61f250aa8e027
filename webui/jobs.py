"""The job registry: one training job per experiment, re-attached from the trainer's events file.

A job folds the trainer's progress events (rvc.train.progress) into a
``RunState`` (rvc.train.run_state), reading the file incrementally, so any number of
browser tabs, a page reload or a new app process see the same run: the registry
starts from offset 0 the first time an experiment is looked at, then reads only
what is new, and gives the Train tab a ``TrainView`` of it.
"""

from __future__ import annotations

import subprocess
import threading

from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace
from rvc.experiment.config_file import has_config
from rvc.train import launcher
from rvc.train.events import StartEvent
from rvc.train.progress import read_events
from rvc.train.run_state import RunState
from webui.run_view import TrainView, train_view


class Job:
    """One experiment's training: its process (if this app started it) and its folded events."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.process: subprocess.Popen[bytes] | None = None
        self.state = RunState()
        self.offset = 0
        self.launch_offset: int | None = None  # the events file's size when this app started the trainer
        self.started_since_launch = False  # a start event came after launch_offset
        self.exit_code: int | None = None  # of the trainer this app started, once it has ended
        self.stopping = False
        self.stop_requested = False  # a Stop since this app's last launch
        self.version = 0
        self.lock = threading.Lock()

    def _read(self) -> None:
        path = self.experiment.progress_jsonl
        size = path.stat().st_size if path.exists() else 0
        if size < self.offset:  # the file was replaced (a deleted and recreated experiment): read it again
            self.state, self.offset = RunState(), 0
        events, self.offset = read_events(path, self.offset)
        for event in events:
            self.state.apply(event)
            if isinstance(event, StartEvent) and self.launch_offset is not None:
                self.started_since_launch = True
        if events:
            self.version += 1

    def running(self) -> bool:
        if self.process is not None:
            if self.process.poll() is None:
                return True
            self.exit_code = self.process.returncode
            self.process = None
            self.stopping = False
            self.version += 1
        return launcher.is_running(self.experiment)

    def _status(self, running: bool) -> str:
        state = self.state
        # Events from before this app's launch describe an older run, until the new one reports.
        stale = self.launch_offset is not None and not self.started_since_launch
        if running:
            if self.stopping:
                return "stopping"
            return "starting" if stale or state.start is None else "running"
        if stale and self.exit_code is not None:
            # It ended before it started training: stopped while loading (a SIGTERM before the
            # trainer installs its handler ends it at once, with nothing to save), or failed.
            return "stopped while starting" if self.stop_requested else "failed"
        if state.failed:
            return "failed"
        if state.done is not None:
            return "stopped" if state.stopped else "finished"
        return "interrupted" if state.start is not None else "not started"

    def view(self, console_lines: int, verbose: bool) -> TrainView:
        with self.lock:
            self._read()
            running = self.running()
            status = self._status(running)
            return train_view(
                self.experiment.name,
                status,
                running,
                self.state,
                self.exit_code,
                launcher.train_log_path(self.experiment),
                console_lines,
                verbose,
                version=hash((self.version, status)),
            )


class JobRegistry:
    """All training jobs of one app: one per experiment, created when first looked at."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def job(self, name: str) -> Job:
        """Return the experiment's job (validating the name)."""
        experiment = self.workspace.experiment(name)
        with self._lock:
            if name not in self._jobs:
                self._jobs[name] = Job(experiment)
            return self._jobs[name]

    def experiments(self) -> list[str]:
        """Return the experiments that can train or have trained (saved settings or a run), newest first."""
        found = [status for status in self.workspace.experiments() if status.configured or status.has_run]
        return [status.name for status in sorted(found, key=lambda status: status.modified, reverse=True)]

    def running(self) -> list[str]:
        """Return the experiments training now (started here or by anyone else)."""
        return [status.name for status in self.workspace.experiments() if status.training]

    def start(self, name: str, command: launcher.TrainCommand) -> None:
        """Start training ``name``; raise UserError if it is running or cannot start."""
        job = self.job(name)
        with job.lock:
            if job.running():
                raise UserError(f"experiment {name!r} is already training: watch it here, or Stop it first")
            if not has_config(job.experiment):
                raise UserError(f"experiment {name!r} has no saved settings: save them in Generate Configuration first")
            job._read()
            job.launch_offset = job.offset
            job.started_since_launch = False
            job.exit_code = None
            job.stop_requested = False
            job.state.error = None  # an older run's failure; this launch reports its own
            job.process = launcher.start(self.workspace, name, command)
            job.stopping = False
            job.version += 1

    def stop(self, name: str, wait: bool = False) -> bool:
        """Ask the experiment's trainer to save and stop; return whether it was running.

        The stop runs in a background thread unless ``wait``: the trainer may take a
        while to save, and the UI keeps showing the status meanwhile.
        """
        job = self.job(name)
        with job.lock:
            if not job.running():
                return False
            job.stopping = True
            job.stop_requested = True
            job.version += 1
            process = job.process

        def work() -> None:
            launcher.stop(job.experiment, process)

        if wait:
            work()
        else:
            threading.Thread(target=work, name=f"stop-{name}", daemon=True).start()
        return True

"""Start, find and stop stage jobs: ``python -m rvc <stage> ... --json-progress`` as a child.

A job is a command-line stage run as a child process in its own session (``rvc.jobs.process``),
writing its ``@@rvc`` events into ``jobs/<stage>-<time>.jsonl`` and its output into the ``.log``
beside it. The launcher writes the start event (the argument list, the pid and the pid's start
time) as soon as the child exists, so every later reader can tell a running job from a dead one;
the child writes its progress and its end. Jobs that would write the same files never run side
by side: the check and the start happen under a lock file, so two browsers cannot both start one.

A job belongs to an experiment (its ``jobs/`` folder) or, when it works on no experiment (a
download of a pretrain or of weights), to the assets folder (``assets/jobs/``).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rvc.errors import UserError
from rvc.experiment import AssetDir, Experiment, Workspace, lock
from rvc.experiment.jobs_dir import JobsDir
from rvc.jobs import process
from rvc.jobs.state import JobWatch, job_stage
from rvc.train.events import JobEndEvent, JobStartEvent
from rvc.train.progress import append_event

STOP_TIMEOUT_S = 15.0  # a stage saves its manifest in well under a second; past this, kill
# A stage whose stop waits for another's: ``run`` stops the trainer it started, which saves its state first.
STOP_TIMEOUTS_S = {"run": 90.0}
ANNOUNCED_ENV = "RVC_JOB_ANNOUNCED"  # set for a child whose start event the launcher writes

# Which stages may not run beside which on one experiment ("train": a trainer holds the lock).
# prepare and extract rewrite the clips and features everything else reads; index and export
# only read them, so they may run beside training and beside each other.
# ``run`` (the one-click chain) does them all in turn, so it collides with each, and each with it; the
# trainer it starts is its own step, so "train" does not name it (the Train tab refuses a Start beside it).
COLLIDES: dict[str, frozenset[str]] = {
    "prepare": frozenset({"prepare", "extract", "index", "export", "train", "run"}),
    "extract": frozenset({"prepare", "extract", "index", "export", "train", "run"}),
    "index": frozenset({"prepare", "extract", "index", "run"}),
    "export": frozenset({"prepare", "extract", "export", "run"}),
    "train": frozenset({"prepare", "extract"}),
    "run": frozenset({"prepare", "extract", "index", "export", "train", "run"}),
}


# The stages whose job may make its experiment's folder; every other stage reads an experiment that exists,
# and its job must not make an empty one (a page that listed an experiment since deleted would bring it back).
MAKES_EXPERIMENT = frozenset({"prepare", "run", "blend"})

JobHome = Experiment | AssetDir  # whose jobs folder holds a job


@dataclass(frozen=True)
class StageJob:
    """A started job: its experiment (or the assets folder), and its events file (the log is beside it)."""

    home: JobHome
    events: Path

    @property
    def jobs(self) -> JobsDir:
        return self.home.jobs

    @property
    def experiment(self) -> Experiment:
        """The experiment the job works on; a ValueError for a job of the assets folder."""
        if not isinstance(self.home, Experiment):
            raise ValueError(f"{self.events.name} is a job of the assets folder, not of an experiment")
        return self.home

    @property
    def stage(self) -> str:
        return job_stage(self.events)

    @property
    def log(self) -> Path:
        return self.jobs.log(self.events)


def stage_command(workspace: Workspace, stage: str, args: Sequence[str], events: Path) -> list[str]:
    """Return the argument list of ``python -m rvc <stage> <args>`` writing its events into ``events``."""
    return [
        sys.executable,
        "-m",
        "rvc",
        "--logs-dir",
        str(workspace.logs_dir),
        "--assets-dir",
        str(workspace.assets_dir),
        stage,
        *args,
        "--json-progress",
        "--events-file",
        str(events),
    ]


def _stamp() -> str:
    now = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}"


@contextmanager
def _launch_lock(jobs: JobsDir) -> Iterator[None]:
    """Hold the jobs folder's launch lock: one collision check and start at a time, across processes."""
    path = jobs.launch_lock
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def running_jobs(home: JobHome) -> list[StageJob]:
    """Return the jobs of ``home`` whose process runs now (started by any app, or by hand), oldest first."""
    running = []
    for events in home.jobs.event_files():
        watch = JobWatch(events)
        watch.refresh()
        if watch.status() in ("starting", "running"):
            running.append(StageJob(home, events))
    return running


def refuse_collision(home: JobHome, stage: str) -> None:
    """Raise UserError naming what runs on the experiment (or the assets folder) if ``stage`` may not run beside it.

    A stage COLLIDES does not list runs beside anything but itself (a second download waits for the first).
    """
    blocked = COLLIDES.get(stage, frozenset({stage}))
    if isinstance(home, Experiment) and "train" in blocked and lock.is_held(home.train_lock):
        raise UserError(
            f"experiment '{home.name}' is training: {stage} would change the files it reads; "
            "stop training first (Train tab), or wait for it to finish"
        )
    where = f"on experiment '{home.name}'" if isinstance(home, Experiment) else "in the assets folder"
    for job in running_jobs(home):
        if job.stage in blocked:
            started = job.events.stem.split("-", 1)[1]
            raise UserError(
                f"{job.stage} is running {where} (started {started}): "
                f"wait for it to finish or stop it before starting {stage}"
            )


def start(
    workspace: Workspace, name: str, stage: str, args: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[StageJob, subprocess.Popen[bytes]]:
    """Start ``python -m rvc <stage> <args>`` on experiment ``name`` as a job; return it and its process.

    Raises UserError when a job or a trainer that it would collide with runs on the experiment, or when the
    experiment does not exist and ``stage`` is not one that makes it (MAKES_EXPERIMENT).
    """
    experiment = workspace.experiment(name)
    if stage not in MAKES_EXPERIMENT and (gone := experiment.gone()) is not None:
        raise UserError(f"{gone}, or prepare this one again")
    return _start(workspace, experiment, stage, args, env)


def start_assets_job(
    workspace: Workspace, stage: str, args: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[StageJob, subprocess.Popen[bytes]]:
    """Start ``python -m rvc <stage> <args>`` as a job of the assets folder (a download); return it and its process.

    Raises UserError when a job of the same stage runs there.
    """
    return _start(workspace, workspace.assets, stage, args, env)


def _start(
    workspace: Workspace, home: JobHome, stage: str, args: Sequence[str], env: Mapping[str, str] | None
) -> tuple[StageJob, subprocess.Popen[bytes]]:
    jobs = home.jobs
    jobs.root.mkdir(parents=True, exist_ok=True)
    with _launch_lock(jobs):
        refuse_collision(home, stage)
        events = jobs.events(stage, _stamp())
        argv = stage_command(workspace, stage, args, events)
        child = process.spawn(argv, jobs.log(events), {**(env or {}), ANNOUNCED_ENV: "1"})
        start_event = JobStartEvent(
            stage=stage, argv=argv, pid=child.pid, pid_started=process.start_ticks(child.pid), experiment=jobs.owner
        )
        append_event(events, start_event)
    return StageJob(home, events), child


def stop(job: StageJob, child: subprocess.Popen[bytes] | None = None, timeout: float | None = None) -> bool:
    """Stop a job: SIGTERM (the stage saves what it finished and reports "stopped"), SIGKILL after ``timeout``.

    ``child`` is the job's Popen when this process started it (it is reaped). A job killed
    because it did not stop in time gets its end event from here. Returns whether it was running.
    """
    watch = JobWatch(job.events)
    watch.refresh()
    start_event = watch.state.start
    if start_event is None or start_event.pid is None or not watch.alive():
        return False
    if timeout is None:
        timeout = STOP_TIMEOUTS_S.get(job.stage, STOP_TIMEOUT_S)
    process.stop_tree(start_event.pid, child, timeout)
    if watch.refresh().end is None:
        append_event(
            job.events,
            JobEndEvent(status="stopped", message=f"stopped: killed after {timeout:g} s without ending by itself"),
        )
    return True


def record_exit(job: StageJob, exit_code: int) -> None:
    """Write the end of a job that exited without one, from the exit code its parent saw."""
    watch = JobWatch(job.events)
    if watch.refresh().end is not None:
        return
    if exit_code < 0:
        how = f"was killed by signal {-exit_code}" + (
            " (SIGKILL: kill -9, or out of memory)" if exit_code == -9 else ""
        )
    else:
        how = f"exited with status {exit_code}"
    pid = watch.state.start.pid if watch.state.start is not None else "?"
    message = f"the job's process (pid {pid}) {how} without reporting; its log may say more"
    append_event(job.events, JobEndEvent(status="died", message=message, exit_code=exit_code))


def jobs_of(home: JobHome) -> list[StageJob]:
    """Return every job of the experiment (or the assets folder), oldest first."""
    return [StageJob(home, events) for events in home.jobs.event_files()]


def announced() -> bool:
    """Return whether this process is a job whose launcher wrote its start event."""
    return os.environ.get(ANNOUNCED_ENV) == "1"

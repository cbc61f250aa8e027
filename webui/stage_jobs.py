"""The stage jobs the UI starts and watches (prepare, extract, index, export, downloads): ``rvc.jobs`` for the tabs.

What a tab shows comes from the job's events file and its process's liveness, never from this
server's memory: a reload, a second browser or a restarted app draw the same job. The registry
only keeps, for the jobs this app started, their ``Popen`` (to reap them, and to record how one
that vanished without a word exited) and, per events file, the offset it has read to.
"""

from __future__ import annotations

import html
import subprocess
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace
from rvc.jobs import launcher
from rvc.jobs.launcher import JobHome, StageJob
from rvc.jobs.reporter import BYTES
from rvc.jobs.state import ENDED, JobState, JobStatus, JobWatch
from rvc.train.events import LogEvent, ProgressEvent
from rvc.train.progress import parse_line

LOG_TAIL_BYTES = 64_000  # the log view shows the end of the job's log
MAX_LOG_LINES = 200

# How a job's last line begins, by status: words, not emoji (a machine without an emoji font draws boxes).
ENDINGS = {"done": "Done", "error": "Error", "stopped": "Stopped", "died": "Died"}


def clock(seconds: float) -> str:
    """Format seconds as M:SS (or H:MM:SS)."""
    whole = int(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass(frozen=True)
class JobView:
    """What a tab draws of one job: the progress bars (HTML) and the log (text)."""

    events: str  # the job's events file ("" when there is no job to show)
    experiment: str
    status: JobStatus | None
    html: str
    log: str

    @property
    def running(self) -> bool:
        return self.status in ("starting", "running")

    @property
    def ended(self) -> bool:
        return self.status in ENDED


NO_JOB = JobView("", "", None, "<div class='rvc-job' data-status='none'>No stage is running.</div>", "")


def _counts(task: ProgressEvent) -> list[str]:
    """Return "12 / 40 clips" and the rate ("3.1 clip/s"); bytes as MB."""
    if task.unit == BYTES:
        mb = 2**20
        parts = [f"{task.done / mb:.1f} / {task.total / mb:.1f} MB"]
        return parts + ([f"{task.rate / mb:.1f} MB/s"] if task.rate else [])
    return [f"{task.done} / {task.total} {task.unit}s"] + ([f"{task.rate:.1f} {task.unit}/s"] if task.rate else [])


def _task_html(task: ProgressEvent) -> str:
    parts = _counts(task)
    if task.eta_s is not None and task.done < task.total:
        parts.append(f"ETA {clock(task.eta_s)}")
    return (
        f"<div class='rvc-job-task' data-task='{html.escape(task.task, quote=True)}' data-done='{task.done}' "
        f"data-total='{task.total}'><span class='rvc-job-name'>{html.escape(task.task)}</span> "
        f"<progress value='{task.done}' max='{max(task.total, 1)}'></progress> "
        f"<span class='rvc-job-count'>{html.escape(' · '.join(parts))}</span></div>"
    )


def _header(job: StageJob, state: JobState, status: JobStatus, stopping: bool) -> str:
    shown = "stopping" if stopping and status in ("starting", "running") else status
    started = state.start.time if state.start is not None else None
    ended = state.end.time if state.end is not None else None
    took = f" · {clock((ended or time.time()) - started)}" if started else ""
    return (
        f"<div class='rvc-job-head'><b>{html.escape(job.stage)}</b>{_owner(job)}"
        f" · <span class='rvc-job-status'>{shown}</span>{took}</div>"
    )


def _owner(job: StageJob) -> str:
    """Return " on <experiment>" for an experiment's job, "" for one of the assets folder."""
    owner = job.jobs.owner
    return f" on <b>{html.escape(owner)}</b>" if owner else ""


def _log_lines(path: Path) -> list[str]:
    """Return the end of a job's log as the user reads it: its output, log events as their text, no other events."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    lines = []
    for raw in text.splitlines():
        line = raw.rsplit("\r", 1)[-1].rstrip()  # a tqdm bar redrawn in place: its last state
        event = parse_line(line)
        if isinstance(event, LogEvent):
            lines.append(event.message)
        elif event is None and line:
            lines.append(line)
    return lines[-MAX_LOG_LINES:]


def _ending(state: JobState, status: JobStatus, watch: JobWatch) -> str | None:
    if status == "died" and state.end is None:
        return ending_line(status, watch.died_message())
    if state.end is None:
        return None
    took = f" (took {clock(state.end.time - state.start.time)})" if state.start is not None else ""
    return ending_line(status, state.end.message or status) + (took if status == "done" else "")


def ending_line(status: str, message: str) -> str:
    """Return a job's last line: "Done: <summary>", "Error: <why>", ... (a message that says it already, as is)."""
    word = ENDINGS.get(status, "Error")
    if message.lower().startswith(word.lower()):
        return word + message[len(word) :]
    return f"{word}: {message}"


class StageJobs:
    """The app's view of every experiment's stage jobs; one per app, passed in the AppContext."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._children: dict[Path, tuple[StageJob, subprocess.Popen[bytes]]] = {}
        self._watches: dict[Path, JobWatch] = {}
        self._stopping: set[Path] = set()
        self._lock = threading.Lock()

    def start(self, name: str, stage: str, args: Sequence[str]) -> StageJob:
        """Start ``python -m rvc <stage> <args>`` on experiment ``name``; raise UserError when it would collide."""
        job, child = launcher.start(self.workspace, name, stage, args)
        with self._lock:
            self._children[job.events] = (job, child)
        return job

    def start_assets(self, stage: str, args: Sequence[str]) -> StageJob:
        """Start ``python -m rvc <stage> <args>`` as a job of the assets folder (a download); UserError: it collides."""
        job, child = launcher.start_assets_job(self.workspace, stage, args)
        with self._lock:
            self._children[job.events] = (job, child)
        return job

    def _reap(self) -> None:
        """Reap the children that ended; one that left no end event gets one saying how it exited."""
        with self._lock:
            # A job being stopped is reaped by its stop, which writes its end.
            ended = [
                (path, job, child)
                for path, (job, child) in self._children.items()
                if path not in self._stopping and child.poll() is not None
            ]
            for path, job, child in ended:
                del self._children[path]
                launcher.record_exit(job, child.returncode)

    def _watch(self, events: Path) -> JobWatch:
        with self._lock:
            if events not in self._watches:
                self._watches[events] = JobWatch(events)
            return self._watches[events]

    def pick(self, name: str | None, stages: Collection[str] | None = None) -> StageJob | None:
        """Return the job to show: the newest of experiment ``name``, or with no name the newest running one.

        ``stages``: only jobs of these stages (None: any).
        """
        self._reap()
        name = (name or "").strip()

        def wanted(experiment: Experiment) -> list[StageJob]:
            return [job for job in launcher.jobs_of(experiment) if stages is None or job.stage in stages]

        if name:
            try:
                jobs = wanted(self.workspace.experiment(name))
            except UserError:
                return None
            return jobs[-1] if jobs else None
        running: list[StageJob] = []
        for status in self.workspace.experiments():
            for job in wanted(status.experiment):
                watch = self._watch(job.events)
                watch.refresh()
                if watch.status() in ("starting", "running"):
                    running.append(job)
        return max(running, key=lambda job: job.events.stem.split("-", 1)[1], default=None)

    def pick_assets(self, stages: Collection[str] | None = None) -> StageJob | None:
        """Return the newest job of the assets folder (``stages``: of these stages only), or None."""
        self._reap()
        jobs = [job for job in launcher.jobs_of(self.workspace.assets) if stages is None or job.stage in stages]
        return jobs[-1] if jobs else None

    def view(self, job: StageJob | None, title: str = "") -> JobView:
        """Return what a tab draws of ``job`` (NO_JOB for None)."""
        if job is None:
            return NO_JOB
        self._reap()
        watch = self._watch(job.events)
        state = watch.refresh()
        status = watch.status()
        if status == "died":
            # It ended between the reap above and the liveness probe, or another thread (a second page's
            # timer) is reaping it now: reap under the lock, which waits for that one's end event, so the
            # page says how it ended (its exit code) rather than only that it is gone.
            self._reap()
            state = watch.refresh()
            status = watch.status()
        stopping = job.events in self._stopping and status in ("starting", "running")
        bars = "".join(_task_html(task) for task in state.tasks.values())
        head = _header(job, state, status, stopping)
        page = (
            f"<div class='rvc-job' data-status='{'stopping' if stopping else status}' "
            f"data-events='{html.escape(job.events.name, quote=True)}'>{head}{bars}</div>"
        )
        lines = _log_lines(job.log)
        ending = _ending(state, status, watch)
        text = "\n".join([*([title] if title else []), *lines, *([ending] if ending else [])])
        return JobView(str(job.events), job.jobs.owner, "running" if stopping else status, page, text)

    def stop(self, events: str, wait: bool = False) -> bool:
        """Stop the job of events file ``events`` (in a background thread unless ``wait``); return whether it ran."""
        path = Path(events)
        homes: list[JobHome] = [self.workspace.assets, *(s.experiment for s in self.workspace.experiments())]
        home = next((home for home in homes if home.jobs.root == path.parent), None)
        # The path came back from the page: only an events file of one of our jobs folders is a job.
        if home is None or not path.is_file():
            return False
        job = StageJob(home, path)
        watch = self._watch(path)
        watch.refresh()
        if watch.status() not in ("starting", "running"):
            return False
        with self._lock:
            child = self._children.get(path, (job, None))[1]
            self._stopping.add(path)

        def work() -> None:
            try:
                launcher.stop(job, child)
            finally:
                with self._lock:
                    self._stopping.discard(path)
                    self._children.pop(path, None)

        if wait:
            work()
        else:
            threading.Thread(target=work, name=f"stop-{path.stem}", daemon=True).start()
        return True

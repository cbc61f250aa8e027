"""A stage job's state, folded from its events file and the liveness of its process.

Nothing here lives in a server's memory that the file and ``/proc`` cannot rebuild: a reloaded
page, a second browser or a restarted app read the same file and see the same job. A job whose
file has no end event and whose process is gone has died (``kill -9``, out of memory, a crash in
a native library); ``JobWatch.status`` says so, and why where it can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rvc.experiment import names
from rvc.jobs import process
from rvc.train.events import Event, JobEndEvent, JobStartEvent, LogEvent, ProgressEvent
from rvc.train.progress import read_events

JobStatus = Literal["starting", "running", "done", "error", "stopped", "died"]
ENDED: tuple[JobStatus, ...] = ("done", "error", "stopped", "died")
MAX_LOG_LINES = 200  # the log events kept for the view; the job's log file keeps everything

DIED = (
    "the job's process (pid {pid}) ended without reporting how: it was killed (kill -9, out of memory) "
    "or crashed; its log may say more. What it finished is kept: run the stage again to continue"
)


@dataclass
class JobState:
    """What a job's events say: its start, each task's latest progress, its log lines, its end."""

    start: JobStartEvent | None = None
    tasks: dict[str, ProgressEvent] = field(default_factory=dict)  # in the order the tasks began
    log: list[str] = field(default_factory=list)
    end: JobEndEvent | None = None

    def apply(self, event: Event) -> None:
        if isinstance(event, JobStartEvent):
            self.start = event
        elif isinstance(event, ProgressEvent):
            self.tasks[event.task] = event
        elif isinstance(event, LogEvent):
            self.log.append(event.message)
            del self.log[:-MAX_LOG_LINES]
        elif isinstance(event, JobEndEvent):
            self.end = event


def job_stage(events: Path) -> str:
    """Return the stage a job's events file belongs to, from its name (``extract-<time>.jsonl``)."""
    match = names.JOB_NAME.fullmatch(events.stem)
    return match.group(1) if match else events.stem


class JobWatch:
    """One job's events file, read incrementally, and its process's liveness."""

    def __init__(self, events: Path) -> None:
        self.events = events
        self.state = JobState()
        self.offset = 0

    def refresh(self) -> JobState:
        """Read what was appended since the last call; return the state."""
        found, self.offset = read_events(self.events, self.offset)
        for event in found:
            self.state.apply(event)
        return self.state

    def alive(self) -> bool:
        """Return whether the job's process still runs (False before its start event is written)."""
        start = self.state.start
        return start is not None and start.pid is not None and process.is_alive(start.pid, start.pid_started)

    def status(self) -> JobStatus:
        """Return how the job stands now (after ``refresh``)."""
        state = self.state
        if state.end is not None:
            status = state.end.status
            return status if status in ENDED else "error"
        if state.start is None:
            return "starting"
        if self.alive():
            return "running"
        # It may have written its end event between our read and the liveness probe.
        if self.refresh().end is not None:
            return self.status()
        return "died"

    def died_message(self) -> str:
        pid = self.state.start.pid if self.state.start is not None else "?"
        return DIED.format(pid=pid)


def read_job(events: Path) -> tuple[JobState, JobStatus]:
    """Return a job's state and status from its events file."""
    watch = JobWatch(events)
    watch.refresh()
    return watch.state, watch.status()

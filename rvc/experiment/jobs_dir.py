"""``JobsDir``: a folder of stage jobs, each an events file and a log, and the lock their launcher takes.

An experiment has one (``logs/<name>/jobs/``: prepare, extract, index, export, a folder's
conversion); the assets folder has one too (``assets/jobs/``: downloads of pretrains and weights,
which belong to no experiment). ``rvc.jobs.launcher`` writes and finds the files through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rvc.experiment import names as n


@dataclass(frozen=True)
class JobsDir:
    """Where the jobs of one owner live, and what each of their files is called."""

    root: Path
    owner: str  # whose jobs, as the UI names it: an experiment's name, or "" for the assets folder's

    def events(self, stage: str, stamp: str) -> Path:
        """``<stage>-<stamp>.jsonl``: the job's ``@@rvc`` events, one JSON object a line."""
        return self.root / n.job_file(stage, stamp, n.JOB_EVENTS_SUFFIX)

    def log(self, events: Path) -> Path:
        """The stdout and stderr of the job whose events file is ``events``."""
        return events.with_suffix(n.JOB_LOG_SUFFIX)

    def event_files(self) -> list[Path]:
        """Every job's events file, oldest first."""
        if not self.root.is_dir():
            return []
        stamped = [(n.JOB_NAME.fullmatch(p.stem), p) for p in self.root.glob(f"*{n.JOB_EVENTS_SUFFIX}")]
        return [path for _, path in sorted((match.group(2), path) for match, path in stamped if match)]

    @property
    def launch_lock(self) -> Path:
        """Flocked while a job is checked for collisions and started."""
        return self.root / n.JOB_LAUNCH_LOCK

"""The trainer's lock file: held (flock, exclusive) for the whole run, released by the OS when it dies.

Whether an experiment is training is read from the lock, not from a pid written somewhere: a
killed trainer leaves its file behind, but not its lock.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.errors import UserError

if TYPE_CHECKING:
    from rvc.experiment.folder import Experiment


def is_held(path: Path) -> bool:
    """Return whether a process holds ``path``'s lock (this process or any other)."""
    if not path.exists():
        return False
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; reading never truncates the holder's pid
    except OSError:
        return False
    with handle:
        try:
            # A shared probe: it fails while the trainer holds its exclusive lock and
            # is released at once, so it never blocks a trainer for longer than a syscall.
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def holder_pid(path: Path) -> int | None:
    """Return the pid the lock's holder wrote into it, or None when nobody holds it."""
    if not is_held(path):
        return None
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def refuse_while_training(experiment: Experiment, stage: str) -> None:
    """Raise UserError naming the running trainer when ``experiment`` trains: ``stage`` would change its files."""
    path = experiment.train_lock
    if not is_held(path):
        return
    pid = holder_pid(path)
    who = f"pid {pid}" if pid is not None else "another process"
    raise UserError(
        f"experiment '{experiment.name}' is training ({who}, holding {path}): {stage} would change the files "
        "it reads. Stop that run first (Ctrl-C where it runs, or Stop in the Train tab; it saves and resumes "
        "later), or wait for it to finish"
    )

"""Start and stop the trainer as a child process: ``python -m rvc.train`` or torchrun for several GPUs.

The web app reaches training only through this module. The trainer runs in its
own session (so a Ctrl-C in the app's terminal does not reach it, and the app
may restart and re-attach), writes stdout and stderr to ``logs/<exp>/train.log``
and holds an flock on ``logs/<exp>/train.lock`` for as long as it runs. Stopping
sends SIGTERM (the trainer saves and exits), waits, and kills whatever of the
process group is left after a timeout, so no child process outlives a stop
(``rvc.jobs.process``, which the stage jobs share).
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace, lock
from rvc.jobs import process

STOP_TIMEOUT_S = 60.0  # a real model saves its state in a few seconds; past this, kill


def train_log_path(experiment: Experiment) -> Path:
    """Return the trainer's stdout and stderr (``Experiment.train_log``)."""
    return experiment.train_log


def lock_path(experiment: Experiment) -> Path:
    """Return the file the running trainer flocks (``Experiment.train_lock``; see rvc.train.__main__)."""
    return experiment.train_lock


def parse_gpu_ids(text: str, present: int | None = None) -> tuple[int, ...]:
    """Return the GPU ids of a field like ``"0"`` or ``"0,1"`` (empty: none); raise UserError on anything else.

    Full-width digits and commas (typed with an input method) read as ASCII ones. ``present``: how many GPUs
    this machine has; an id past them is refused here, not by the trainer once started (None: not checked).
    """
    parts = [part for part in re.split(r"[\s,]+", unicodedata.normalize("NFKC", text)) if part]
    shown = text if len(text) <= 40 else f"{text[:40]}..."
    # ASCII digits only, and few: int() takes other scripts' digits, and refuses 4,300 of them with ValueError.
    if not all(re.fullmatch(r"[0-9]{1,4}", part) for part in parts):
        raise UserError(
            f"GPU ids {shown!r}: give numbers separated by commas, e.g. 0 or 0,1 (empty: the default device)"
        )
    ids = tuple(int(part) for part in parts)
    if len(set(ids)) != len(ids):
        raise UserError(f"GPU ids {shown!r}: each GPU may appear once")
    if present is not None and any(gpu >= present for gpu in ids):
        have = f"this machine has {present} GPU(s), ids 0 to {present - 1}" if present else "PyTorch sees no GPU here"
        raise UserError(f"GPU ids {shown!r}: {have}; give those, or leave it empty for the default device (Settings)")
    return ids


@dataclass(frozen=True)
class TrainCommand:
    """What to run: the argument list and the environment variables to add."""

    argv: list[str]
    env: dict[str, str]


def train_command(
    workspace: Workspace, name: str, *, device: str = "auto", gpus: Sequence[int] = (), processes: int = 1
) -> TrainCommand:
    """Return the trainer command for experiment ``name``.

    ``gpus``: one id trains on ``cuda:<id>``; several start torchrun with one
    process per GPU (CUDA_VISIBLE_DEVICES holds them). Without ``gpus``,
    ``device`` is used and ``processes`` > 1 starts torchrun on it (gloo on CPU).
    """
    workspace.experiment(name)  # validates the name
    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}  # GPU ids as nvidia-smi numbers them
    if len(gpus) == 1:
        device, processes = f"cuda:{gpus[0]}", 1
    elif len(gpus) > 1:
        device, processes = "cuda", len(gpus)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu) for gpu in gpus)
    if processes < 1:
        raise ValueError(f"processes must be at least 1 (got {processes})")
    trainer = [
        "-m",
        "rvc.train",
        "--experiment",
        name,
        "--device",
        device,
        "--logs-dir",
        str(workspace.logs_dir),
        "--assets-dir",
        str(workspace.assets_dir),
    ]
    if processes == 1:
        return TrainCommand([sys.executable, *trainer], env)
    # --standalone: a private rendezvous on a free port, so two runs on one host do not collide.
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    return TrainCommand([*launcher, *trainer], env)


def start(workspace: Workspace, name: str, command: TrainCommand | None = None) -> subprocess.Popen[bytes]:
    """Start training experiment ``name`` in the background; return the child process.

    Raises UserError if that experiment is already training, or a prepare or extract of it runs. ``command``
    defaults to ``train_command(workspace, name)``.
    """
    from rvc.jobs.launcher import refuse_collision

    experiment = workspace.experiment(name)
    if is_running(experiment):
        raise UserError(f"experiment {name!r} is already training (pid {running_pid(experiment)}); stop it first")
    refuse_collision(experiment, "train")  # a prepare or extract would change the clips under it
    command = command or train_command(workspace, name)
    return process.spawn(command.argv, train_log_path(experiment), command.env)


def is_running(experiment: Experiment) -> bool:
    """Return whether a trainer holds the experiment's lock (from this process or any other)."""
    return lock.is_held(lock_path(experiment))


def running_pid(experiment: Experiment) -> int | None:
    """Return the pid the running trainer wrote into its lock file, or None."""
    return lock.holder_pid(lock_path(experiment))


def stop(experiment: Experiment, child: subprocess.Popen[bytes] | None = None, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the experiment's trainer: SIGTERM, wait for it to save and exit, then SIGKILL what is left.

    ``child`` is the process from ``start`` when this process started it (it is
    reaped); otherwise the trainer is found through its lock file. Every process
    of the run (the leader, its group, its descendants: torchrun's workers too)
    is gone when this returns. Returns whether anything was running.
    """
    pid = child.pid if child is not None and child.poll() is None else running_pid(experiment)
    if pid is None:
        return False
    return process.stop_tree(pid, child, timeout)

"""Start and stop the trainer as a child process: ``python -m rvc.train`` or torchrun for several GPUs.

The web app reaches training only through this module. The trainer runs in its
own session (so a Ctrl-C in the app's terminal does not reach it, and the app
may restart and re-attach), writes stdout and stderr to ``logs/<exp>/train.log``
and holds an flock on ``logs/<exp>/train.lock`` for as long as it runs. Stopping
sends SIGTERM (the trainer saves and exits), waits, and kills whatever of the
process group is left after a timeout, so no child process outlives a stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import rvc
from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace, lock

STOP_TIMEOUT_S = 60.0  # a real model saves its state in a few seconds; past this, kill
ORPHAN_GRACE_S = 10.0  # after the leader exits, how long its leftovers may take to follow it


def train_log_path(experiment: Experiment) -> Path:
    """Return the trainer's stdout and stderr (``Experiment.train_log``)."""
    return experiment.train_log


def lock_path(experiment: Experiment) -> Path:
    """Return the file the running trainer flocks (``Experiment.train_lock``; see rvc.train.__main__)."""
    return experiment.train_lock


def parse_gpu_ids(text: str) -> tuple[int, ...]:
    """Return the GPU ids of a field like ``"0"`` or ``"0,1"`` (empty: none); raise UserError on anything else."""
    parts = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
    if not all(part.isdigit() for part in parts):
        raise UserError(
            f"GPU ids {text!r}: give numbers separated by commas, e.g. 0 or 0,1 (empty: the default device)"
        )
    ids = tuple(int(part) for part in parts)
    if len(set(ids)) != len(ids):
        raise UserError(f"GPU ids {text!r}: each GPU may appear once")
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


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # The child imports rvc from this checkout whatever the working directory is.
    package_root = str(Path(rvc.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # train.log is read live
    env.update(extra)
    return env


def start(workspace: Workspace, name: str, command: TrainCommand | None = None) -> subprocess.Popen[bytes]:
    """Start training experiment ``name`` in the background; return the child process.

    Raises UserError if that experiment is already training. ``command``
    defaults to ``train_command(workspace, name)``.
    """
    experiment = workspace.experiment(name)
    if is_running(experiment):
        raise UserError(f"experiment {name!r} is already training (pid {running_pid(experiment)}); stop it first")
    command = command or train_command(workspace, name)
    log_path = train_log_path(experiment)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n=== {stamp} started: {' '.join(command.argv)}\n".encode())
        log.flush()
        # An argument list, no shell; a new session: its own process group, which stop() signals as a whole.
        return subprocess.Popen(
            command.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(command.env),
            start_new_session=True,
        )


def is_running(experiment: Experiment) -> bool:
    """Return whether a trainer holds the experiment's lock (from this process or any other)."""
    return lock.is_held(lock_path(experiment))


def running_pid(experiment: Experiment) -> int | None:
    """Return the pid the running trainer wrote into its lock file, or None."""
    return lock.holder_pid(lock_path(experiment))


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    pgid: int
    zombie: bool
    started: int  # clock ticks after boot: tells a process from a later one that reuses its pid


def _processes() -> dict[int, _Proc]:
    """Return every process of the machine from /proc ({} where there is no /proc)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command may hold spaces and parentheses: the fields start after the last ')'
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            table[pid] = _Proc(pid, int(fields[1]), int(fields[2]), fields[0] in "ZX", int(fields[19]))
        except (OSError, IndexError, ValueError):
            continue  # it exited while we read
    return table


class _ProcessTree:
    """The trainer's processes: the leader, its process group and all its descendants.

    torchrun starts each worker in a session of its own, so the leader's process
    group alone does not hold them; descendants are found through /proc and
    remembered, so a worker whose torchrun died first is still waited for and killed.
    """

    def __init__(self, leader: int, pgid: int) -> None:
        self.leader, self.pgid = leader, pgid
        self.known: dict[int, int] = {}  # pid -> start time
        self.refresh()

    def refresh(self) -> None:
        table = _processes()
        if not table:  # no /proc: the group is all we can see
            return
        members = {pid for pid, proc in table.items() if proc.pgid == self.pgid or pid == self.leader}
        members |= {pid for pid in self.known if pid in table and table[pid].started == self.known[pid]}
        children: dict[int, list[int]] = {}
        for proc in table.values():
            children.setdefault(proc.ppid, []).append(proc.pid)
        todo = list(members)
        while todo:
            pid = todo.pop()
            for child in children.get(pid, []):
                if child not in members:
                    members.add(child)
                    todo.append(child)
        for pid in members:
            self.known.setdefault(pid, table[pid].started)

    def alive(self) -> list[int]:
        """Return the remembered processes that still run (zombies do not count)."""
        table = _processes()
        if not table:
            return [self.leader] if _group_alive(self.pgid) else []
        return [
            pid
            for pid, started in self.known.items()
            if pid in table and table[pid].started == started and not table[pid].zombie
        ]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(
    experiment: Experiment, process: subprocess.Popen[bytes] | None = None, timeout: float = STOP_TIMEOUT_S
) -> bool:
    """Stop the experiment's trainer: SIGTERM, wait for it to save and exit, then SIGKILL what is left.

    ``process`` is the child from ``start`` when this process started it (it is
    reaped); otherwise the trainer is found through its lock file. Every process
    of the run (the leader, its group, its descendants: torchrun's workers too)
    is gone when this returns. Returns whether anything was running.
    """
    pid = process.pid if process is not None and process.poll() is None else running_pid(experiment)
    if pid is None:
        return False
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    # The leader of the run's group (the trainer, or torchrun) gets SIGTERM, once: torchrun forwards
    # it to each worker, and a worker that got it twice would take the second as "exit now, unsaved".
    leader = pgid if pgid != os.getpgrp() else pid
    tree = _ProcessTree(leader, pgid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(leader, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    leader_gone: float | None = None
    while time.monotonic() < deadline:
        if process is not None:
            process.poll()  # reap our child, or it stays a zombie
        tree.refresh()
        alive = tree.alive()
        if not alive:
            break
        if leader not in alive:
            # The leader has exited; whatever it left behind gets a short grace, then the kill.
            leader_gone = leader_gone or time.monotonic()
            if time.monotonic() - leader_gone > ORPHAN_GRACE_S:
                break
        time.sleep(0.2)
    for left in tree.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(left, signal.SIGKILL)
    if process is not None:
        process.wait()
    deadline = time.monotonic() + 10  # SIGKILL is not instant: wait until the kernel has them all
    while tree.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return True

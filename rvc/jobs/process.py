"""Child processes: start one in its own session, tell whether it still runs, stop its whole tree.

Shared by the trainer launcher (``rvc.train.launcher``) and the stage jobs (``rvc.jobs.launcher``).
A child runs in a new session so a Ctrl-C in the app's terminal does not reach it and the app may
restart and re-attach. Stopping sends SIGTERM to the group's leader (once: torchrun forwards it, and a
worker that got it twice would take the second as "exit now, unsaved"), waits, and kills whatever of
the tree is left, so no process outlives a stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import rvc

ORPHAN_GRACE_S = 10.0  # after the leader exits, how long its leftovers may take to follow it


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """Return this process's environment for a child that imports ``rvc`` from this checkout."""
    env = dict(os.environ)
    # The child imports rvc from this checkout whatever the working directory is.
    package_root = str(Path(rvc.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # its log is read live
    env.update(extra)
    return env


def spawn(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` (a list, no shell) in a new session, stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n=== {stamp} started: {' '.join(argv)}\n".encode())
        log.flush()
        # A new session: its own process group, which stop_tree() signals as a whole.
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(env or {}),
            start_new_session=True,
        )


def exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """In a pool worker (call it first in the pool's initializer): end this process when ``parent``,
    the pid of the process that made the pool (passed in the initializer's arguments), is gone.

    A stage killed with SIGKILL (kill -9, the out-of-memory killer) cannot stop its pool, and a
    worker blocked waiting for work would otherwise live on, holding its models' memory, as a
    child of init. The worker notices its new parent within ``poll_s`` and exits. The parent's pid
    comes from the parent, not from ``os.getppid()`` here: a worker still importing when its
    parent was killed would read init's pid and watch it forever (seen: extract workers of a job
    killed in its first seconds, left behind with 0.5 GB each).
    """
    import threading

    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextmanager
def worker_pool(pool: ProcessPoolExecutor) -> Iterator[ProcessPoolExecutor]:
    """Yield ``pool`` and shut it down; on a stop (SIGTERM, Ctrl-C) or an error, kill its workers first.

    Waiting for the work they hold (a chunk of clips, a long recording) would make a Stop take as
    long as that work, past the launcher's grace and into a SIGKILL of the whole job; their results
    would be dropped anyway. Workers only compute, or write through temporary files that the next
    run removes, so nothing half-written is left.
    """
    try:
        yield pool
    except BaseException:
        # ProcessPoolExecutor has no terminate_workers() before Python 3.14.
        for worker in list(getattr(pool, "_processes", None) or {}):  # pid -> Process
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    pgid: int
    zombie: bool
    started: int  # clock ticks after boot: tells a process from a later one that reuses its pid


def _parse_stat(pid: int, text: str) -> _Proc:
    # the command may hold spaces and parentheses: the fields start after the last ')'
    fields = text.rsplit(")", 1)[1].split()
    return _Proc(pid, int(fields[1]), int(fields[2]), fields[0] in "ZX", int(fields[19]))


def _processes() -> dict[int, _Proc]:
    """Return every process of the machine from /proc ({} where there is no /proc)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            table[pid] = _parse_stat(pid, stat.read_text())
        except (OSError, IndexError, ValueError):
            continue  # it exited while we read
    return table


def start_ticks(pid: int) -> int | None:
    """Return when process ``pid`` started (clock ticks after boot), or None when it is gone or unknown."""
    try:
        return _parse_stat(pid, Path(f"/proc/{pid}/stat").read_text()).started
    except (OSError, IndexError, ValueError):
        return None


def is_alive(pid: int, started: int | None = None) -> bool:
    """Return whether ``pid`` runs and is the process that started at ``started`` ticks (zombies are dead)."""
    try:
        proc = _parse_stat(pid, Path(f"/proc/{pid}/stat").read_text())
    except FileNotFoundError:
        return False
    except (OSError, IndexError, ValueError):  # no /proc: the signal probe is all there is
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return not proc.zombie and (started is None or proc.started == started)


class ProcessTree:
    """A child's processes: the leader, its process group and all its descendants.

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


def stop_tree(
    pid: int,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 60.0,
    orphan_grace: float = ORPHAN_GRACE_S,
) -> bool:
    """Stop process ``pid`` and everything it started: SIGTERM, wait up to ``timeout`` s, then SIGKILL.

    ``process`` is the Popen of ``pid`` when this process started it (it is reaped). Every
    process of the tree (the leader, its group, its descendants) is gone when this returns.
    Returns whether anything was running.
    """
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    leader = pgid if pgid != os.getpgrp() else pid
    tree = ProcessTree(leader, pgid)
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
            if time.monotonic() - leader_gone > orphan_grace:
                break
        time.sleep(0.1)
    for left in tree.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(left, signal.SIGKILL)
    if process is not None:
        process.wait()
    deadline = time.monotonic() + 10  # SIGKILL is not instant: wait until the kernel has them all
    while tree.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return True

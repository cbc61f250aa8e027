"""``python -m rvc.train --experiment NAME`` (or ``torchrun --nproc-per-node N -m rvc.train ...``).

The trainer process: it prints ordinary log lines and ``@@rvc {json}`` progress
events (see progress.py), appends the events to ``progress.jsonl``, and on
SIGTERM or SIGINT saves its state and exits. Exit status: 0 done or stopped,
1 failed, 2 bad input, 3 diverged (after rolling back with a lower LR up to 3 times).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from rvc.errors import UserError, path_problem
from rvc.experiment import Workspace

if TYPE_CHECKING:
    import torch

    from rvc.experiment import Experiment
    from rvc.train.distributed import Distributed
    from rvc.train.progress import ProgressWriter


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rvc.train",
        description="Train an RVC v2 model on a prepared and extracted experiment.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_arguments(parser)
    parser.add_argument("--logs-dir", type=Path, default=Path("logs"), help="folder holding the experiments")
    parser.add_argument("--assets-dir", type=Path, default=Path("assets"), help="folder of downloaded weights")
    return parser.parse_args(argv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--experiment", required=True, help="experiment name (with saved settings: python -m rvc config)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (torchrun picks per rank)")


MAX_ROLLBACKS = 3  # runs rolled back to their last state (rvc.train.run_end) before training gives up


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop checks it between steps, saves and exits."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def install(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.requested:  # a second signal: the user really wants out now
                raise KeyboardInterrupt
            self.requested = True
            print(f"received signal {signum}: saving and stopping", flush=True)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        workspace = Workspace(args.logs_dir.resolve(), args.assets_dir.resolve())
    except (OSError, RuntimeError) as error:  # a symbolic link loop (RuntimeError before Python 3.13)
        if (problem := path_problem(error)) is None:
            raise
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return run_trainer(workspace, args.experiment, args.device)


def run_trainer(workspace: Workspace, name: str, device_name: str = "auto") -> int:
    """Train in this process (``python -m rvc.train`` and ``python -m rvc train``): return the status."""
    use_compile_cache(workspace)
    if device_name != "cpu" and Path("/dev/nvidiactl").exists():  # a GPU here: its libraries will load
        from rvc.train.warm_libraries import start_warming

        start_warming(lambda line: print(line, flush=True))
    return train_experiment(workspace, name, device_name)


def use_compile_cache(workspace: Workspace) -> None:
    """Keep torch.compile's kernels under the assets folder, so the next run starts in seconds.

    Inductor and Triton read these variables when they first compile, in this process only;
    a cache folder the user chose (the variables already set) wins.
    """
    cache = workspace.assets.compile_cache_dir
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "inductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", str(cache / "triton"))


def train_experiment(workspace: Workspace, name: str, device_name: str = "auto") -> int:
    """Run the trainer for experiment ``name``; return the process exit status."""
    from rvc.train.progress import ProgressWriter

    dist = _distributed()
    try:
        experiment = workspace.experiment(name)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    progress = ProgressWriter(experiment.progress_jsonl if dist.is_main else None)
    # Where this run's events begin in the file: an out-of-memory message names the batch its start event gave.
    since = experiment.progress_jsonl.stat().st_size if experiment.progress_jsonl.exists() else 0
    lock = None
    try:
        if dist.is_main:
            lock = _hold_training_lock(experiment)
        code = _train_with_rollbacks(workspace, experiment, device_name, dist, progress)
        _finish_together(dist)
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the UI must hear about any failure: each kind has its status and message
        return _failed(error, experiment, since, dist, progress)
    finally:
        _release(dist, lock)


def _distributed() -> Distributed:
    """This process's place among torchrun's ranks (one rank of one when started alone)."""
    from rvc.train.distributed import Distributed

    return Distributed(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def _hold_training_lock(experiment: Experiment) -> TextIO:
    """Take the experiment's training lock and refuse to train beside a prepare or extract of it."""
    from rvc.jobs.launcher import refuse_collision

    lock = _take_lock(experiment.train_lock)
    try:
        # Holding the lock, a prepare or extract started from now on refuses to run; one that
        # started before it is found here (however it was started: the UI, the CLI, a script).
        refuse_collision(experiment, "train")
    except BaseException:
        lock.close()
        raise
    return lock


def _train_with_rollbacks(
    workspace: Workspace, experiment: Experiment, device_name: str, dist: Distributed, progress: ProgressWriter
) -> int:
    """Train; a run that rolled back to its last state (a lower LR) starts again from it, a few times at most."""
    import torch

    from rvc.experiment.config_file import load_config
    from rvc.train.events import ErrorEvent
    from rvc.train.loop import Trainer
    from rvc.train.run_end import ROLLED_BACK

    config = load_config(experiment)
    device = _device(device_name, dist)
    if dist.world_size > 1:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    stop = StopFlag()
    stop.install()
    compile_times = workspace.assets.compile_cache_dir / "compile_times.json"
    for _ in range(MAX_ROLLBACKS + 1):
        code = Trainer(experiment, config, device, progress, stop, dist, compile_times=compile_times).run()
        if code != ROLLED_BACK:
            return code
        # The state on disk now carries a lower LR: start again from it.
    if dist.is_main:
        progress.emit(ErrorEvent(message=f"training diverged {MAX_ROLLBACKS + 1} times; lower --lr or use fp32"))
    return 3


def _failed(error: Exception, experiment: Experiment, since: int, dist: Distributed, progress: ProgressWriter) -> int:
    """Say why the run failed (an event for the UI, a line for the terminal); return the exit status.

    since : the progress file's size when this run began (its own start event comes after).
    """
    from rvc.experiment.config_file import load_config
    from rvc.train import out_of_memory
    from rvc.train.events import ErrorEvent

    if isinstance(error, UserError):
        message, detail, status = str(error), None, 2
    elif (problem := path_problem(error)) is not None:  # a folder where a file goes, in the experiment
        message, detail, status = problem, None, 2
    elif out_of_memory.caused_by_out_of_memory(error):  # a failed capture's own error included
        config = load_config(experiment)
        batch: int | None = None
        original: BaseException = error
        if isinstance(error, out_of_memory.OutOfMemoryAtBatch):  # the batch "auto" chose, the error it met
            batch, original = error.batch_size, error.__cause__ or error
        message, status = out_of_memory.gpu_message(experiment, config, since, batch), 1
        detail = (str(original).splitlines() or [""])[0]
    elif _host_out_of_memory(error):  # a batch far too large for the CPU's memory: not a bug
        config = load_config(experiment, check=False)
        detail = (str(error).splitlines() or [""])[0]
        message, status = out_of_memory.host_message(experiment, config, since), 2
    else:
        traceback.print_exc()
        message, detail, status = f"training failed: {type(error).__name__}: {error}", None, 1
    if dist.is_main:
        with contextlib.suppress(OSError):  # the events file itself failed (a folder named progress.jsonl)
            progress.emit(ErrorEvent(message=message, detail=detail))
    if status == 2:
        print(f"error: {message}", file=sys.stderr)
    return status


def _finish_together(dist: Distributed) -> None:
    """Wait for every rank at the end of a run that ended normally, before any leaves the process group.

    Rank 0 exports and writes its last events after the final collective; a rank that tore down its
    group meanwhile aborted now and then ("terminate called without an active exception", SIGABRT:
    the two-process CPU test, about one run in ten on a busy machine), failing a finished run.
    """
    if dist.world_size > 1:
        import torch

        if torch.distributed.is_initialized():
            # NCCL: on this rank's GPU (the trainer made it current), not one NCCL would guess.
            nccl = torch.distributed.get_backend() == "nccl"
            torch.distributed.barrier(device_ids=[torch.cuda.current_device()] if nccl else None)


def _release(dist: Distributed, lock: TextIO | None) -> None:
    """Leave the process group and let go of the training lock."""
    if dist.world_size > 1:
        import torch

        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if lock is not None:
        lock.close()


def _device(name: str, dist: Distributed) -> torch.device:
    import torch

    from rvc.devices import apply_gpu_memory_cap, resolve_device

    resolved = resolve_device(name)
    device = torch.device("cuda", dist.local_rank) if resolved == "cuda" else torch.device(resolved)
    if device.type == "cuda":
        # The process's current device is the one it trains on: PyTorch makes the CUDA graphs' capture
        # stream (one per process) on the current device, and a capture on another GPU's stream fails.
        torch.cuda.set_device(device)
    apply_gpu_memory_cap(device)
    return device


def _take_lock(path: Path) -> TextIO:
    """Hold an exclusive lock for this run; the OS releases it if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # "a", not "w": a refused second run must not empty the running trainer's pid
    handle = open(path, "a")  # noqa: SIM115 - held open for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UserError(
            f"experiment {path.parent.name!r} is already training (lock {path}); stop that run first"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _host_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is the host (CPU) allocator refusing memory."""
    text = str(error)
    return isinstance(error, MemoryError) or "DefaultCPUAllocator" in text or "can't allocate memory" in text


if __name__ == "__main__":
    sys.exit(main())

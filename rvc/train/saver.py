"""Saving training states while training goes on.

On the training thread a save only enqueues copies of the weights, the optimizer states and the
counters into host buffers (pinned, stream-ordered after the last step and before the next one, so
the training thread does not wait for them). One background thread waits for those copies,
serialises the files and writes them as checkpoint.py does: each atomically, the state file last,
then the old states pruned. At most one write is in flight: the next save waits for it, as it
reuses the same host buffers. A kill -9 at any moment therefore leaves the newest complete state
loadable, and never a half-written file.

A new best epoch keeps only the generator, in host buffers of its own. It is written with the next
save, before that save's state file (so every complete state's best record has its ``G_best.pth``),
or when the saver closes at the end of the run. The best buffers come in two sets: a new best that
arrives while a write is in flight fills the set that write is not reading, so the epoch after a
save (when validation runs every epoch, most of them) does not wait seconds for the files.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rvc.experiment import checkpoints as checkpoint
from rvc.train.events import CheckpointEvent


class HostCopy:
    """Host copies of nested state (dicts and lists of tensors and plain values), in buffers kept
    from one copy to the next: pinned memory for tensors on a GPU, filled without a host sync."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[Any, ...], torch.Tensor] = {}

    def take(self, value: Any, key: tuple[Any, ...] = ()) -> Any:
        """Return ``value`` with every tensor replaced by its host copy (GPU copies are still in flight)."""
        if isinstance(value, torch.Tensor):
            value = value.detach()
            if value.device.type == "cpu":
                return value.clone()
            buffer = self._buffers.get(key)
            if buffer is None or buffer.shape != value.shape or buffer.dtype != value.dtype:
                buffer = torch.empty(value.shape, dtype=value.dtype, pin_memory=True)
                self._buffers[key] = buffer
            buffer.copy_(value, non_blocking=True)
            return buffer
        if isinstance(value, dict):
            return {name: self.take(item, (*key, name)) for name, item in value.items()}
        if type(value) in (list, tuple):
            return type(value)(self.take(item, (*key, index)) for index, item in enumerate(value))
        return copy.deepcopy(value)  # plain values: the training thread goes on changing its own


@dataclass
class HeldBest:
    """The best epoch's generator, on the host, until it is written (and after: the end exports it)."""

    generator: dict[str, torch.Tensor]
    epoch: int
    step: int
    learning_rate: float
    slot: int  # which of the saver's two sets of host buffers holds it
    copied: torch.cuda.Event | None  # when those buffers hold it (None: on the CPU already)
    written: bool = False

    def ready(self) -> HeldBest:
        if self.copied is not None:
            self.copied.synchronize()
        return self


@dataclass
class _Job:
    tag: int
    generator: dict[str, Any]
    discriminator: dict[str, Any]
    extra: dict[str, Any]
    copied: torch.cuda.Event | None  # when the host buffers hold the snapshot (None: on the CPU already)
    best: HeldBest | None  # the held best as of this state, written before it unless it is on disk


class StateSaver:
    """Snapshots on the calling (training) thread, files written on one background thread.

    on_written(event) is called from the writer thread after each complete state, with its
    ``checkpoint`` progress event.
    """

    def __init__(
        self,
        folder: Path,
        keep_last: int,
        device: torch.device,
        on_written: Callable[[CheckpointEvent], object] | None = None,
    ) -> None:
        self.folder = folder
        self.keep_last = keep_last
        self.device = device
        self.on_written = on_written
        self._state_copy = HostCopy()
        self._best_copies = (HostCopy(), HostCopy())
        self.best: HeldBest | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rvc-saver")
        # One write in flight (``save`` waits for the last), and a new best fills the best buffers
        # that write is not reading, so the two threads never touch the same buffers at once.
        self._pending: Future[None] | None = None
        self._pending_best: HeldBest | None = None

    # --- on the training thread ---------------------------------------------------------------------
    def save(
        self,
        models: Any,
        epoch: int,
        step: int,
        learning_rate: float,
        extra: dict[str, Any],
    ) -> float:
        """Snapshot G, D, both optimizers and ``extra`` as state ``step``; return the seconds this thread spent."""
        started = time.perf_counter()
        self.wait()  # one write in flight: its buffers are the ones this snapshot refills
        generator = checkpoint.rvc_payload(
            checkpoint.plain_state(models.generator), models.optimizer_g.state_dict(), epoch, step, learning_rate
        )
        discriminator = checkpoint.rvc_payload(
            checkpoint.plain_state(models.discriminator), models.optimizer_d.state_dict(), epoch, step, learning_rate
        )
        snapshot = self._state_copy.take({"g": generator, "d": discriminator, "extra": extra})
        best = self.best if self.best is not None and not self.best.written else None
        job = _Job(step, snapshot["g"], snapshot["d"], snapshot["extra"], self._copied_event(), best)
        self._pending, self._pending_best = self._writer.submit(self._write, job), best
        return time.perf_counter() - started

    def hold_best(self, generator: torch.nn.Module, epoch: int, step: int, learning_rate: float) -> float:
        """Keep the generator as the best state, on the host; return the seconds this thread spent."""
        started = time.perf_counter()
        reading = self._pending_best if self._pending is not None and not self._pending.done() else None
        slot = 1 - reading.slot if reading is not None else 0  # never the buffers a write is reading
        state = self._best_copies[slot].take(checkpoint.plain_state(generator))
        self.best = HeldBest(state, epoch, step, learning_rate, slot, self._copied_event())
        return time.perf_counter() - started

    def best_generator(self) -> HeldBest | None:
        """The held best with its host copy complete, or None when this run has found none."""
        return self.best.ready() if self.best is not None else None

    def wait(self) -> None:
        """Block until the write in flight is on disk; raise what it raised."""
        pending, self._pending, self._pending_best = self._pending, None, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Write the held best if it is not on disk yet, wait for every write, stop the writer thread."""
        try:
            self.wait()
            if self.best is not None:
                self._write_best(self.best)
        finally:
            self._writer.shutdown(wait=True)

    def _copied_event(self) -> torch.cuda.Event | None:
        if self.device.type != "cuda":
            return None
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        return event

    # --- on the writer thread ---------------------------------------------------------------------
    def _write(self, job: _Job) -> None:
        started = time.perf_counter()
        if job.copied is not None:
            job.copied.synchronize()
        if job.best is not None:  # before the state file: a complete state's best record has its file
            self._write_best(job.best)
        paths = checkpoint.write_state(self.folder, job.tag, job.generator, job.discriminator, job.extra)
        removed = checkpoint.prune_states(self.folder, self.keep_last)
        if self.on_written is not None:
            self.on_written(
                CheckpointEvent(
                    epoch=job.generator["iteration"],
                    step=job.tag,
                    generator=str(paths.generator),
                    discriminator=str(paths.discriminator),
                    removed=removed,
                    write_s=round(time.perf_counter() - started, 3),
                )
            )

    def _write_best(self, best: HeldBest) -> None:
        if best.written:
            return
        best.ready()
        payload = checkpoint.rvc_payload(best.generator, {}, best.epoch, best.step, best.learning_rate)
        checkpoint.write_state(self.folder, checkpoint.BEST, payload)
        best.written = True

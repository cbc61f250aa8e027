"""Where a step's clips come from: the whole training set on the device, or one batch at a time.

Both give the step the same thing, a ``TrainingSet`` on the device and a Tensor[K x B] of its
rows, so the step (eager, graphed or compiled) does not know which one it runs on.

- ``ResidentBatches``: the set lives on the device (a 10-minute set is about 0.2 GB); a step's
  rows are an index into it, copied to the device once per epoch.
- ``StreamedBatches``: for sets that do not fit. The set stays in (pinned) host memory; each
  step's clips are gathered on the host into one of two staging buffers and copied into a
  device window of K x B rows, in stream order after the previous step, so the host gathers
  the next batch while the device trains on this one.
"""

from __future__ import annotations

import math

import torch

from rvc.config.memory import RESIDENT_SHARE
from rvc.config.train import TrainConfig
from rvc.train.data import TrainingSet


def streams(placement: str, data: TrainingSet, device: torch.device) -> bool:
    """Whether ``data`` is streamed to ``device`` rather than held there."""
    if placement == "stream":
        return True
    if placement == "gpu" or device.type != "cuda":
        return False
    from rvc.devices import gpu_memory_gib

    usable = gpu_memory_gib(device.index or 0) or 0.0  # under RVC_GPU_MEMORY_GIB, the capped memory
    return data.nbytes() > RESIDENT_SHARE * usable * 2**30


def epoch_rows(clips: int, epoch: int, train: TrainConfig, world_size: int, steps: int) -> torch.Tensor:
    """Return the clip rows of one epoch's steps: Tensor[steps x world_size x grad_accum x batch_size].

    The order is a function of the seed and the epoch only, the same on every rank and after a
    resume, so a run stopped mid-epoch goes on at the next batch of the same order. The last
    steps wrap around to the first clips: every batch has the same shape (one CUDA graph).
    """
    order = torch.Generator(device="cpu")
    order.manual_seed(train.seed * 100_003 + epoch)
    permutation = torch.randperm(clips, generator=order)
    batch = train.resolved_batch_size
    needed = steps * world_size * train.grad_accum * batch
    permutation = permutation.repeat(math.ceil(needed / clips))[:needed]
    return permutation.view(steps, world_size, train.grad_accum, batch)


def _empty_like(data: TrainingSet, rows: int, device: torch.device, pin: bool = False) -> TrainingSet:
    def empty(t: torch.Tensor) -> torch.Tensor:
        return torch.zeros((rows, *t.shape[1:]), dtype=t.dtype, device=device, pin_memory=pin)

    return TrainingSet(
        [f"<row {i}>" for i in range(rows)],
        empty(data.wav),
        empty(data.phone),
        empty(data.pitch),
        empty(data.pitchf),
        empty(data.lengths),
        data.hop_length,
        data.sample_rate,
        empty(data.speakers),
    )


def _fields(data: TrainingSet) -> tuple[torch.Tensor, ...]:
    return data.tensors()


class ResidentBatches:
    """The whole set on the device; a step's rows index it directly."""

    def __init__(self, data: TrainingSet, device: torch.device) -> None:
        self.data = data.to(device)  # what the step reads
        self.clips = self.data  # the whole set
        self.device = device

    def epoch(self, rows: torch.Tensor) -> torch.Tensor:
        """rows : Tensor[S x K x B] of one epoch's steps → the same on the device (one copy an epoch)."""
        return rows.to(self.device)

    def step(self, epoch_rows: torch.Tensor, index: int) -> torch.Tensor:
        return epoch_rows[index]


class StreamedBatches:
    """The set in host memory; before each step its K x B clips are copied into a device window."""

    def __init__(self, data: TrainingSet, device: torch.device, micro_batches: int, batch_size: int) -> None:
        self.clips = data  # the whole set, on the host
        self.device = device
        self.shape = (micro_batches, batch_size)
        rows = micro_batches * batch_size
        pin = device.type == "cuda"
        self.data = _empty_like(data, rows, device)  # what the step reads: the same storage every step
        self._staging = [_empty_like(data, rows, torch.device("cpu"), pin) for _ in range(2)]
        self._copied = [torch.cuda.Event() if pin else None for _ in range(2)]
        self._turn = 0
        self._window_index = torch.arange(rows, device=device).view(self.shape)
        self._load(torch.arange(rows) % len(data))  # warm-up and capture read real clips

    def epoch(self, rows: torch.Tensor) -> torch.Tensor:
        """rows : Tensor[S x K x B] of one epoch's steps; they stay on the host, where the clips are."""
        return rows

    def step(self, epoch_rows: torch.Tensor, index: int) -> torch.Tensor:
        """Copy step ``index``'s clips into the window; return the window's rows (always the same)."""
        self._load(epoch_rows[index].reshape(-1))
        return self._window_index

    def _load(self, rows: torch.Tensor) -> None:
        staging, copied = self._staging[self._turn], self._copied[self._turn]
        if copied is not None:
            copied.synchronize()  # the copy that last read this buffer is done: safe to overwrite
        for source, target in zip(_fields(self.clips), _fields(staging), strict=True):
            torch.index_select(source, 0, rows, out=target)
        for source, target in zip(_fields(staging), _fields(self.data), strict=True):
            target.copy_(source, non_blocking=True)
        if copied is not None:
            copied.record()
        self._turn = 1 - self._turn

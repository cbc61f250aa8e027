"""Batch size "auto": the largest batch the dataset supports whose measured trial step fits the GPU.

The trainer resolves the batch once, after the models are built (and a resumed state loaded) and
before the step is graphed or compiled, and hands on a config holding the number, so everything
downstream (the data order, the graph's shapes, the compile record, the ``start`` event) sees one
batch. The memory estimate (``rvc/config/memory.py``) only picks the first candidate: each
candidate is measured by running the trainer's own ``TrainStep`` on real clips of the training set
(same models, precision and channels-last layout), with the optimizers told to skip through the
device flag the graph's warm-up steps use, so no weight, optimizer moment or loss scale changes;
the RNG states are put back, so a run trains the same as with that batch given as a number.

A resumed run keeps the batch its state was trained with: the order of the clips depends on it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rvc.config.batch import MEASURED_SHARE, dataset_bound
from rvc.config.experiment import ExperimentConfig
from rvc.config.memory import MemoryEstimate, memory_estimate
from rvc.train import out_of_memory
from rvc.train.data import TrainingSet
from rvc.train.distributed import Distributed
from rvc.train.mel import MultiScaleMel, Spectrogram
from rvc.train.models import Models
from rvc.train.precision import Precision
from rvc.train.step import StepMetrics, TrainStep

# Trials at most: each costs a step or two (and cuDNN's autotuning of its shapes), seconds on a GPU.
MAX_TRIALS = 6

PeakOf = Callable[[int], float | None]  # batch -> measured peak GiB, or None: out of memory


@dataclass(frozen=True)
class BatchChoice:
    size: int
    reason: str  # how it was chosen, for the start event, the Train tab and the log ("auto: measured ...")
    peak_gib: float | None = None  # the chosen batch's measured trial peak (None: not measured)
    trials_s: float = 0.0  # what the measured trial steps took (0: nothing measured)


def with_batch(config: ExperimentConfig, size: int) -> ExperimentConfig:
    """Return ``config`` training at batch ``size`` (a copy: the saved config keeps "auto")."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, batch_size=size))


def choose_batch(
    config: ExperimentConfig,
    precision: str,
    clips: int,
    seconds: float,
    *,
    resumed_batch: int = 0,
    world_size: int = 1,
    peak_of: PeakOf | None = None,
    usable_gib: float | None = None,
    device: str = "cpu",
) -> BatchChoice:
    """Return the batch to train with and why.

    A number in the config is kept. "auto" keeps ``resumed_batch`` (the state's; 0: a new run or a
    state saved before it was recorded); else it is the dataset's bound, and on a GPU
    (``peak_of`` and ``usable_gib`` given) the largest batch up to the bound whose measured peak
    takes at most MEASURED_SHARE of ``usable_gib``, searched from the estimate's guess.
    """
    asked = config.train.batch_size
    if asked != "auto":
        return BatchChoice(asked, "set in the configuration")
    if resumed_batch > 0:
        return BatchChoice(resumed_batch, "auto: kept from the run this one continues (the clips' order depends on it)")
    bound = dataset_bound(seconds, clips, world_size)
    if peak_of is None or usable_gib is None:
        return BatchChoice(bound.size, f"auto: {bound.why}; no GPU memory to measure on {device}")
    limit = MEASURED_SHARE * usable_gib
    estimate = memory_estimate(config, precision, usable_gib)
    guess = min(bound.size, estimate.largest_batch(usable_gib, MEASURED_SHARE))
    size, peaks = largest_fitting(guess, bound.size, _with_held_out(peak_of, estimate), limit, estimate.step(0))
    if size == 0:
        tried = ", ".join(f"{b}: {_peak_text(p)}" for b, p in sorted(peaks.items()))
        return BatchChoice(1, f"auto: no batch measured fits in {limit:.1f} GiB (tried {tried})")
    peak = peaks[size]
    held_out = estimate.beside_step(size)
    beside = f" (with {held_out:.1f} estimated for the held-out pass)" if held_out >= 0.05 else ""
    reason = f"auto: measured {peak:.1f} GiB{beside} of {usable_gib:.1f} GiB usable; {bound.why}"
    larger = [b for b in sorted(peaks) if b > size]
    if larger:  # why not more: the memory
        over = peaks[larger[0]]
        too_much = "ran out of memory" if over is None else f"took {over:.1f} GiB, over {MEASURED_SHARE:.0%} of it"
        reason += f"; {larger[0]} {too_much}"
    return BatchChoice(size, reason, peak)


def _with_held_out(peak_of: PeakOf, estimate: MemoryEstimate) -> PeakOf:
    """``peak_of`` plus what the held-out pass adds to it (``MemoryEstimate.beside_step``): the trial
    measures the step alone."""

    def need(batch: int) -> float | None:
        peak = peak_of(batch)
        return None if peak is None else peak + estimate.beside_step(batch)

    return need


def _peak_text(peak: float | None) -> str:
    return "out of memory" if peak is None else f"{peak:.1f} GiB"


def largest_fitting(
    start: int, bound: int, peak_of: PeakOf, limit_gib: float, fixed_gib: float = 0.0, max_trials: int = MAX_TRIALS
) -> tuple[int, dict[int, float | None]]:
    """Return the largest batch in 1..``bound`` whose peak is at most ``limit_gib`` (0: none found) and every
    measured peak (None: out of memory).

    Starts at ``start`` and moves by a straight line through the peaks measured so far (a step's
    memory is a fixed part plus a part per clip; ``fixed_gib`` stands in for the fixed part until
    two batches are measured), never retrying a batch, within ``max_trials`` trials.
    """
    peaks: dict[int, float | None] = {}
    candidate = max(1, min(start, bound))
    for _ in range(max_trials):
        peaks[candidate] = peak_of(candidate)
        fits = max((b for b, p in peaks.items() if p is not None and p <= limit_gib), default=0)
        too_big = min((b for b, p in peaks.items() if p is None or p > limit_gib), default=bound + 1)
        if fits + 1 >= too_big:
            break
        candidate = _next_candidate(peaks, limit_gib, fixed_gib, fits, too_big)
        if candidate in peaks:
            break
    fits = max((b for b, p in peaks.items() if p is not None and p <= limit_gib), default=0)
    return fits, peaks


def _next_candidate(peaks: dict[int, float | None], limit: float, fixed: float, fits: int, too_big: int) -> int:
    """The batch to try next, strictly between ``fits`` and ``too_big``: where the line predicts the limit."""
    measured = sorted((b, p) for b, p in peaks.items() if p is not None)
    predicted = (fits + too_big) // 2  # only out-of-memory so far: halve
    if len(measured) >= 2 and measured[-1][1] > measured[0][1]:
        (b0, p0), (b1, p1) = measured[0], measured[-1]
        per_clip = (p1 - p0) / (b1 - b0)
        predicted = int(b0 + (limit - p0) / per_clip)
    elif measured:
        b, p = measured[-1]
        per_clip = max(p - min(fixed, 0.9 * p), 1e-6) / b
        predicted = int(b + (limit - p) / per_clip)
    if predicted >= too_big:  # the line passes a batch that ran out of memory (no peak to fit): halve the gap
        return (fits + too_big + 1) // 2
    return max(fits + 1, predicted)


class TrialStep:
    """``trial(batch)``: the GPU memory (GiB) that training at ``batch`` needs, or None when it runs out.

    Two dry steps per batch: the first lets cuDNN autotune these shapes (its trial workspaces are
    not what training holds), the second is measured. Where the run's step will be a CUDA graph
    (``graphed``: every step mode but eager, on CUDA) and the eager measure fits ``limit_gib``, the
    trial then prepares that graph as training will (warm-up steps, capture) and lets it go: the
    capture's own memory pool and what it cannot reuse are only seen there (on an H100 capped at
    6 GiB, batches that the eager measure passed failed in the capture). Gradients are dropped and
    the RNG states put back afterwards; the optimizers skip, so the models are as they were. The
    resolver measures on CUDA only; on another device the steps run the same and the need reads 0
    (the CPU tests check that a trial leaves the training as it was).
    """

    def __init__(
        self,
        config: ExperimentConfig,
        models: Models,
        spectrogram: Spectrogram,
        data: TrainingSet,
        precision: Precision,
        multiscale: MultiScaleMel | None,
        *,
        graphed: bool = False,
        limit_gib: float = float("inf"),
    ) -> None:
        self.device = data.wav.device
        self.micro_batches = config.train.grad_accum
        self.graphed = graphed and self.device.type == "cuda"
        self.limit_gib = limit_gib
        self.step = TrainStep(
            config, models, spectrogram, data, StepMetrics(self.device), precision, multiscale=multiscale
        )
        self.step.dry.fill_(True)  # the optimizers and the loss scale skip every trial step

    def __call__(self, batch: int) -> float | None:
        cuda = self.device.type == "cuda"
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state(self.device) if cuda else None
        try:
            peak: float | None = self._measure(batch)
            if self.graphed and peak is not None and peak <= self.limit_gib:
                peak = max(peak, self._measure_graphed(batch))
        except Exception as error:  # torch.OutOfMemoryError, or a failed capture's error that follows one
            if not out_of_memory.caused_by_out_of_memory(error):
                raise
            peak = None
        self._drop_gradients()
        self.step.models.discriminator.requires_grad_(True)  # an out-of-memory may have left it off
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, self.device)
            torch.cuda.empty_cache()  # what the trial cached goes back before the next one (or training)
        return peak

    def _drop_gradients(self) -> None:
        models = self.step.models
        models.optimizer_g.zero_grad(set_to_none=True)
        models.optimizer_d.zero_grad(set_to_none=True)

    def _measure(self, batch: int) -> float:
        """Two dry steps; what an eager step at ``batch`` needs, in GiB (off CUDA there is no allocator to ask: 0).

        What stays reserved once the step's cache goes back (weights, optimizer states and the gaps
        around them) plus the step's transient peak above what was allocated before it: as much as
        the step could take, were its intermediates unable to reuse those gaps, as a graph's pool
        cannot. It decides eager runs, and whether a graphed trial is worth its capture. The first
        step's cached blocks (cuDNN's autotuning workspaces among them) go back before the second
        step is measured, so the measured step's segments are its own.
        """
        cuda = self.device.type == "cuda"
        index = self._index(batch)
        self.step(index)
        if not cuda:
            self.step(index)
            return 0.0
        torch.cuda.synchronize(self.device)
        self._drop_gradients()  # the measured step allocates them anew: they count in its transient peak
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.step(index)
        torch.cuda.synchronize(self.device)
        transient = torch.cuda.max_memory_allocated(self.device) - before
        self._drop_gradients()
        torch.cuda.empty_cache()
        held = torch.cuda.memory_reserved(self.device)
        return (held + transient) / 2**30

    def _measure_graphed(self, batch: int) -> float:
        """Prepare the graphed step at ``batch`` as training will, then let it go; the peak reserved GiB."""
        from rvc.train.graph import GraphedStep, set_capturable

        set_capturable(self.step.models, self.device, True)  # as prepare_step sets it for every graphed mode
        torch.cuda.reset_peak_memory_stats(self.device)
        graphed = GraphedStep(self.step, (self.micro_batches, batch))
        try:
            graphed.prepare(self._index(batch))
            return torch.cuda.max_memory_reserved(self.device) / 2**30
        finally:
            self.step.dry.fill_(True)  # prepare leaves it off for the replays; a trial never replays
            graphed.graph = None  # the graph and its pool go (empty_cache gives the pool back)

    def _index(self, batch: int) -> torch.Tensor:
        rows = torch.arange(self.micro_batches * batch, device=self.device) % len(self.step.data)
        return rows.view(self.micro_batches, batch)


def resolve_batch(
    config: ExperimentConfig,
    models: Models,
    spectrogram: Spectrogram,
    multiscale: MultiScaleMel | None,
    data: TrainingSet,
    precision: Precision,
    device: torch.device,
    resumed_batch: int = 0,
    dist: Distributed | None = None,
) -> BatchChoice:
    """Choose the batch for the trainer, measured on CUDA with ``data`` (the training set: on ``device``
    when it is held there; a streamed set's first clips are copied there for the trials).

    With several processes each measures its own GPU and all take the smallest choice (a collective).
    """
    from rvc.devices import gpu_memory_gib

    dist = dist or Distributed()
    # The dataset's length as prepare recorded it (RVC's rule counts the whole recording), or where the
    # config has none, the training clips' own.
    clips, seconds = len(data), config.data.seconds or data.seconds
    if config.train.batch_size != "auto" or resumed_batch > 0 or device.type != "cuda":
        return choose_batch(
            config,
            precision.name,
            clips,
            seconds,
            resumed_batch=resumed_batch,
            world_size=dist.world_size,
            device=str(device),
        )
    bound = dataset_bound(seconds, clips, dist.world_size).size
    usable = gpu_memory_gib(device.index or 0)
    # The trials start from the estimate's guess: at the set's own padded length, whatever config recorded.
    padded = data.max_frames * data.hop_length / data.sample_rate
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, longest_clip_seconds=padded))
    started = time.perf_counter()
    on_device = data if data.wav.device == device else data.head(bound).to(device)
    choice = choose_batch(
        config,
        precision.name,
        clips,
        seconds,
        world_size=dist.world_size,
        peak_of=TrialStep(
            config,
            models,
            spectrogram,
            on_device,
            precision,
            multiscale,
            graphed=config.train.step_mode != "eager",  # on CUDA every other mode ends in a graph
            limit_gib=MEASURED_SHARE * usable if usable is not None else float("inf"),
        ),
        usable_gib=usable,
        device=str(device),
    )
    del on_device  # a streamed set's trial copy: training streams into a window of its own
    torch.cuda.empty_cache()
    choice = dataclasses.replace(choice, trials_s=time.perf_counter() - started)
    agreed = dist.smallest(choice.size, device)
    if agreed < choice.size:
        why = f"auto: the largest every GPU fits (this one's: {choice.size}, {choice.reason})"
        return BatchChoice(agreed, why, trials_s=choice.trials_s)
    return choice

"""What the loop reports: the smoothed steps/s, the step event, and the events that close an epoch."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rvc.config.train import TrainConfig
from rvc.train.events import BestEvent, EpochEvent, Event, OvertrainEvent, StepEvent
from rvc.train.overtrain import OvertrainDetector


@dataclass
class RateWindow:
    """The steps since the last progress event, and the smoothed steps/s."""

    steps: int = 0
    start: float = field(default_factory=time.monotonic)
    rate: float | None = None

    def due(self, every_steps: int, every_seconds: float, last_of_epoch: bool) -> bool:
        return self.steps >= every_steps or time.monotonic() - self.start >= every_seconds or last_of_epoch

    def close(self) -> float:
        """Fold this window into the smoothed rate, start the next one, and return the rate."""
        now = time.monotonic()
        rate = self.steps / max(now - self.start, 1e-9)
        self.rate = rate if self.rate is None else 0.7 * self.rate + 0.3 * rate
        self.steps, self.start = 0, now
        return self.rate


@dataclass(frozen=True)
class EpochTimes:
    """What an epoch cost the training thread, in seconds, and its peak GPU memory."""

    epoch_s: float
    validation_s: float  # the held-out loss and, on a new best, the copy of G that keeps it
    sample_s: float  # TensorBoard's images and audio
    save_s: float  # the state's snapshot; the files are written on a background thread
    peak_mem_gib: float | None  # None off CUDA
    peak_reserved_gib: float | None = None  # what the allocator held at most (None off CUDA)


def _rounded(gib: float | None) -> float | None:
    return round(gib, 3) if gib is not None else None


def report_epoch(
    emit: Callable[[Event], object],
    train: TrainConfig,
    detector: OvertrainDetector,
    epoch: int,
    step: int,
    times: EpochTimes,
    validation: dict[str, float],
    is_best: bool,
) -> None:
    """Emit the epoch event, then ``best`` for a new best epoch and ``overtrain`` while the held-out loss stalls."""
    emit(
        EpochEvent(
            epoch=epoch,
            epochs=train.epochs,
            step=step,
            epoch_s=round(times.epoch_s, 3),
            validation_s=round(times.validation_s, 3),
            sample_s=round(times.sample_s, 3),
            save_s=round(times.save_s, 3),
            peak_mem_gib=_rounded(times.peak_mem_gib),
            peak_reserved_gib=_rounded(times.peak_reserved_gib),
            validation=validation,
            best_epoch=detector.best_epoch or None,
            epochs_since_best=detector.epochs_since_best if detector.best_value is not None else None,
        )
    )
    if is_best:
        emit(BestEvent(epoch=epoch, step=step, value=detector.best_value))
    if detector.overtraining and validation:
        emit(
            OvertrainEvent(
                epoch=epoch,
                best_epoch=detector.best_epoch,
                epochs_since_best=detector.epochs_since_best,
                auto_stop=train.auto_stop,
                message=(
                    f"held-out mel loss has not improved for {detector.epochs_since_best} epochs "
                    f"(best: epoch {detector.best_epoch})"
                ),
            )
        )


@dataclass(frozen=True)
class StepPlace:
    """Where a step report stands: the epoch, the steps taken, the batch of the epoch (from 0) of how many."""

    epoch: int
    step: int
    batch: int
    steps_per_epoch: int


def step_event(
    train: TrainConfig,
    at: StepPlace,
    lr: float,
    metrics: dict[str, float],
    rate: float,
    skipped: int,
    gpu: dict[str, float],
) -> StepEvent:
    """The ``step`` event: the metrics' window means, the speed, the ETA and the epoch of the next save."""
    total_steps = at.steps_per_epoch * train.epochs
    every = train.save_every
    next_save = (at.epoch // every + 1) * every if at.epoch % every else at.epoch
    return StepEvent(
        epoch=at.epoch,
        step=at.step,
        total_steps=total_steps,
        batch=at.batch + 1,
        batches=at.steps_per_epoch,
        lr=lr,
        metrics=metrics,
        it_s=round(rate, 3),
        eta_s=round((total_steps - at.step) / rate, 1),
        next_save_epoch=min(next_save, train.epochs),
        skipped_steps=skipped,
        gpu=gpu,
    )

"""A run's state: its progress events folded in order.

One fold for every reader (the Train tab, the job registry, export, the
benchmarks), so "which is the best epoch" or "did it stop or finish" has one
answer. The fold is pure: folding the same ``progress.jsonl`` twice, in one call
or incrementally as it grows, gives the same state, which is what lets a
reloaded page or a new app process re-attach to a run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rvc.train.events import (
    BestEvent,
    CheckpointEvent,
    DoneEvent,
    EpochEvent,
    ErrorEvent,
    Event,
    ExportEvent,
    OvertrainEvent,
    StartEvent,
    StepEvent,
)
from rvc.train.progress import read_events

HELD_OUT_MEL = "loss/val/mel"


@dataclass(frozen=True)
class Point:
    step: int
    value: float


@dataclass
class RunState:
    """Everything the events of one experiment say, folded in order.

    A progress file holds every run of the experiment: a new run (``start_step`` 0)
    forgets what came before; a resume or a rollback keeps it up to its start step.
    """

    start: StartEvent | None = None
    last_step: StepEvent | None = None
    last_epoch: EpochEvent | None = None
    last_checkpoint: CheckpointEvent | None = None
    best: BestEvent | None = None
    overtrain: OvertrainEvent | None = None
    error: ErrorEvent | None = None  # the run's failure; recoverable errors (rollbacks) are not kept
    done: DoneEvent | None = None
    exports: dict[str, str] = field(default_factory=dict)  # latest / best -> path of the exported model
    curves: dict[str, list[Point]] = field(default_factory=dict)  # every training metric, and loss/val/mel
    lr: list[Point] = field(default_factory=list)
    events: int = 0

    @classmethod
    def fold(cls, events: Iterable[Event]) -> RunState:
        """Return the state that ``events`` describe."""
        state = cls()
        state.apply_all(events)
        return state

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: Event) -> None:
        """Fold one event in; events of unknown kinds only count."""
        self.events += 1
        if isinstance(event, StartEvent):
            self._start(event)
        elif isinstance(event, StepEvent):
            self._step(event)
        elif isinstance(event, EpochEvent):
            self.last_epoch = event
            held_out = event.validation.get(HELD_OUT_MEL)
            if held_out is not None:
                self.curves.setdefault(HELD_OUT_MEL, []).append(Point(event.step, float(held_out)))
        elif isinstance(event, CheckpointEvent):
            self.last_checkpoint = event
        elif isinstance(event, BestEvent):
            self.best = event
        elif isinstance(event, OvertrainEvent):
            self.overtrain = event
        elif isinstance(event, ExportEvent):
            self.exports[event.which] = event.path
        elif isinstance(event, ErrorEvent) and not event.recoverable:
            self.error = event
        elif isinstance(event, DoneEvent):
            self.done = event

    def _step(self, event: StepEvent) -> None:
        self.last_step = event
        for name, value in event.metrics.items():
            if value is not None:  # a non-finite mean: nothing to draw
                self.curves.setdefault(name, []).append(Point(event.step, float(value)))
        if event.lr is not None:
            self.lr.append(Point(event.step, float(event.lr)))

    def _start(self, event: StartEvent) -> None:
        # A new run (or a resume, or a rollback) starts at start_step: drop anything drawn after it,
        # so a run trained again from an earlier state does not draw two lines over each other.
        start_step = event.start_step
        self.curves = {name: [p for p in points if p.step <= start_step] for name, points in self.curves.items()}
        self.lr = [p for p in self.lr if p.step <= start_step]
        self.start, self.error, self.done = event, None, None
        # A rollback continues from before the last report: that report no longer says where the run is.
        if self.last_step is not None and self.last_step.step > start_step:
            self.last_step = None
        if self.last_epoch is not None and self.last_epoch.step > start_step:
            self.last_epoch = None
        if start_step == 0:
            self.last_step = self.last_epoch = self.last_checkpoint = self.best = self.overtrain = None
            self.exports = {}

    # --- what the events say, read the same way by every reader ----------------------------------
    @property
    def epoch(self) -> int:
        """The epoch being trained (or the last one trained), from 1; 0 before the first start."""
        if self.last_step is not None:
            return self.last_step.epoch
        if self.last_epoch is not None:
            return self.last_epoch.epoch
        return self.start.start_epoch if self.start is not None else 0

    @property
    def step(self) -> int:
        """The last step reported (the start step of a run that has not reported one yet)."""
        steps = [e.step for e in (self.last_step, self.last_epoch, self.done) if e is not None]
        if self.start is not None:
            steps.append(self.start.start_step)
        return max(steps, default=0)

    @property
    def losses(self) -> dict[str, float | None]:
        """The training metrics of the last step event (means since the one before)."""
        return dict(self.last_step.metrics) if self.last_step is not None else {}

    @property
    def held_out_mel(self) -> float | None:
        """The last measured held-out mel loss."""
        points = self.curves.get(HELD_OUT_MEL)
        return points[-1].value if points else None

    @property
    def best_epoch(self) -> int | None:
        return self.best.epoch if self.best is not None else None

    @property
    def best_value(self) -> float | None:
        """The best epoch's smoothed held-out mel loss."""
        return self.best.value if self.best is not None else None

    @property
    def total_steps(self) -> int:
        return self.start.total_steps if self.start is not None else 0

    @property
    def it_s(self) -> float | None:
        """The measured speed (steps per second) of the last step event."""
        return self.last_step.it_s if self.last_step is not None else None

    @property
    def eta_s(self) -> float | None:
        """The trainer's estimate of the seconds left, as of its last step event."""
        return self.last_step.eta_s if self.last_step is not None else None

    @property
    def c_mel(self) -> float | None:
        """The weight of the training mel loss (the held-out one is the plain L1 distance)."""
        settings = self.start.train_settings() if self.start is not None else None
        c_mel = settings.c_mel if settings is not None else None
        # The settings are copied from the record unchecked: a damaged one must not break a plot.
        return float(c_mel) if isinstance(c_mel, int | float) and not isinstance(c_mel, bool) else None

    @property
    def batch_size(self) -> int | None:
        """The batch the run trains with (a number, also where the config says "auto"); None before a start."""
        settings = self.start.train_settings() if self.start is not None else None
        batch = settings.batch_size if settings is not None else None
        return batch if isinstance(batch, int) and not isinstance(batch, bool) else None

    @property
    def batch_size_reason(self) -> str | None:
        """How the trainer chose the batch ("auto: 8 (measured ...)"); None from trainers that did not say."""
        return self.start.batch_size_reason if self.start is not None else None

    @property
    def stopped(self) -> bool:
        """The user stopped the run (its state is saved; Resume continues)."""
        return self.done is not None and self.done.stopped

    @property
    def finished(self) -> bool:
        """The run trained to its end (or --auto-stop ended it)."""
        return self.done is not None and not self.done.stopped

    @property
    def failed(self) -> bool:
        return self.error is not None


def read_run(path: Path) -> RunState:
    """Return the state of the runs recorded in ``path`` (a ``progress.jsonl``; empty when missing)."""
    return RunState.fold(read_events(path)[0])

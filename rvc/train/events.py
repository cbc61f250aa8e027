"""The training-progress events: one dataclass per kind, and their JSON form.

The trainer builds these (never a dict of keyword arguments), ``progress.py`` writes
them as ``@@rvc`` lines and ``progress.jsonl`` records, and every reader (the UI,
export, the benchmarks) gets the same classes back, so a renamed field is a type
error instead of a silent ``None`` in a plot.

Reading forgives both directions of time. An older file lacks fields added since:
every field but an event's identity has a default. A newer trainer may add fields
(ignored here) and kinds (kept as an ``UnknownEvent``, which a reader passes over),
so an older UI keeps running beside a newer trainer. ``VERSION`` changes only when
a field changes meaning or type; a record of another version is kept as unknown,
since its fields can no longer be trusted by name.
"""

from __future__ import annotations

import math
import time
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Union

from rvc.config.train import TrainConfig

VERSION = 1


def _now() -> float:
    return round(time.time(), 3)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: report them as None (a skipped step says why elsewhere)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event carries besides its own fields: its kind and when it was made."""

    KIND: ClassVar[str] = ""
    time: float = field(default_factory=_now)  # wall-clock seconds: the UI's ETA and benchmarks' timings

    def __post_init__(self) -> None:
        # Containers as JSON will hold them (tuples as lists, NaN as None), so that an event equals
        # the event read back from its line: what the trainer sent is what every reader sees.
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, Mapping | list | tuple):
                object.__setattr__(self, spec.name, _finite(value))

    @property
    def kind(self) -> str:
        return self.KIND

    def payload(self) -> dict[str, Any]:
        """Return the event's own fields, without the envelope (version, kind, time)."""
        return {f.name: _finite(getattr(self, f.name)) for f in fields(self) if f.name != "time"}

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object of the event, as written to stdout and ``progress.jsonl``."""
        return {"v": VERSION, "kind": self.kind, "time": self.time, **self.payload()}


@dataclass(frozen=True, kw_only=True)
class StartEvent(Event):
    """The run has loaded its data and models and starts training (also after a resume or a rollback)."""

    KIND: ClassVar[str] = "start"
    config: Mapping[str, Any] = field(default_factory=dict)  # the config.json the run trains with, as saved
    clips: int = 0
    validation_clips: int = 0
    dataset_seconds: float = 0.0
    data_placement: str = "resident"  # or "stream": the training set did not fit on the GPU
    steps_per_epoch: int = 0
    total_steps: int = 0
    epochs: int = 0
    start_epoch: int = 1
    start_step: int = 0  # 0: a new run; more: a resume or a rollback continuing from that saved step
    device: str = ""
    precision: str = ""
    world_size: int = 1
    step_mode: str | None = None  # eager, graph, compiled or regional (older trainers did not say)
    step_mode_reason: str | None = None
    compile_s: float | None = None
    # How the batch size (the number in ``config``) was chosen, e.g. "auto: measured 4.1 GiB of 6.0 GiB
    # usable; ..." or "set in the configuration" (older trainers did not say)
    batch_size_reason: str | None = None
    batch_trials_s: float | None = None  # what batch auto's measured trial steps took (0: none ran)

    def train_settings(self) -> TrainConfig | None:
        """Return the run's training settings, or None when the event carries none.

        Fields this version does not know are dropped and missing ones take today's
        defaults: the record of an older or newer trainer still reads.
        """
        section = self.config.get("train")
        if not isinstance(section, Mapping):
            return None
        known = {f.name for f in fields(TrainConfig)}
        values = {key: value for key, value in section.items() if key in known}
        if isinstance(values.get("betas"), list):
            values["betas"] = tuple(values["betas"])
        return TrainConfig(**values)


@dataclass(frozen=True, kw_only=True)
class StepEvent(Event):
    """The means of the steps since the last step event (the trainer syncs with the GPU only for these)."""

    KIND: ClassVar[str] = "step"
    epoch: int
    step: int
    total_steps: int = 0
    batch: int = 0  # in the epoch, from 1
    batches: int = 0
    lr: float | None = None
    metrics: Mapping[str, float | None] = field(default_factory=dict)  # loss/g/total, ...; None: not finite
    it_s: float | None = None
    eta_s: float | None = None
    next_save_epoch: int | None = None
    skipped_steps: int = 0  # non-finite steps skipped so far in the run
    gpu: Mapping[str, float] = field(default_factory=dict)  # gpu/util_percent, ...; empty without a GPU


@dataclass(frozen=True, kw_only=True)
class EpochEvent(Event):
    """An epoch ended: what it cost, and the held-out loss when it was measured."""

    KIND: ClassVar[str] = "epoch"
    epoch: int
    step: int
    epochs: int = 0
    epoch_s: float = 0.0
    validation_s: float = 0.0  # held-out loss, and the copy of G on a new best
    sample_s: float = 0.0  # TensorBoard's images and audio
    save_s: float = 0.0  # the snapshot on the training thread; the files are written in the background
    peak_mem_gib: float | None = None  # the most the epoch had allocated (None off CUDA)
    # The most the caching allocator held for it: what the card must have. In a graphed run, the step's
    # own memory pool counts here and not above once it is captured.
    peak_reserved_gib: float | None = None
    validation: Mapping[str, float | None] = field(default_factory=dict)  # loss/val/mel; empty: not measured
    best_epoch: int | None = None
    epochs_since_best: int | None = None


@dataclass(frozen=True, kw_only=True)
class CheckpointEvent(Event):
    """A complete training state is on disk (sent from the saver's thread once its files are written)."""

    KIND: ClassVar[str] = "checkpoint"
    step: int
    epoch: int = 0
    generator: str = ""
    discriminator: str = ""
    removed: list[int] = field(default_factory=list)  # older states pruned to keep the last few
    write_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class BestEvent(Event):
    """A new best epoch: the lowest smoothed held-out mel loss so far."""

    KIND: ClassVar[str] = "best"
    epoch: int
    value: float | None = None  # the smoothed held-out mel loss (a hand-made record may lack it)
    step: int = 0


@dataclass(frozen=True, kw_only=True)
class OvertrainEvent(Event):
    """The held-out loss has not improved for the patience: a warning, or the end with --auto-stop."""

    KIND: ClassVar[str] = "overtrain"
    epoch: int = 0
    best_epoch: int | None = None
    epochs_since_best: int = 0
    auto_stop: bool = False
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class ExportEvent(Event):
    """A model was written in RVC's exported format."""

    KIND: ClassVar[str] = "export"
    which: str  # latest or best
    path: str
    epoch: int = 0
    step: int = 0


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(Event):
    """Something the user must hear about; recoverable ones (a rollback) do not end the run."""

    KIND: ClassVar[str] = "error"
    message: str
    recoverable: bool = False
    step: int | None = None
    rollback_to: int | None = None  # a rollback: the saved step the run continues from
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class DoneEvent(Event):
    """The trainer ends cleanly: finished, stopped early by --auto-stop, or stopped by the user."""

    KIND: ClassVar[str] = "done"
    epoch: int = 0
    step: int = 0
    stopped: bool = False  # the user stopped it; the state is saved and Resume continues
    stopped_early: bool = False  # --auto-stop ended it before its last epoch
    skipped_steps: int = 0
    overtrain: Mapping[str, Any] = field(default_factory=dict)  # the overtraining detector's summary
    ranks_agree: bool | None = None  # several processes: whether all hold the same weights at the end


# --- stage jobs (prepare, extract, index, export, ...: rvc.jobs) -------------------------------


@dataclass(frozen=True, kw_only=True)
class JobStartEvent(Event):
    """A stage job started: what runs, and which process runs it (so any later reader can tell it died)."""

    KIND: ClassVar[str] = "job"
    stage: str
    argv: list[str] = field(default_factory=list)  # the child's whole argument list (no shell)
    pid: int | None = None
    pid_started: int | None = None  # the process's start time in clock ticks: a reused pid is another process
    experiment: str = ""


@dataclass(frozen=True, kw_only=True)
class ProgressEvent(Event):
    """How far one part of a stage has come (``task``: e.g. "f0 (rmvpe)", "content", "prepare")."""

    KIND: ClassVar[str] = "progress"
    task: str
    done: int = 0
    total: int = 0
    unit: str = "item"
    rate: float | None = None  # items per second since the task started
    eta_s: float | None = None
    elapsed_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class LogEvent(Event):
    """A line for the user (what a stage prints), kept with the progress so a reloaded page shows it."""

    KIND: ClassVar[str] = "log"
    message: str
    level: str = "info"  # info or warning


@dataclass(frozen=True, kw_only=True)
class JobEndEvent(Event):
    """A stage job ended: done (``message``: its summary), error (what went wrong), stopped, or died."""

    KIND: ClassVar[str] = "end"
    status: str  # done, error, stopped, died (written by whoever saw the process vanish without a word)
    message: str = ""
    exit_code: int | None = None
    detail: str | None = None  # a traceback, for the log


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """A record this version cannot read by name (a newer trainer's kind or version), kept as it came."""

    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.raw.get("kind", ""))

    def payload(self) -> dict[str, Any]:
        return {key: value for key, value in self.raw.items() if key not in ("v", "kind", "time")}

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)


KNOWN: tuple[type[Event], ...] = (
    StartEvent,
    StepEvent,
    EpochEvent,
    CheckpointEvent,
    BestEvent,
    OvertrainEvent,
    ExportEvent,
    ErrorEvent,
    DoneEvent,
    JobStartEvent,
    ProgressEvent,
    LogEvent,
    JobEndEvent,
)
BY_KIND: dict[str, type[Event]] = {cls.KIND: cls for cls in KNOWN}


def from_json(data: Any) -> Event | None:
    """Return the event of a JSON object, or None when it is not one (garbage, or its identity is unreadable).

    A field of the wrong type reads as absent: its default, or no event when the
    field has none (a step event without a step number says nothing).
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
        return None
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return None
    moment = data.get("time")
    when = float(moment) if isinstance(moment, int | float) and not isinstance(moment, bool) else 0.0
    cls = BY_KIND.get(data["kind"])
    if cls is None or version != VERSION:
        return UnknownEvent(time=when, raw=dict(data))
    values: dict[str, Any] = {}
    for name, (hint, required) in _schema(cls).items():
        value = data.get(name, MISSING)
        if value is not MISSING and _fits(value, hint):
            values[name] = value
        elif required:
            return None
    return cls(time=when, **values)


_SCHEMAS: dict[type[Event], dict[str, tuple[Any, bool]]] = {}


def _schema(cls: type[Event]) -> dict[str, tuple[Any, bool]]:
    """Each field of ``cls`` but the time: its type and whether it has no default (worked out once)."""
    if cls not in _SCHEMAS:
        hints = typing.get_type_hints(cls)
        _SCHEMAS[cls] = {
            f.name: (hints[f.name], f.default is MISSING and f.default_factory is MISSING)
            for f in fields(cls)
            if f.name != "time"
        }
    return _SCHEMAS[cls]


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type ``hint`` (the few that events use)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if isinstance(value, bool):  # JSON's true is no number
        return hint is bool
    if hint is float:
        return isinstance(value, int | float)
    if origin in (Mapping, dict):
        _, item = typing.get_args(hint)
        return isinstance(value, dict) and all(isinstance(k, str) and _fits(v, item) for k, v in value.items())
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    return isinstance(value, hint)

"""What the Train tab shows of a run: its ``RunState`` (rvc.train.run_state) in plots and words.

``TrainView`` is one moment of one run: plot points (decimated), progress rows in words, the
console's tail. Everything here is a pure function of the events and the log, so a page
reload or a new app process draws the same run (the registry in ``webui.jobs`` feeds it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from rvc.train.events import (
    BestEvent,
    CheckpointEvent,
    DoneEvent,
    EpochEvent,
    ErrorEvent,
    ExportEvent,
    OvertrainEvent,
    StartEvent,
    StepEvent,
)
from rvc.train.progress import parse_line
from rvc.train.run_state import Point, RunState

# Loss curves, the plot each belongs to, and its legend label.
LOSS_METRICS: dict[str, tuple[str, str]] = {
    "loss/g/total": ("adversarial", "generator total"),
    "loss/d/total": ("adversarial", "discriminator total"),
    "loss/g/mel": ("mel", "training"),  # shown divided by c_mel: an L1 distance like the held-out one
    "loss/val/mel": ("mel", "held-out"),
    "loss/g/kl": ("kl_fm", "KL"),
    "loss/g/fm": ("kl_fm", "feature matching"),
}
PLOTS = ("adversarial", "mel", "kl_fm")
MAX_POINTS = 1000  # per curve: more than a plot shows, few enough to send every poll over a share link

__all__ = ["LOSS_METRICS", "PLOTS", "Point", "RunState", "TrainView", "console_line", "decimate", "train_view"]


def decimate(points: list[Point], limit: int = MAX_POINTS) -> list[Point]:
    """Return at most about ``limit`` points: every k-th, always with the last one."""
    if len(points) <= limit:
        return points
    stride = -(-len(points) // limit)
    kept = points[::stride]
    return kept if kept[-1] is points[-1] else [*kept, points[-1]]


def duration(seconds: float | None) -> str:
    """Say a duration for people: "4.2 s", "3 min 05 s", "2 h 07 min" ("–" for None)."""
    if seconds is None:
        return "–"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def tail_lines(path: Path, count: int, transform: Callable[[str], str | None] = lambda line: line) -> list[str]:
    """Return the last ``count`` lines of ``path``, each passed through ``transform`` (None drops it).

    Reads backwards in blocks, so a long log costs no more than its tail.
    """
    if count <= 0 or not path.exists():
        return []
    block = 64 * 1024
    with open(path, "rb") as handle:
        end = handle.seek(0, 2)
        position = end
        while True:
            position = max(0, position - block)
            handle.seek(position)
            raw = handle.read(end - position).decode("utf-8", "replace").splitlines()
            if position > 0:
                raw = raw[1:]  # the first line may start mid-line
            lines = [text for line in raw if (text := transform(line)) is not None]
            if len(lines) >= count or position == 0:
                return lines[-count:]
            block *= 2


def _number(value: float | None, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if isinstance(value, int | float) else "–"


def mel_distance(value: float | None, c_mel: float | None) -> float | None:
    """Return the training mel loss as the plot draws it: divided by c_mel, an L1 distance like the held-out one."""
    if value is None or not c_mel or c_mel <= 0:
        return value
    return value / c_mel


def console_line(line: str, c_mel: float | None = None) -> str | None:
    """Return a log line for people: progress events in a few words, other lines as they are.

    c_mel : the run's mel weight; the training mel loss is shown divided by it ("mel L1"), the number
    the mel plot draws. Without it the loss is shown as the trainer reports it ("mel").
    """
    event = parse_line(line)
    if event is None:
        return line if line.strip() else None
    if isinstance(event, StepEvent):
        metrics = event.metrics
        mel = mel_distance(metrics.get("loss/g/mel"), c_mel)
        mel_label = "mel L1" if c_mel else "mel"
        return (
            f"epoch {event.epoch} step {event.step}/{event.total_steps}: g={_number(metrics.get('loss/g/total'))} "
            f"d={_number(metrics.get('loss/d/total'))} {mel_label}={_number(mel)} "
            f"lr={_number(event.lr)} {_number(event.it_s)} it/s"
        )
    if isinstance(event, EpochEvent):
        held_out = event.validation.get("loss/val/mel")
        extra = f", held-out mel L1 {_number(held_out, 4)}" if held_out is not None else ""
        return f"epoch {event.epoch}/{event.epochs} done in {duration(event.epoch_s)}{extra}"
    if isinstance(event, StartEvent):
        return (
            f"training {event.clips} clips on {event.device} ({event.precision}): "
            f"{event.epochs} epochs of {event.steps_per_epoch} steps, from step {event.start_step}"
            f"{_batch_text(event)}{_step_mode_text(event)}"
        )
    if isinstance(event, CheckpointEvent):
        return f"saved the state of step {event.step}"
    if isinstance(event, BestEvent):
        return f"best epoch so far: {event.epoch} (held-out mel L1 {_number(event.value, 4)})"
    if isinstance(event, ExportEvent):
        return f"exported the {event.which} model: {event.path}"
    if isinstance(event, DoneEvent):
        return "stopped (state saved)" if event.stopped else "done"
    if isinstance(event, ErrorEvent | OvertrainEvent):
        return f"{event.kind}: {event.message}"
    return None  # a kind a newer trainer added: its raw line is in the verbose console


@dataclass(frozen=True)
class TrainView:
    """What the Train tab shows for one experiment at one moment."""

    experiment: str
    status: str  # not started, starting, running, stopping, finished, stopped, failed, interrupted
    running: bool
    headline: str  # one line: the status in words
    progress: list[tuple[str, str]]  # (label, value) rows: epoch, step, batch, speed, ETA, ...
    gpu: list[tuple[str, str]]  # (label, value) rows; empty without a GPU
    curves: dict[str, list[Point]]
    lr: list[Point]
    console: list[str]
    exports: dict[str, str]
    version: int  # changes whenever the events or the status change
    held_out_clips: int | None = None  # the run's validation clips (None: not started, or not said)

    @property
    def finished(self) -> bool:
        return self.status in ("finished", "stopped", "stopped while starting", "failed", "interrupted")


def _display_curves(state: RunState) -> dict[str, list[Point]]:
    """Return the curves to draw, decimated, with loss/g/mel divided by c_mel.

    The trainer's mel loss is c_mel (45) times an L1 distance; the held-out loss is the
    plain distance. Divided, both read on one axis and the gap between them shows overfitting.
    """
    curves = {name: decimate(state.curves.get(name, [])) for name in LOSS_METRICS}
    c_mel = state.c_mel
    if c_mel is not None and c_mel > 0:
        curves["loss/g/mel"] = [Point(p.step, p.value / c_mel) for p in curves["loss/g/mel"]]
    return curves


def _headline(name: str, status: str, state: RunState, exit_code: int | None) -> str:
    done = state.done or DoneEvent()
    epochs = state.start.epochs if state.start is not None else None
    error = state.error.message if state.error is not None else None
    texts = {
        "not started": f"{name}: not trained yet. Click Start.",
        "starting": f"{name}: starting (loading the data and the models)…",
        "running": f"{name}: training.",
        "stopping": f"{name}: stopping (saving the current state)…",
        "finished": f"{name}: finished at epoch {done.epoch}"
        + (" (stopped early: overtraining)" if done.stopped_early else f" of {epochs}")
        + ".",
        "stopped": f"{name}: stopped at step {done.step}, in epoch {(state.last_step or done).epoch}. "
        "Resume continues from there.",
        "stopped while starting": f"{name}: stopped while the trainer was still starting, before its first "
        "step: nothing was trained or saved by this launch. Start again when ready.",
        "failed": f"{name}: failed: "
        + (error or f"the trainer exited with status {exit_code} before training (the console says why)"),
        "interrupted": f"{name}: the trainer ended without saying why (see the console). Resume continues "
        "from the last saved state.",
    }
    return texts[status]


def _epoch_time(state: RunState) -> str:
    """Say how long the last epoch took, or that it ran only in part (a resume in its middle)."""
    start, epoch = state.start, state.last_epoch
    if epoch is None or start is None:
        return "–"
    resumed_inside = start.start_step % max(start.steps_per_epoch, 1) != 0  # a Resume in the middle of an epoch
    if resumed_inside and epoch.epoch == start.start_epoch:
        # Its time covers only the batches trained since that Resume, not the epoch.
        return f"{duration(epoch.epoch_s)} (only the part after the resume)"
    return duration(epoch.epoch_s)


def _cpu_row(state: RunState, running: bool) -> tuple[str, str] | None:
    """On the CPU: the measured time a step takes, and what the steps left cost at that pace."""
    start = state.start
    if start is None or not start.device.startswith("cpu"):
        return None
    if state.it_s is None or state.it_s <= 0:
        return ("On the CPU", "slow: training on a CPU takes hours; the step time shows after the first steps")
    per_step = 1 / state.it_s
    left = max(0, start.total_steps - state.step)
    pace = f"{per_step:.2f} s a step (measured)"
    if not running:
        return ("On the CPU", pace)
    return ("On the CPU", f"{pace}: {left:,} steps left take about {duration(left * per_step)}")


def progress_rows(state: RunState, running: bool) -> list[tuple[str, str]]:
    start, step, epoch = state.start, state.last_step, state.last_epoch
    if start is None:
        return []
    next_save = step.next_save_epoch if step is not None and running else None
    rows = [
        ("Epoch", f"{state.epoch} / {start.epochs}"),
        ("Step", f"{step.step if step else start.start_step} / {start.total_steps}"),
        ("Batch in epoch", f"{step.batch if step else 0} / {start.steps_per_epoch}"),
        ("Speed", f"{state.it_s:.2f} it/s" if state.it_s is not None and running else "–"),
        ("Last epoch took", _epoch_time(state)),
        ("Time left", duration(state.eta_s) if running else "–"),
        ("Next save", f"epoch {next_save}" if next_save else "–"),
    ]
    cpu = _cpu_row(state, running)
    if cpu is not None:
        rows.append(cpu)
    best = state.best
    rows.append(
        (
            "Best epoch",
            f"{best.epoch} (smoothed held-out mel {_number(best.value, 4)})" if best else _no_best(start),
        )
    )
    if state.overtrain:
        rows.append(("Overtraining", state.overtrain.message))
    elif epoch is not None and epoch.epochs_since_best is not None:
        settings = start.train_settings()
        patience = settings.overtrain_patience if settings is not None else "?"
        rows.append(("Overtraining", f"no: {epoch.epochs_since_best} epochs since the best (warns after {patience})"))
    device = f"{start.device} · {start.precision} · {start.world_size} process(es)"
    if start.data_placement == "stream":
        device += " · training set streamed from host memory (too big to hold on the GPU)"
    rows.append(("Device", device))
    if state.batch_size is not None:
        reason = state.batch_size_reason
        rows.append(("Batch size", f"{state.batch_size} ({reason})" if reason else str(state.batch_size)))
    if start.step_mode:
        rows.append(("Step", _step_mode_text(start).removeprefix("; ")))
    if step is not None and step.skipped_steps:
        rows.append(("Skipped steps", f"{step.skipped_steps} (non-finite losses)"))
    return rows


def _no_best(start: StartEvent) -> str:
    if start.validation_clips == 0:
        return "– (no held-out clips: prepare with some validation clips to have one)"
    return "– (not yet: held-out loss is measured as epochs end)"


def _batch_text(start: StartEvent) -> str:
    """The batch size, e.g. "; batch 8 (auto: 8 (measured ...))"; "" where the event has no settings."""
    settings = start.train_settings()
    if settings is None:
        return ""
    reason = f" ({start.batch_size_reason})" if start.batch_size_reason else ""
    return f"; batch {settings.batch_size}{reason}"


def _step_mode_text(start: StartEvent) -> str:
    """How the step runs and what preparing it cost, e.g. "; compiled CUDA graph, ready in 38.2 s (...)"."""
    mode = start.step_mode
    if not mode:
        return ""
    names = {
        "eager": "eager",
        "graph": "one CUDA graph",
        "compiled": "compiled CUDA graph",
        "regional": "CUDA graph of regionally compiled blocks",
    }
    ready = f", ready in {_number(start.compile_s)} s" if start.compile_s else ""
    reason = f" ({start.step_mode_reason})" if start.step_mode_reason else ""
    return f"; {names.get(mode, mode)} step{ready}{reason}"


def _gpu_rows(state: RunState) -> list[tuple[str, str]]:
    gpu = state.last_step.gpu if state.last_step is not None else {}
    if not gpu:
        return []
    rows = []
    if "gpu/util_percent" in gpu:
        rows.append(("GPU utilisation", f"{gpu['gpu/util_percent']:.0f} %"))
    if "gpu/memory_used_gib" in gpu:
        rows.append(("GPU memory", f"{gpu['gpu/memory_used_gib']:.1f} / {gpu.get('gpu/memory_total_gib', 0):.1f} GiB"))
    if "gpu/temperature_c" in gpu:
        rows.append(("Temperature", f"{gpu['gpu/temperature_c']:.0f} °C"))
    if "gpu/power_w" in gpu:
        rows.append(("Power", f"{gpu['gpu/power_w']:.0f} W"))
    epoch = state.last_epoch
    if epoch is not None and epoch.peak_mem_gib:
        # A graphed step's own memory is held in its pool, not in use between steps: both say what it needs.
        held = f", {epoch.peak_reserved_gib:.1f} GiB held" if epoch.peak_reserved_gib else ""
        rows.append(("Peak memory (last epoch)", f"{epoch.peak_mem_gib:.1f} GiB in use{held}"))
    return rows


def train_view(
    experiment: str,
    status: str,
    running: bool,
    state: RunState,
    exit_code: int | None,
    log: Path,
    console_lines: int,
    verbose: bool,
    version: int,
) -> TrainView:
    """What the Train tab shows of a run now; ``log`` is the trainer's console log (its tail is shown)."""
    c_mel = state.c_mel
    return TrainView(
        experiment=experiment,
        status=status,
        running=running,
        headline=_headline(experiment, status, state, exit_code),
        progress=progress_rows(state, running),
        gpu=_gpu_rows(state) if running else [],
        curves=_display_curves(state),
        lr=decimate(state.lr),
        console=tail_lines(log, console_lines, (lambda line: line) if verbose else partial(console_line, c_mel=c_mel)),
        exports=dict(state.exports),
        version=version,
        held_out_clips=state.start.validation_clips if state.start is not None else None,
    )

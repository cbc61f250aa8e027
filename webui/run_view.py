"""How a training run reads: its events folded into a ``RunState``, and what the Train tab shows of it.

``TrainView`` is one moment of one run: plot points (decimated), progress rows in words, the
console's tail. Everything here is a pure function of the events and the log, so a page
reload or a new app process draws the same run (the registry in ``webui.jobs`` feeds it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rvc.train.progress import Event, parse_line

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


@dataclass(frozen=True)
class Point:
    step: int
    value: float


@dataclass
class RunState:
    """Everything the events of one experiment say, folded in order."""

    start: Event | None = None
    last_step: Event | None = None
    last_epoch: Event | None = None
    best: Event | None = None
    overtrain: Event | None = None
    error: str | None = None
    done: Event | None = None
    exports: dict[str, str] = field(default_factory=dict)
    curves: dict[str, list[Point]] = field(default_factory=lambda: {name: [] for name in LOSS_METRICS})
    lr: list[Point] = field(default_factory=list)
    events: int = 0

    def apply(self, event: Event) -> None:
        """Fold one event in."""
        self.events += 1
        kind = event["kind"]
        if kind == "start":
            self._start(event)
        elif kind == "step":
            self.last_step = event
            step = int(event["step"])
            for name, value in (event.get("metrics") or {}).items():
                if name in self.curves and isinstance(value, int | float):
                    self.curves[name].append(Point(step, float(value)))
            if isinstance(event.get("lr"), int | float):
                self.lr.append(Point(step, float(event["lr"])))
        elif kind == "epoch":
            self.last_epoch = event
            value = (event.get("validation") or {}).get("loss/val/mel")
            if isinstance(value, int | float):
                self.curves["loss/val/mel"].append(Point(int(event["step"]), float(value)))
        elif kind == "best":
            self.best = event
        elif kind == "overtrain":
            self.overtrain = event
        elif kind == "export":
            self.exports[str(event.get("which", "latest"))] = str(event.get("path", ""))
        elif kind == "error" and not event.get("recoverable"):
            self.error = str(event.get("message", "training failed"))
        elif kind == "done":
            self.done = event

    def _start(self, event: Event) -> None:
        # A new run (or a resume, or a rollback) starts at start_step: drop anything drawn after it,
        # so a run trained again from an earlier state does not draw two lines over each other.
        start_step = int(event.get("start_step") or 0)
        for name, points in self.curves.items():
            self.curves[name] = [p for p in points if p.step <= start_step]
        self.lr = [p for p in self.lr if p.step <= start_step]
        self.start, self.error, self.done = event, None, None
        if start_step == 0:
            self.last_step = self.last_epoch = self.best = self.overtrain = None
            self.exports = {}


def decimate(points: list[Point], limit: int = MAX_POINTS) -> list[Point]:
    """Return at most about ``limit`` points: every k-th, always with the last one."""
    if len(points) <= limit:
        return points
    stride = -(-len(points) // limit)
    kept = points[::stride]
    return kept if kept[-1] is points[-1] else [*kept, points[-1]]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
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


def _number(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if isinstance(value, int | float) else "–"


def console_line(line: str) -> str | None:
    """Return a log line for people: progress events in a few words, other lines as they are."""
    event = parse_line(line)
    if event is None:
        return line if line.strip() else None
    kind = event["kind"]
    if kind == "step":
        metrics = event.get("metrics") or {}
        losses = " ".join(
            f"{label}={_number(metrics.get(key))}"
            for key, label in (("loss/g/total", "g"), ("loss/d/total", "d"), ("loss/g/mel", "mel"))
        )
        return (
            f"epoch {event.get('epoch')} step {event.get('step')}/{event.get('total_steps')}: {losses} "
            f"lr={_number(event.get('lr'))} {_number(event.get('it_s'))} it/s"
        )
    if kind == "epoch":
        held_out = (event.get("validation") or {}).get("loss/val/mel")
        extra = f", held-out mel {_number(held_out, 4)}" if held_out is not None else ""
        return f"epoch {event.get('epoch')}/{event.get('epochs')} done in {_number(event.get('epoch_s'))} s{extra}"
    if kind == "start":
        return (
            f"training {event.get('clips')} clips on {event.get('device')} ({event.get('precision')}): "
            f"{event.get('epochs')} epochs of {event.get('steps_per_epoch')} steps, from step {event.get('start_step')}"
            f"{_step_mode_text(event)}"
        )
    if kind == "checkpoint":
        return f"saved the state of step {event.get('step')}"
    if kind == "best":
        return f"best epoch so far: {event.get('epoch')} (held-out mel {_number(event.get('value'), 4)})"
    if kind == "export":
        return f"exported the {event.get('which')} model: {event.get('path')}"
    if kind == "done":
        return "stopped (state saved)" if event.get("stopped") else "done"
    if kind in ("error", "overtrain"):
        return f"{kind}: {event.get('message')}"
    return None


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

    @property
    def finished(self) -> bool:
        return self.status in ("finished", "stopped", "failed", "interrupted")


def _display_curves(state: RunState) -> dict[str, list[Point]]:
    """Return the curves to draw, decimated, with loss/g/mel divided by c_mel.

    The trainer's mel loss is c_mel (45) times an L1 distance; the held-out loss is the
    plain distance. Divided, both read on one axis and the gap between them shows overfitting.
    """
    curves = {name: decimate(points) for name, points in state.curves.items()}
    c_mel = ((state.start or {}).get("config") or {}).get("train", {}).get("c_mel")
    if isinstance(c_mel, int | float) and c_mel > 0:
        curves["loss/g/mel"] = [Point(p.step, p.value / c_mel) for p in curves["loss/g/mel"]]
    return curves


def _headline(name: str, status: str, state: RunState, exit_code: int | None) -> str:
    done = state.done or {}
    epochs = (state.start or {}).get("epochs")
    texts = {
        "not started": f"{name}: not trained yet. Click Start.",
        "starting": f"{name}: starting (loading the data and the models)…",
        "running": f"{name}: training.",
        "stopping": f"{name}: stopping (saving the current state)…",
        "finished": f"{name}: finished at epoch {done.get('epoch')}"
        + (" (stopped early: overtraining)" if done.get("stopped_early") else f" of {epochs}")
        + ".",
        "stopped": f"{name}: stopped at step {done.get('step')} (epoch {(state.last_step or done).get('epoch')}). "
        "Resume continues from there.",
        "failed": f"{name}: failed: "
        + (state.error or f"the trainer exited with status {exit_code} before training (the console says why)"),
        "interrupted": f"{name}: the trainer ended without saying why (see the console). Resume continues "
        "from the last saved state.",
    }
    return texts[status]


def progress_rows(state: RunState, running: bool) -> list[tuple[str, str]]:
    start, step, epoch = state.start or {}, state.last_step or {}, state.last_epoch or {}
    if not start:
        return []
    epochs = start.get("epochs")
    rows = [
        ("Epoch", f"{step.get('epoch', epoch.get('epoch', start.get('start_epoch', 1)))} / {epochs}"),
        ("Step", f"{step.get('step', start.get('start_step', 0))} / {start.get('total_steps')}"),
        ("Batch in epoch", f"{step.get('batch', 0)} / {start.get('steps_per_epoch')}"),
        ("Speed", f"{step['it_s']:.2f} it/s" if isinstance(step.get("it_s"), int | float) else "–"),
        ("Last epoch took", _duration(epoch.get("epoch_s"))),
        ("Time left", _duration(step.get("eta_s")) if running else "–"),
        ("Next save", f"epoch {step['next_save_epoch']}" if step.get("next_save_epoch") else "–"),
    ]
    best = state.best
    rows.append(
        (
            "Best epoch",
            f"{best['epoch']} (smoothed held-out mel {best['value']:.3f})" if best else "– (no held-out clips yet)",
        )
    )
    if state.overtrain:
        rows.append(("Overtraining", str(state.overtrain.get("message"))))
    elif epoch.get("epochs_since_best") is not None:
        patience = (start.get("config") or {}).get("train", {}).get("overtrain_patience")
        rows.append(
            ("Overtraining", f"no: {epoch['epochs_since_best']} epochs since the best (warns after {patience})")
        )
    device = f"{start.get('device')} · {start.get('precision')} · {start.get('world_size', 1)} process(es)"
    if start.get("data_placement") == "stream":
        device += " · training set streamed from host memory (too big to hold on the GPU)"
    rows.append(("Device", device))
    if start.get("step_mode"):
        rows.append(("Step", _step_mode_text(start).removeprefix("; ")))
    if step.get("skipped_steps"):
        rows.append(("Skipped steps", f"{step['skipped_steps']} (non-finite losses)"))
    return rows


def _step_mode_text(start: dict[str, Any]) -> str:
    """How the step runs and what preparing it cost, e.g. "; compiled CUDA graph, ready in 38.2 s (...)"."""
    mode = start.get("step_mode")
    if not mode:
        return ""
    names = {"eager": "eager", "graph": "one CUDA graph", "compiled": "compiled CUDA graph"}
    ready = f", ready in {_number(start.get('compile_s'))} s" if start.get("compile_s") else ""
    reason = f" ({start['step_mode_reason']})" if start.get("step_mode_reason") else ""
    return f"; {names.get(mode, mode)} step{ready}{reason}"


def _gpu_rows(state: RunState) -> list[tuple[str, str]]:
    gpu: dict[str, Any] = (state.last_step or {}).get("gpu") or {}
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
    peak = (state.last_epoch or {}).get("peak_mem_gib")
    if peak:
        rows.append(("Peak memory (last epoch)", f"{peak:.1f} GiB"))
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
    return TrainView(
        experiment=experiment,
        status=status,
        running=running,
        headline=_headline(experiment, status, state, exit_code),
        progress=progress_rows(state, running),
        gpu=_gpu_rows(state) if running else [],
        curves=_display_curves(state),
        lr=decimate(state.lr),
        console=tail_lines(log, console_lines, (lambda line: line) if verbose else console_line),
        exports=dict(state.exports),
        version=version,
    )

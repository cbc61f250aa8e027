"""Compiling the step while the run trains, and handing the run over to it when it is ready.

A cold ``torch.compile`` of the step takes minutes (about 200 s on an H100 or H200 with an empty
cache); a default 200-epoch run on ten minutes of speech trains in about as long. Waiting for the
compile before the first step made it the largest part of what a user waited. Instead the run
starts at once with the plain step captured as one CUDA graph (seconds), while a background thread
compiles the same step for a copy of the models (their own weights and optimizers, fed dry steps
that update nothing, so the run's weights and random streams are left alone). When it is done,
between two epochs, the training thread copies the live weights, optimizer moments, schedules and
loss scale into the copy, captures the compiled step and trains on with it. The first run's
compile also warms the on-disk cache, so later runs hand over within seconds.

The thread holds the GIL only for Dynamo's tracing and Inductor's Python (Triton's kernel builds run
in Inductor's worker processes); graph replays and the syncs of the training thread release it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from rvc.train.graph import WARMUP_STEPS, GraphedStep, set_capturable
from rvc.train.models import Models
from rvc.train.step import StepMetrics, TrainStep

# Without a measured compile of this setting on this machine: a cold compile's seconds (H100/H200,
# v2 40k, 16 cores: 190-212 s) and how much faster than the plain graphed step the compiled one trains.
COLD_COMPILE_S = 200.0
COMPILED_SPEED_UP = 1.4
HANDOVER_S = 5.0  # the training thread's pause: copy the state, dry steps, capture
# While compiling, the GIL changes hands at least this often (Python's default: 5 ms). The training
# thread needs it for a moment a few times a step; at 5 ms a wait each time could starve the GPU.
SWITCH_INTERVAL_S = 0.001


@dataclass
class CompileRecord:
    """What the last background compile of one setting took here, kept beside the compile cache."""

    path: Path
    key: str  # torch version, GPU, precision, model shape and batch: what the cached kernels depend on

    def seconds(self) -> float | None:
        try:
            entry = json.loads(self.path.read_text()).get(self.key)
        except (OSError, ValueError, AttributeError):
            return None
        return float(entry["compile_s"]) if isinstance(entry, dict) and "compile_s" in entry else None

    def write(self, compile_s: float) -> None:
        try:
            records = json.loads(self.path.read_text()) if self.path.is_file() else {}
            records = records if isinstance(records, dict) else {}
        except (OSError, ValueError):
            records = {}
        records[self.key] = {"compile_s": round(compile_s, 1), "time": round(time.time())}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(records, indent=1) + "\n")
        except OSError:
            pass  # a record is a hint for the next run, never worth failing this one


def worth_compiling(steps_left: int, graph_steps_per_s: float, expected_compile_s: float) -> bool:
    """Whether a background compile pays: it must finish, and the compiled steps after the hand-over
    must save more than the hand-over's pause."""
    graph_s = steps_left / graph_steps_per_s
    compiled_tail_s = graph_s - expected_compile_s
    if compiled_tail_s <= 0:
        return False
    return compiled_tail_s * (1 - 1 / COMPILED_SPEED_UP) > HANDOVER_S


class BackgroundCompile:
    """Compile ``step`` (a TrainStep over a copy of the models) on a thread; ``hand_over`` when ``ready``.

    index : Tensor[K x B] of clip rows on the device, the shape every step has.
    backend : Inductor on a GPU; the CPU tests use "aot_eager" (the same tracing, PyTorch's kernels).
    """

    def __init__(self, step: TrainStep, index: torch.Tensor, backend: str = "inductor") -> None:
        self.step = step
        self.index = index
        self.backend = backend
        self.seconds = 0.0
        self.breakdown = ""  # Dynamo's and Inductor's own timings of the compile, for the log
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._compile, name="rvc-compile", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def ready(self) -> bool:
        """Compiled and warmed up (False while compiling, and for good after a failure)."""
        return self._thread.ident is not None and not self._thread.is_alive() and self.error is None

    def failed(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive() and self.error is not None

    def _compile(self) -> None:
        started = time.perf_counter()
        step = self.step
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL_S))
        try:
            step.functions = step.functions.compiled(self.backend)
            step.dry.fill_(True)
            device = step.device
            if device.type == "cuda":
                stream = torch.cuda.Stream(device)  # beside the training stream, not behind it
                with torch.cuda.stream(stream):
                    for _ in range(WARMUP_STEPS):
                        step(self.index)
                stream.synchronize()
            else:
                for _ in range(WARMUP_STEPS):
                    step(self.index)
            self.breakdown = _compile_times()
        except BaseException as error:  # the run goes on with the graphed step; the trainer says why
            self.error = error
        finally:
            sys.setswitchinterval(interval)
        self.seconds = time.perf_counter() - started

    def hand_over(
        self, models: Models, metrics: StepMetrics, skipped_steps: int, graphed: bool
    ) -> tuple[Callable[[torch.Tensor], None], Models, float]:
        """On the training thread, between epochs: move the live training state into the compiled
        step's models; return (the step to run from now on, its models, the seconds it took).

        graphed : capture the compiled step as one CUDA graph (a GPU); else run it as it is.
        """
        started = time.perf_counter()
        step, target = self.step, self.step.models
        target.generator.load_state_dict(models.generator.state_dict())
        target.discriminator.load_state_dict(models.discriminator.state_dict())
        target.optimizer_g.load_state_dict(models.optimizer_g.state_dict())
        target.optimizer_d.load_state_dict(models.optimizer_d.state_dict())
        target.scheduler_g.load_state_dict(models.scheduler_g.state_dict())
        target.scheduler_d.load_state_dict(models.scheduler_d.state_dict())
        target.loss_scale.load_state_dict(models.loss_scale.state_dict())
        step.metrics = metrics  # the loop reads these accumulators: the new step must add to them
        if not graphed:
            set_capturable(target, step.device, False)
            step.dry.fill_(False)
            metrics.reset(skipped_steps)
            return step, target, time.perf_counter() - started
        set_capturable(target, step.device, True)  # the loaded groups carry the old step's LR tensors
        run_step = GraphedStep(step, tuple(self.index.shape))
        run_step.prepare(self.index, skipped_steps)
        return run_step, target, time.perf_counter() - started


def _compile_times() -> str:
    """Where the compile's time went, by phase, as torch reports it (empty where it cannot)."""
    try:
        from torch._dynamo.utils import compile_times

        return str(compile_times(repr="str", aggregate=True))
    except Exception:  # a private helper: its absence costs a log line, nothing else
        return ""

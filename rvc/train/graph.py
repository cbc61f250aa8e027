"""The whole training step as one CUDA graph: launch-free steps for a GPU that would otherwise idle.

An eager RVC step launches about 8,000 small kernels; the CPU cannot issue them as fast
as an H100 runs them, so the GPU waits three quarters of the time. Capturing the step
(G forward, D forward/backward/AdamW, G forward/backward/AdamW, grad norms, mel, the
metric sums) once and replaying it costs one launch per step. ``torch.compile`` of the
forwards then fuses the remaining small kernels.

What makes the step capturable: static shapes (the batch is a fixed-size index into a
dataset that lives on the device), no host syncs, AdamW ``fused=True, capturable=True``
with the learning rate as a device tensor (so the schedulers can change it between
replays), and warm-up steps on a side stream before capture. Warm-up and capture run
"dry" (the optimizers skip their updates through the same on-device flag that skips
non-finite steps), so no batch is trained on twice.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch

from rvc.config.train import STEP_MODES
from rvc.errors import UserError
from rvc.train.compile_cost import GRAPH_STEPS_PER_S, CostRecord, ModeCost, cheapest_mode
from rvc.train.models import Models
from rvc.train.step import TrainStep

WARMUP_STEPS = 3  # cuDNN autotuning, compilation and lazy optimizer state happen here, not in the capture
TIMED_REPLAYS = 10  # dry replays that time a prepared step (about half a second on an H100)


def compile_available() -> bool:
    """Whether torch.compile can build GPU kernels here (it needs Triton)."""
    try:
        from torch.utils._triton import has_triton
    except ImportError:
        return False
    return bool(has_triton())


@dataclass(frozen=True)
class StepModeChoice:
    mode: str  # eager, graph, compiled or regional
    why: str
    final: bool = True  # False: "auto" captures the graph first, times it, and chooses again with its speed


def choose_step_mode(
    requested: str,
    device: torch.device,
    steps_left: int,
    measured: dict[str, ModeCost],
    graph_steps_per_s: float | None = None,
) -> StepModeChoice:
    """How steps run for ``requested`` ("auto", "eager", "graph", "compiled" or "regional") on this device.

    "auto" on a GPU takes the mode that finishes ``steps_left`` soonest (compile_cost.py), from the costs
    ``measured`` here for this setting and the graphed step's speed (``graph_steps_per_s``, else the one
    on record); with neither, the graph is captured and timed first (``final`` False).
    """
    if requested not in STEP_MODES:
        raise UserError(f"unknown step mode {requested!r}: use one of {', '.join(STEP_MODES)}")
    if requested == "eager":
        return StepModeChoice("eager", "asked for")
    if device.type != "cuda":
        if requested != "auto":
            raise UserError(f"step mode {requested!r} needs a CUDA GPU: use --step-mode auto or eager on {device}")
        return StepModeChoice("eager", f"CUDA graphs need a CUDA GPU (training on {device})")
    if requested != "auto":
        if requested in ("compiled", "regional") and not compile_available():
            raise UserError("torch.compile needs Triton, which is not installed: use --step-mode graph")
        return StepModeChoice(requested, "asked for")
    if not compile_available():
        return StepModeChoice("graph", "Triton is not installed: no torch.compile")
    speed = graph_steps_per_s or measured.get("graph", ModeCost()).steps_per_s
    if speed is None:
        return StepModeChoice("graph", "the graphed step is timed first: no speed of it on record here", final=False)
    return StepModeChoice(*cheapest_mode(steps_left, speed, measured))


def set_capturable(models: Models, device: torch.device, capturable: bool) -> None:
    """Let both optimizers run inside a CUDA graph (or not): capturable, with the LR as a device tensor.

    The schedulers write a tensor LR in place (``fill_``), so LR changes reach the replays. A
    state saved by a graphed run and resumed eagerly gets its plain float LR back.
    """
    for optimizer in (models.optimizer_g, models.optimizer_d):
        for group in optimizer.param_groups:
            group["capturable"] = capturable
            lr = float(group["lr"])
            group["lr"] = torch.tensor(lr, device=device) if capturable else lr


class GraphedStep:
    """Capture ``step`` once (after dry warm-up steps) and replay it for each batch index.

    index : Tensor[K x B] long on the device, the same shape every call.
    """

    def __init__(self, step: TrainStep, index_shape: tuple[int, ...]) -> None:
        self.step = step
        self.static_index = torch.zeros(index_shape, dtype=torch.long, device=step.device)
        self.graph: torch.cuda.CUDAGraph | None = None

    def prepare(self, index: torch.Tensor, skipped_before: int = 0) -> float:
        """Warm up (compiling what is compiled), capture, and return the seconds it took."""
        started = time.perf_counter()
        step = self.step
        step.dry.fill_(True)
        self.static_index.copy_(index)
        graph = torch.cuda.CUDAGraph()
        # "thread_local": with several processes, NCCL's watchdog thread polls its events while
        # this thread captures; in the default (global) mode that poll invalidates the capture
        # (seen on 2 H200s: "operation not permitted when stream is capturing").
        capture = torch.cuda.graph(graph, capture_error_mode="thread_local")
        # The warm-up runs on the stream the capture records on (one per process, PyTorch's): cuBLAS
        # keeps a workspace for every stream it meets, so a new side stream per preparation left
        # about 64 MiB allocated for good each time (batch auto's trials prepare several).
        side = cast(torch.cuda.Stream, capture.capture_stream)  # typed optional; the constructor sets it
        side.wait_stream(torch.cuda.current_stream(step.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                step(self.static_index)
        torch.cuda.current_stream(step.device).wait_stream(side)
        # Finish the warm-up's collectives first: NCCL's watchdog polls the events of work still
        # enqueued, and that poll must not meet a capture in progress (pytorch#104487).
        torch.cuda.synchronize(step.device)
        with capture:
            step(self.static_index)
        self.graph = graph
        step.dry.fill_(False)  # the graph reads the flag: replays from now on train
        step.metrics.reset(skipped_before)
        torch.cuda.synchronize(step.device)
        return time.perf_counter() - started

    def steps_per_s(self, skipped_before: int = 0, replays: int = TIMED_REPLAYS) -> float:
        """Replay the captured step dry ``replays`` times (after one untimed) and return its speed.

        Nothing trains, the CUDA RNG is put back and the metrics forgotten: the run goes on as if untimed.
        """
        if self.graph is None:
            raise RuntimeError("GraphedStep.prepare() must run before the step is timed")
        step, graph = self.step, self.graph
        rng = torch.cuda.get_rng_state(step.device)
        step.dry.fill_(True)
        graph.replay()
        torch.cuda.synchronize(step.device)
        started = time.perf_counter()
        for _ in range(replays):
            graph.replay()
        torch.cuda.synchronize(step.device)
        seconds = time.perf_counter() - started
        step.dry.fill_(False)
        step.metrics.reset(skipped_before)
        torch.cuda.set_rng_state(rng, step.device)
        return replays / seconds

    def __call__(self, index: torch.Tensor) -> None:
        if self.graph is None:
            raise RuntimeError("GraphedStep.prepare() must run before the first step")
        self.static_index.copy_(index, non_blocking=True)
        self.graph.replay()


@dataclass
class PreparedStep:
    """A step ready to run: ``run(index)`` trains one step; how it runs and why; what preparing it took."""

    run: Callable[[torch.Tensor], None]
    mode: str
    why: str
    prepare_s: float = 0.0  # warm-up, compile and capture (0: eager)
    steps_per_s: float | None = None  # timed right after the capture (None: not timed)


def prepare_step(
    step: TrainStep, choice: StepModeChoice, world_size: int, skipped_steps: int, log: Callable[[str], None]
) -> PreparedStep:
    """Prepare the step ``choice`` names.

    In "auto" mode a graph or compile that fails falls back to the eager step, with the reason.
    ``skipped_steps`` carries the run's count of skipped steps past the warm-up's metric reset.
    """
    train, device = step.config.train, step.device
    mode, why = choice.mode, choice.why
    set_capturable(step.models, device, mode != "eager")
    if mode == "eager":
        return PreparedStep(step, mode, why)
    plain = step.functions
    compiles = {
        "compiled": "compiling takes minutes the first time, seconds once cached",
        "regional": "compiling the repeated blocks takes a minute or so the first time, seconds once cached",
    }
    log(f"preparing the {mode} step ({why}): {compiles.get(mode, 'seconds')}")
    if mode == "compiled":
        step.functions = plain.compiled()
    elif mode == "regional":  # compiled in place, with no undo: after a failure the regions stay compiled
        from rvc.train.regions import compile_regions

        compile_regions(step.models.generator, step.models.discriminator)
    batch = train.resolved_batch_size
    graphed = GraphedStep(step, (train.grad_accum, batch))
    rows = torch.arange(train.grad_accum * batch, device=device) % len(step.data)
    try:
        seconds = graphed.prepare(rows.view(train.grad_accum, batch), skipped_steps)
    except Exception as error:  # a compiler or capture failure must not cost the user the run
        # With several processes every rank must run the same step (the all-reduces pair up):
        # failing lets torchrun stop them all, where one rank falling back would hang the rest.
        if train.step_mode != "auto" or world_size > 1:
            raise
        log(f"the {mode} step failed ({type(error).__name__}: {error}); training eagerly instead")
        step.functions = plain
        step.dry.fill_(False)
        step.metrics.reset(skipped_steps)
        set_capturable(step.models, device, False)
        return PreparedStep(step, "eager", f"{mode} failed: {type(error).__name__}: {error}"[:300])
    log(f"{mode} step ready in {seconds:.1f} s ({why})")
    return PreparedStep(graphed, mode, why, seconds)


def ready_step(
    step: TrainStep,
    world_size: int,
    steps_left: int,
    skipped_steps: int,
    compile_times: Path | None,
    log: Callable[[str], None],
) -> PreparedStep:
    """Choose how steps run (the setting, and what each mode cost here before), prepare it, keep its cost.

    With one process a graphed step is timed right after its capture (dry replays, about a second)
    and its preparation and speed are kept in ``compile_times`` (beside the compile cache), so the
    next run's "auto" judges by them, warm cache or not. "auto" with no speed of the graph on record
    captures the graph first, times it, and moves to a compiling mode only where that finishes the
    run sooner. With several processes nothing is timed or written: every rank must choose alike,
    from the records and compile_cost.py's figures.
    """
    config, device = step.config, step.device
    record = (
        CostRecord.for_setting(compile_times, config, step.precision.name, device)
        if compile_times is not None and device.type == "cuda" and world_size == 1
        else None
    )
    measured = record.costs() if record else {}
    graph_speed = None if world_size == 1 else GRAPH_STEPS_PER_S
    choice = choose_step_mode(config.train.step_mode, device, steps_left, measured, graph_speed)
    prepared = _prepare_and_time(step, choice, world_size, skipped_steps, record, log)
    if choice.final or prepared.steps_per_s is None:
        return prepared
    final = choose_step_mode("auto", device, steps_left, measured, prepared.steps_per_s)
    if final.mode == "graph":
        return dataclasses.replace(prepared, why=final.why)
    log(f"moving to the {final.mode} step: {final.why}")
    if isinstance(prepared.run, GraphedStep):
        prepared.run.graph = None  # its memory pool goes back before the next capture
    torch.cuda.empty_cache()
    chosen = _prepare_and_time(step, final, world_size, skipped_steps, record, log)
    if chosen.mode == "eager":  # the compile failed: the graph it was to replace is still the better step
        chosen = _prepare_and_time(step, StepModeChoice("graph", chosen.why), world_size, skipped_steps, None, log)
    return dataclasses.replace(chosen, prepare_s=prepared.prepare_s + chosen.prepare_s)


def _prepare_and_time(
    step: TrainStep,
    choice: StepModeChoice,
    world_size: int,
    skipped_steps: int,
    record: CostRecord | None,
    log: Callable[[str], None],
) -> PreparedStep:
    """Prepare the step ``choice`` names; with one process, time a graphed one and keep what it cost."""
    prepared = prepare_step(step, choice, world_size, skipped_steps, log)
    if not isinstance(prepared.run, GraphedStep) or world_size > 1:
        return prepared
    prepared.steps_per_s = prepared.run.steps_per_s(skipped_steps)
    log(f"{prepared.mode} step: {prepared.steps_per_s:.1f} steps/s (timed dry)")
    if record is not None:
        record.write(prepared.mode, prepared.prepare_s, prepared.steps_per_s)
    return prepared

"""Which graphed step finishes a run soonest here, from what each step mode cost on this machine before.

``torch.compile`` makes the graphed step about 1.4 times faster (27.8 against 18.8 steps/s for
v2 40k at batch 8 on an H100), but a cold compile takes minutes (190-212 s on an H100 or H200 with
16 cores, Inductor's cache empty) and a warm one about 40 s. A default 200-epoch run of ten minutes
of speech is 5,000 steps: about 265 s graphed, so a cold compile cannot pay for it, a warm one can.
Both sides of that sum depend on the machine: a slower GPU makes every step longer (so a compile
repays sooner), fewer CPU cores make the compile longer. So "auto" adds up, for each mode, its
preparation and the steps left at its speed, from what was measured here for this setting (kept
beside the compile cache): the graphed step is timed right after its capture when no speed of it
is on record, a compiled step's speed is the graph's times the speed-up measured on an H100 until
one has run here, a compile takes a cold one's time until one was measured, and regional
compilation is weighed only once it has run here (asked for, or by a benchmark).

Compiling in a background thread while the graphed step trains was tried (8056453) and measured
against: the compiler and the training thread's Python share one GIL, so on an H100 the compile had
not finished after 350 s and validation, samples and saves took three times as long meanwhile.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rvc.config.experiment import ExperimentConfig

COLD_COMPILE_S = 200.0  # preparing the compiled step without a measured compile of this setting here
COMPILED_SPEED_UP = 1.4  # compiled against graphed steps/s (H100, bf16-tail: 27.8 / 18.8)
GRAPH_STEPS_PER_S = 20.0  # the graphed step where it cannot be timed first (v2 40k, batch 8, H100/H200: 18.8-20.2)


@dataclass(frozen=True)
class ModeCost:
    """What one step mode cost here: preparing it (warm-up, compile, capture) and its steady speed."""

    prepare_s: float | None = None
    steps_per_s: float | None = None


@dataclass
class CostRecord:
    """The measured costs of one setting's step modes here, kept beside the compile cache."""

    path: Path
    key: str  # torch version, GPU, precision, model shape and batch: what the cached kernels depend on

    @classmethod
    def for_setting(cls, path: Path, config: ExperimentConfig, precision: str, device: torch.device) -> CostRecord:
        """The entry of this run's setting on this GPU (CUDA) among the records at ``path``."""
        train = config.train
        key = (
            f"torch {torch.__version__} | {torch.cuda.get_device_name(device)} | {precision} | "
            f"model {config.training_hash()[:12]} | batch {train.grad_accum}x{train.batch_size}"
            f"{' | multiscale' if train.multiscale_mel else ''}"
        )
        return cls(path, key)

    def costs(self) -> dict[str, ModeCost]:
        """Each step mode's measured cost (a mode never run here is absent)."""
        return {mode: _cost(value) for mode, value in self._entry().items()}

    def write(self, mode: str, prepare_s: float, steps_per_s: float | None) -> None:
        """Keep what ``mode`` cost in this run (a speed not measured keeps the one on record)."""
        records, entry = self._records(), self._entry()
        speed = steps_per_s if steps_per_s is not None else entry.get(mode, {}).get("steps_per_s")
        entry[mode] = {"prepare_s": round(prepare_s, 1), "steps_per_s": speed, "time": round(time.time())}
        records[self.key] = entry
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(records, indent=1) + "\n")
        except OSError:
            pass  # a record is a hint for the next run, never worth failing this one

    def _entry(self) -> dict[str, dict[str, Any]]:
        entry = self._records().get(self.key)
        if not isinstance(entry, dict):
            return {}
        if "compile_s" in entry:  # written before the speeds were kept: the compiled step's preparation only
            entry = {"compiled": {"prepare_s": entry["compile_s"]}}
        return {mode: value for mode, value in entry.items() if isinstance(value, dict)}

    def _records(self) -> dict[str, Any]:
        try:
            records = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except (OSError, ValueError):
            return {}
        return records if isinstance(records, dict) else {}


def _cost(value: dict[str, Any]) -> ModeCost:
    def number(name: str) -> float | None:
        found = value.get(name)
        return float(found) if isinstance(found, int | float) and math.isfinite(found) and found > 0 else None

    return ModeCost(number("prepare_s"), number("steps_per_s"))


def expected_seconds(steps_left: int, graph_steps_per_s: float, measured: dict[str, ModeCost]) -> dict[str, float]:
    """The seconds each mode worth weighing would take to train ``steps_left`` steps from now, its
    preparation included (the graph's own counts as paid: it is captured first, or takes seconds)."""
    seconds = {"graph": steps_left / graph_steps_per_s}
    compiled = measured.get("compiled", ModeCost())
    speed = compiled.steps_per_s or graph_steps_per_s * COMPILED_SPEED_UP
    seconds["compiled"] = (compiled.prepare_s or COLD_COMPILE_S) + steps_left / speed
    regional = measured.get("regional", ModeCost())
    if regional.prepare_s and regional.steps_per_s:
        seconds["regional"] = regional.prepare_s + steps_left / regional.steps_per_s
    return seconds


def cheapest_mode(steps_left: int, graph_steps_per_s: float, measured: dict[str, ModeCost]) -> tuple[str, str]:
    """The mode that finishes ``steps_left`` steps soonest, and why in words."""
    seconds = expected_seconds(steps_left, graph_steps_per_s, measured)
    ranked = sorted(seconds, key=lambda mode: seconds[mode])
    sums = ", ".join(f"{mode} ~{seconds[mode]:.0f} s" for mode in ranked)
    compile_s = measured.get("compiled", ModeCost()).prepare_s
    compile = f"a compile measured here: {compile_s:.0f} s" if compile_s else f"a cold compile: ~{COLD_COMPILE_S:.0f} s"
    return ranked[0], f"{steps_left} steps at {graph_steps_per_s:.1f} steps/s graphed: {sums} ({compile})"

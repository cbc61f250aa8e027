"""Whether compiling the step pays for a run, from what compiling it cost here before.

``torch.compile`` makes the graphed step about 1.4 times faster (27.8 against 18.8 steps/s for
v2 40k at batch 8 on an H100), but a cold compile takes minutes (190-212 s on an H100 or H200 with
16 cores, Inductor's cache empty) and a warm one about 40 s. A default 200-epoch run of ten minutes
of speech is 5,000 steps: about 265 s graphed, so a cold compile cannot pay for it, a warm one can.
So "auto" compiles when the compiled steps save more than the compile is expected to take: this
setting's last measured compile on this machine (kept beside the compile cache), else a cold one's.

Compiling in a background thread while the graphed step trains was tried (8056453) and measured
against: the compiler and the training thread's Python share one GIL, so on an H100 the compile had
not finished after 350 s and validation, samples and saves took three times as long meanwhile.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from rvc.config.experiment import ExperimentConfig

COLD_COMPILE_S = 200.0  # without a measured compile of this setting here
COMPILED_SPEED_UP = 1.4  # compiled against graphed steps/s (H100, bf16-tail: 27.8 / 18.8)
GRAPH_STEPS_PER_S = 20.0  # the graphed step before it has run here (v2 40k, batch 8, H100/H200: 18.8-20.2)


@dataclass
class CompileRecord:
    """What the last compile of one setting took here, kept beside the compile cache."""

    path: Path
    key: str  # torch version, GPU, precision, model shape and batch: what the cached kernels depend on

    @classmethod
    def for_setting(cls, path: Path, config: ExperimentConfig, precision: str, device: torch.device) -> CompileRecord:
        """The entry of this run's setting on this GPU (CUDA) among the records at ``path``."""
        train = config.train
        key = (
            f"torch {torch.__version__} | {torch.cuda.get_device_name(device)} | {precision} | "
            f"model {config.training_hash()[:12]} | batch {train.grad_accum}x{train.batch_size}"
            f"{' | multiscale' if train.multiscale_mel else ''}"
        )
        return cls(path, key)

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


def compile_pays(steps_left: int, expected_compile_s: float, graph_steps_per_s: float = GRAPH_STEPS_PER_S) -> bool:
    """Whether the compiled steps save more time than the compile is expected to take."""
    graph_s = steps_left / graph_steps_per_s
    return graph_s * (1 - 1 / COMPILED_SPEED_UP) > expected_compile_s

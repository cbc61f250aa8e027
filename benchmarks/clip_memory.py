"""What a clip costs the training step's memory, by part, as the clips get longer: on any device.

Run: ``python benchmarks/clip_memory.py [--batches 2 4] [--frames 320 1200] [--device cpu]
[--step-peaks fp32 bf16-tail]``.

Every clip of the training set is padded to the longest, and the step runs the text and posterior
encoders and the flows over whole clips, the decoder and the discriminators over the training
segment only. This runs the trainer's real step (the full v2 40k model, fp32, eager) and counts,
for each part, the bytes of the tensors it keeps for its backward (each storage once): the
generator's forward (``G``: the encoders, the flows and the decoder on the segment), the
discriminator's loss (``D``) and the adversarial losses of the generator (``A``). A batch of B
clips at F padded frames; from two batches and two lengths the per-clip cost splits into a part
that follows the segment and a part that follows the frames, which is what
``rvc/config/memory.py`` (``WHOLE_CLIP_SHARE``) scales the memory estimate by. Then the held-out
pass (whole clips through the conversion path in fp32, no gradients) at its peak, by the same shapes:
what a held-out clip costs a second of audio (``HELD_OUT_BYTES_PER_SAMPLE``). These are the
activations a GPU also holds (the same tensors; a GPU adds workspaces, the allocator's rounding
and gaps); on a CPU a step of the full model takes 15-40 s.
Results go to ``benchmarks/results/clip_memory-<machine>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import header  # noqa: E402

MIB = 2**20


class SavedBytes:
    """Counts the bytes of the tensors autograd keeps for a backward (each storage once)."""

    def __init__(self) -> None:
        self.storages: set[tuple[int, int]] = set()
        self.bytes = 0

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in self.storages:
            self.storages.add(key)
            self.bytes += storage.nbytes()
        return tensor


def counted(name: str, function: Callable[..., Any], into: dict[str, SavedBytes]) -> Callable[..., Any]:
    """``function`` with what it keeps for the backward counted in ``into[name]``."""

    def run(*args: Any, **kwargs: Any) -> Any:
        count = into[name] = SavedBytes()
        with torch.autograd.graph.saved_tensors_hooks(count.pack, lambda tensor: tensor):
            return function(*args, **kwargs)

    return run


def _setup(batch: int, frames: int, device: torch.device, plan: str = "fp32") -> tuple[Any, Any, Any]:
    """The full v2 40k model (its weights in fp32, ``plan``'s autocast) and ``batch`` random clips of
    ``frames`` frames: (config, models, data)."""
    from rvc.models.config import ModelConfig
    from rvc.train.data import TrainingSet
    from rvc.train.models import build_models
    from rvc.train.precision import PLANS
    from tests.fake_experiment import tiny_config

    config = tiny_config(batch_size=batch)
    config = dataclasses.replace(config, model=ModelConfig.for_sample_rate(40000))
    model = config.model
    torch.manual_seed(0)
    models = build_models(config, device, PLANS[plan], channels_last=False)
    data = TrainingSet(
        [f"clip-{i}" for i in range(batch)],
        torch.randn(batch, frames * model.hop_length, device=device) * 0.1,
        torch.randn(batch, frames, 768, device=device),
        torch.randint(1, 255, (batch, frames), device=device),
        torch.rand(batch, frames, device=device) * 200 + 100,
        torch.full((batch,), frames, device=device),
        model.hop_length,
        model.sample_rate,
    )
    return config, models, data


def measure(batch: int, frames: int, device: torch.device) -> dict[str, float]:
    """One step of the real trainer on ``batch`` random clips of ``frames`` frames; MiB kept per part."""
    from rvc.train.mel import Spectrogram
    from rvc.train.step import StepFunctions, StepMetrics, TrainStep

    config, models, data = _setup(batch, frames, device)
    counts: dict[str, SavedBytes] = {}
    plain = StepFunctions.plain(models.generator, models.discriminator)
    functions = StepFunctions(
        counted("G", plain.generator_forward, counts),
        counted("D", plain.discriminator_loss, counts),
        counted("A", plain.adversarial_losses, counts),
    )
    metrics = StepMetrics(device)
    step = TrainStep(config, models, Spectrogram.for_model(config.model).to(device), data, metrics, functions=functions)
    step(torch.arange(batch, device=device).view(1, batch))
    return {name: round(count.bytes / MIB, 1) for name, count in counts.items()}


def peak_mib(run: Callable[[], object], device: torch.device) -> float:
    """The most ``run`` had allocated at once beyond what was allocated before it, in MiB: CUDA's
    allocator says it; on a CPU the profiler's allocation events are summed in order."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / MIB
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        run()
    now = peak = 0
    events = profiler.profiler.kineto_results.events() if profiler.profiler is not None else []
    for event in sorted(events, key=lambda e: e.start_ns()):
        if event.name() == "[memory]":
            now += event.nbytes()
            peak = max(peak, now)
    return peak / MIB


def step_peak(batch: int, frames: int, device: torch.device, plan: str) -> float:
    """The second of two training steps (the optimizers' moments exist by then) at its peak, in MiB:
    everything it allocates, gradients and the backward's transients included."""
    from rvc.train.mel import Spectrogram
    from rvc.train.precision import PLANS
    from rvc.train.step import StepMetrics, TrainStep

    config, models, data = _setup(batch, frames, device, plan)
    spectrogram = Spectrogram.for_model(config.model).to(device)
    step = TrainStep(config, models, spectrogram, data, StepMetrics(device), precision=PLANS[plan])
    index = torch.arange(batch, device=device).view(1, batch)
    step(index)
    return round(peak_mib(lambda: step(index), device), 1)


def held_out_peak(batch: int, frames: int, device: torch.device) -> float:
    """The held-out pass (``HeldOutMel``, eager) over ``batch`` clips of ``frames`` frames at once: its peak MiB."""
    from rvc.train.mel import Spectrogram
    from rvc.train.validation import HeldOutMel

    config, models, data = _setup(batch, frames, device)
    spectrogram = Spectrogram.for_model(config.model).to(device)
    held_out = HeldOutMel(models.generator, spectrogram, data, batch, graphed=False)
    return round(peak_mib(held_out, device), 1)


def split(points: list[dict[str, Any]]) -> dict[str, float]:
    """Per clip: the generator's MiB per frame, and a clip's MiB apart from its frames (at the peak: G + D or A)."""
    by = {(p["batch"], p["frames"]): p["mib"] for p in points}
    batches, frames = sorted({b for b, _ in by}), sorted({f for _, f in by})
    (b1, b2), (f1, f2) = batches[:2], frames[:2]
    per_clip = {part: (by[b2, f1][part] - by[b1, f1][part]) / (b2 - b1) for part in ("G", "D", "A")}
    per_frame = (by[b1, f2]["G"] - by[b1, f1]["G"]) / (b1 * (f2 - f1))
    segment_part = per_clip["G"] - per_frame * f1 + max(per_clip["D"], per_clip["A"])
    return {
        "generator_mib_per_frame_per_clip": round(per_frame, 4),
        "segment_mib_per_clip": round(segment_part, 1),
        "whole_clip_share_at_300_frames": round(per_frame * 300 / (segment_part + per_frame * 300), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs=2, default=[2, 4])
    parser.add_argument("--frames", type=int, nargs=2, default=[320, 1200])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--step-peaks",
        nargs="*",
        default=["fp32"],
        metavar="PLAN",
        help="plans whose whole training step is counted at its peak too (bf16-tail on a CPU: minutes a step)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_grad_enabled(True)
    device = torch.device(args.device)
    result: dict[str, Any] = {
        **header("clip_memory"),
        "settings": "v2 40k, fp32, eager; MiB kept for the backward by G's forward, D's loss, G's adversarial losses",
        "points": [],
    }
    shapes = [(args.batches[0], args.frames[0]), (args.batches[1], args.frames[0]), (args.batches[0], args.frames[1])]
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"clip_memory-{result['machine']}.json"
    for batch, frames in shapes:
        result["points"].append({"batch": batch, "frames": frames, "mib": measure(batch, frames, device)})
        print(json.dumps(result["points"][-1]), flush=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    result["per_clip"] = split(result["points"])
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["per_clip"]))
    # The held-out pass: whole clips in fp32 without gradients, at its peak (rvc/config/memory.py's
    # HELD_OUT_BYTES_PER_SAMPLE): linear in the clips and their length when the figure is the same at each.
    result["held_out"] = {"points": []}
    for batch, frames in shapes:
        mib = held_out_peak(batch, frames, device)
        samples = batch * frames * 400  # v2 40k: 400 output samples a frame
        point = {"batch": batch, "frames": frames, "peak_mib": mib, "bytes_per_sample": round(mib * MIB / samples)}
        result["held_out"]["points"].append(point)
        print(json.dumps(point), flush=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    # The whole step at its peak, by precision plan: what a training clip costs beside a held-out one.
    result["step_peaks"] = []
    for plan in args.step_peaks:
        for batch, frames in shapes:
            point = {"plan": plan, "batch": batch, "frames": frames, "peak_mib": step_peak(batch, frames, device, plan)}
            result["step_peaks"].append(point)
            print(json.dumps(point), flush=True)
            out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

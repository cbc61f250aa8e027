"""Profile the trainer's step: CUDA kernels per step, GPU busy %, ms per step, for each step mode.

Run on a GPU: ``python benchmarks/profile_step.py [--precision bf16] [--modes eager graph compiled regional]``.

``regional`` compiles the models' repeated blocks (rvc/train/regions.py) and graphs the step;
its ``prepare_s`` on an empty Inductor cache is the cold compile it would cost a run.

Uses the real Trainer's step (``TrainStep``, through ``GraphedStep`` for the graph
modes) on Applio's data shape (200 clips x 3 s at 40 kHz, full v2 40k model).
Warm-up (cuDNN autotuning, compiling, capture) is excluded and reported as
``prepare_s``; the profiled window is ``--steps`` steps. GPU busy % = kernel time
per step (profiled) / wall time per step (timed in a separate window without the
profiler). Writes ``benchmarks/results/profile_step-<machine>-<precision>.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import header  # noqa: E402


def profile_mode(mode: str, channels_last: bool, args: argparse.Namespace, logs: Path) -> dict[str, object]:
    import gc

    import torch

    from rvc.experiment import Experiment
    from rvc.experiment.config_file import load_config
    from rvc.train.graph import GraphedStep, set_capturable
    from rvc.train.loop import Trainer
    from rvc.train.mel import Spectrogram
    from rvc.train.models import build_models, configure_backends
    from rvc.train.progress import ProgressWriter
    from rvc.train.step import StepMetrics, TrainStep

    experiment = Experiment(logs, "bench")
    config = load_config(experiment)
    config.train.precision, config.train.batch_size = args.precision, args.batch_size
    device = torch.device("cuda")
    trainer = Trainer(experiment, config, device, ProgressWriter(None, io.StringIO()), lambda: False)
    configure_backends(device, config.train.tf32)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark == "on"
    train_set = trainer._load_data()[0]  # the whole set on the GPU (what the step reads)
    torch.manual_seed(0)
    models = build_models(config, device, trainer.precision, channels_last=channels_last)
    set_capturable(models, device, mode != "eager")
    spectrogram = Spectrogram.for_model(config.model).to(device)
    step = TrainStep(config, models, spectrogram, train_set, StepMetrics(device), trainer.precision)
    generator = torch.Generator().manual_seed(0)

    def batch() -> torch.Tensor:
        return torch.randint(len(train_set), (1, args.batch_size), generator=generator).to(device)

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    run = step
    if mode == "compiled":
        step.functions = step.functions.compiled()
    if mode == "regional":
        from rvc.train.regions import compile_regions

        compile_regions(models.generator, models.discriminator, only=tuple(args.regions))
    if mode != "eager":
        run = GraphedStep(step, (1, args.batch_size))
        run.prepare(batch())
    for _ in range(args.warmup):
        run(batch())
    torch.cuda.synchronize()
    prepare_s = time.perf_counter() - started
    started = time.perf_counter()  # timed without the profiler, whose own cost would inflate it
    for _ in range(args.steps):
        run(batch())
    torch.cuda.synchronize()
    wall = time.perf_counter() - started
    activities = [torch.profiler.ProfilerActivity.CUDA]
    if mode == "eager":  # attribute kernels to the operators that launched them (a graph replay has none)
        activities.append(torch.profiler.ProfilerActivity.CPU)
    with torch.profiler.profile(activities=activities, record_shapes=mode == "eager") as profile:
        for _ in range(args.steps):
            run(batch())
        torch.cuda.synchronize()
    events = [e for e in profile.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    kernel_us = sum(e.device_time for e in events)
    top = sorted(profile.key_averages(), key=lambda e: -e.device_time_total)[:12]
    means, _, _ = step.metrics.read()
    layout_ms: dict[str, float] = {}
    for event in profile.events():  # which operators' kernels cuDNN wraps in NCHW<->NHWC transposes
        for kernel in getattr(event, "kernels", []):
            if "nchwToNhwc" in kernel.name or "nhwcToNchw" in kernel.name:
                key = f"{event.name} {event.input_shapes[:2]}"
                layout_ms[key] = layout_ms.get(key, 0.0) + kernel.duration / 1000 / args.steps
    result = {
        "mode": mode,
        "channels_last": channels_last,
        "cudnn_benchmark": args.cudnn_benchmark == "on",
        "regions": args.regions if mode == "regional" else None,
        "prepare_s": round(prepare_s, 1),
        "ms_per_step": round(1000 * wall / args.steps, 2),
        "steps_per_s": round(args.steps / wall, 2),
        "samples_per_s": round(args.steps * args.batch_size / wall, 1),
        "kernels_per_step": round(len(events) / args.steps),
        "gpu_busy_percent": round(100 * kernel_us / 1e6 / wall, 1),
        "kernel_ms_per_step": round(kernel_us / 1000 / args.steps, 2),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "mean_losses": {k: round(v, 4) for k, v in means.items()},
        "top_kernels_ms_per_step": {e.key[:80]: round(e.device_time_total / 1000 / args.steps, 2) for e in top},
        "layout_transposes_ms_per_step_by_operator": {
            k: round(v, 3) for k, v in sorted(layout_ms.items(), key=lambda kv: -kv[1])[:15]
        },
    }
    print(json.dumps(result, indent=2), flush=True)
    del run, step, models, batch
    gc.collect()
    torch.cuda.empty_cache()
    return result


def main() -> None:
    from benchmarks.train_throughput import make_dataset

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--modes", nargs="+", default=["eager", "graph", "compiled"])
    parser.add_argument(
        "--channels-last", nargs="+", default=["on"], choices=["on", "off"], help="the 1-D convolutions' layout"
    )
    parser.add_argument(
        "--cudnn-benchmark", default="on", choices=["on", "off"], help="autotune each convolution (the trainer's way)"
    )
    parser.add_argument("--regions", nargs="*", default=[], help="regional: only these block classes (default all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        logs = Path(scratch) / "logs"
        make_dataset(logs)
        runs = [profile_mode(mode, layout == "on", args, logs) for mode in args.modes for layout in args.channels_last]
    result = {
        **header("profile_step"),
        "precision": args.precision,
        "batch_size": args.batch_size,
        "steps_profiled": args.steps,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"profile_step-{result['machine']}-{args.precision}.json").write_text(
        json.dumps(result, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()

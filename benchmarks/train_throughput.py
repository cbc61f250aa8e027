"""Steady-state training speed of the real trainer process on a synthetic 10-minute 40 kHz dataset.

Run: ``python benchmarks/train_throughput.py [--precisions fp32 bf16] [--step-modes eager compiled]
[--batch-size 8] [--epochs 6]``.

The dataset has Applio's benchmark shape: 200 clips of 3 s at 40 kHz, random
768-d content features, harmonic f0; the full v2 40k model from scratch. Each
precision runs ``python -m rvc.train`` as a user would; figures come from its
progress events: the median epoch time of the epochs after the first (warm-up
and cuDNN autotuning excluded and reported apart), steps/s, samples/s and the
peak GPU memory. Each step mode (eager, graph, compiled: see rvc/train/graph.py) runs
for each precision; its compile and capture time is reported apart (``compile_s``, from the
``start`` event), with the time from process start to the first step. The held-out mel
loss after the last epoch (the same fixed number of steps for every run) shows what a
speed-up costs in quality. Results go to
``benchmarks/results/train_throughput-<machine>-b<batch>[-<tag>].json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import header  # noqa: E402


def make_dataset(logs: Path) -> None:
    from rvc.config.experiment import DataInfo, ExperimentConfig
    from rvc.experiment.config_file import save_config
    from rvc.models.config import ModelConfig
    from tests.fake_experiment import make_extracted_experiment

    experiment = make_extracted_experiment(logs, "bench", train_clips=200, validation_clips=10, seconds=3.0)
    save_config(experiment, ExperimentConfig(ModelConfig.for_sample_rate(40000), data=DataInfo(40000)))


def run_precision(
    logs: Path,
    precision: str,
    batch_size: int,
    epochs: int,
    step_mode: str = "auto",
    seed: int = 1234,
    gpus: int = 1,
    validate_every: int | None = None,
) -> dict[str, object]:
    from rvc.experiment import Experiment
    from rvc.experiment.config_file import load_config, save_config
    from rvc.train.progress import read_events

    experiment = Experiment(logs, "bench")
    config = load_config(experiment)
    config.train.epochs = epochs
    config.train.batch_size = batch_size
    config.train.precision = precision
    config.train.step_mode = step_mode
    config.train.seed = seed
    config.train.save_every = 10_000  # measure training, not checkpoint writes
    config.train.validate_every = epochs if validate_every is None else validate_every  # default: at the end
    config.train.resume = False
    save_config(experiment, config)
    experiment.progress_jsonl.unlink(missing_ok=True)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    started, started_at = time.perf_counter(), time.time()
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(gpus)] if gpus > 1 else []
    subprocess.run(
        [*(launcher or [sys.executable]), "-m", "rvc.train", "--experiment", "bench", "--logs-dir", str(logs)],
        check=True,
        env=dict(os.environ, PYTHONPATH=path),
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    events = [e.to_json() for e in read_events(experiment.progress_jsonl)[0]]
    start = next(e for e in events if e["kind"] == "start")
    first_step = next(e for e in events if e["kind"] == "step")
    epoch_events = [e for e in events if e["kind"] == "epoch"]
    steady = [e["epoch_s"] for e in epoch_events[1:]]
    epoch_s = statistics.median(steady)
    # What a user waits per epoch: from one epoch event to the next, validations included.
    epoch_wall_s = statistics.median(b["time"] - a["time"] for a, b in itertools.pairwise(epoch_events))
    steps = start["steps_per_epoch"]
    final_val = epoch_events[-1]["validation"].get("loss/val/mel")
    return {
        "precision": precision,
        "step_mode": start.get("step_mode", "eager"),
        "seed": seed,
        "batch_size": batch_size,  # per GPU
        "gpus": start.get("world_size", 1),
        "compile_s": start.get("compile_s"),
        "process_start_to_first_step_s": round(first_step["time"] - started_at, 1),
        "steps_per_epoch": steps,
        "epoch_s": round(epoch_s, 3),
        "first_epoch_s": round(epoch_events[0]["epoch_s"], 3),
        "epoch_wall_s": round(epoch_wall_s, 3),
        "validate_every": config.train.validate_every,
        "validations": sum(1 for e in epoch_events if e["validation"]),
        "steps_per_s": round(steps / epoch_s, 2),
        "samples_per_s": round(steps * batch_size * start.get("world_size", 1) / epoch_s, 1),
        "peak_mem_gib": max((e.get("peak_mem_gib") or 0.0) for e in epoch_events[1:]),
        "first_epoch_peak_mem_gib": epoch_events[0].get("peak_mem_gib"),  # includes cuDNN autotuning workspaces
        "val_mel_after": {"steps": epoch_events[-1]["step"], "loss/val/mel": final_val},
        "process_wall_s": round(wall, 1),
        "epochs_measured": len(steady),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--step-modes", nargs="+", default=["eager", "compiled"], help="eager, graph, compiled")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1234], help="several: run-to-run noise")
    parser.add_argument("--tag", default="", help="appended to the result file's name")
    parser.add_argument("--gpus", nargs="+", type=int, default=[1], help="processes (torchrun) per run, e.g. 1 2")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument(
        "--validate-every", type=int, help="as the trainer's (0: auto); default: only after the last epoch"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        logs = Path(scratch) / "logs"
        make_dataset(logs)
        runs = []
        for mode in args.step_modes:
            for precision in args.precisions:
                for seed in args.seeds:
                    for gpus in args.gpus:
                        runs.append(
                            run_precision(
                                logs, precision, args.batch_size, args.epochs, mode, seed, gpus, args.validate_every
                            )
                        )
                        print(json.dumps(runs[-1]), flush=True)
    result = {
        **header("train_throughput"),
        "data": "200 clips x 3 s at 40 kHz (10 min), random 768-d features, harmonic f0; v2 40k from scratch",
        "reference": {"applio_3.6.4_h100_steps_per_s": 3.3, "applio_samples_per_s": 26},
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    tag = f"-{args.tag}" if args.tag else ""
    out = args.out / f"train_throughput-{result['machine']}-b{args.batch_size}{tag}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

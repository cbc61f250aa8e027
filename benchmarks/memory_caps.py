"""The GPUs our users have: the default run under 6, 8, 12, 16 and 24 GiB, in bf16-tail and fp16.

Run on a GPU: ``python benchmarks/memory_caps.py [--caps 6 8 12 16 24] [--precisions bf16-tail fp16]
[--step-modes graph compiled] [--sets uniform variable] [--epochs 2]``.

Each run is the real CLI (``python -m rvc train``) with ``RVC_GPU_MEMORY_GIB`` set to the cap, so
the trainer's allocator refuses what a card of that size could not hold (cuDNN's autotuning
included). Every setting is the default but the precision and step mode, with a save and a
held-out validation every epoch and the final export, so each phase that takes memory runs
under the cap: warm-up, capture or compile, steps, validation, saves, export. ``fp16`` is what
a T4 (no bf16) gets from ``--precision auto``.

The sets: ``uniform`` is the 10-minute benchmark set (200 clips of 3 s, 10 held out);
``variable`` is 109 clips of 1-12 s (speech-like lengths; the held-out clips are whole clips, so
the longest sets validation's peak). Reported per run: whether it finished, the error event if
not, steps/s of the last epoch, the peak of the first epoch (autotuning) and of the others.
Results go to ``benchmarks/results/memory_caps-<machine>[-<tag>].json`` after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import header  # noqa: E402


def make_set(logs: Path, kind: str, clips: int | None) -> None:
    """Write experiment ``bench`` of the given kind (the benchmark's data) under ``logs``."""
    from rvc.config.experiment import DataInfo, ExperimentConfig
    from rvc.experiment.config_file import save_config
    from rvc.models.config import ModelConfig
    from tests.fake_experiment import make_extracted_experiment

    if kind == "uniform":
        train = clips or 200
        experiment = make_extracted_experiment(logs, "bench", train_clips=train, validation_clips=10, seconds=3.0)
        seconds, longest = 3.0 * (train + 10), 3.0
    else:
        train = clips or 99
        experiment = make_extracted_experiment(logs, "bench", train_clips=train, validation_clips=10, seconds=12.0)
        lengths = np.random.default_rng(7).uniform(1.0, 12.0, train + 10)
        shorten(experiment, lengths)
        seconds, longest = float(lengths.sum()), float(lengths[:train].max())
    # The lengths as prepare records them: batch "auto" reads RVC's length rule from the total (10.5
    # minutes: 8), and the memory estimate (its first trial) the longest training clip.
    data = DataInfo(40000, train_clips=train, validation_clips=10, seconds=seconds, longest_clip_seconds=longest)
    save_config(experiment, ExperimentConfig(ModelConfig.for_sample_rate(40000), data=data))


def shorten(experiment: object, seconds: np.ndarray) -> None:
    """Cut each clip (audio, f0, features) of ``experiment`` to its length in ``seconds``."""
    import soundfile as sf

    from rvc.experiment import Experiment

    assert isinstance(experiment, Experiment)
    names = experiment.train_clips.read_text().split() + experiment.validation_clips.read_text().split()
    for name, length in zip(names, seconds, strict=True):
        audio_path = experiment.clip_audio(name, 40000)
        audio, rate = sf.read(audio_path, dtype="float32")
        sf.write(audio_path, audio[: round(length * rate)], rate, subtype="FLOAT")
        n16 = round(length * 16000)
        for path, frames in (
            (experiment.clip_f0(name), n16 // 160 + 1),
            (experiment.clip_f0_coarse(name), n16 // 160 + 1),
            (experiment.clip_features(name), (n16 - 400) // 320 + 1),
        ):
            np.save(path, np.load(path)[:frames])


def configure(logs: Path, epochs: int, precision: str, step_mode: str) -> None:
    from rvc.experiment import Experiment
    from rvc.experiment.config_file import load_config, save_config

    experiment = Experiment(logs, "bench")
    config = load_config(experiment)
    config.train.epochs, config.train.precision, config.train.step_mode = epochs, precision, step_mode
    config.train.save_every, config.train.validate_every, config.train.resume = 1, 1, False
    save_config(experiment, config)


def estimate_gib(logs: Path, start: dict[str, Any], cap: float) -> float | None:
    """Validate's memory estimate for the batch and precision the run trained with (None: it did not start)."""
    from rvc.config.memory import estimate_memory_gib
    from rvc.experiment import Experiment
    from rvc.experiment.config_file import load_config
    from rvc.train.batch_choice import with_batch

    batch = (start.get("config") or {}).get("train", {}).get("batch_size")
    if not isinstance(batch, int):
        return None
    config = with_batch(load_config(Experiment(logs, "bench")), batch)
    return round(estimate_memory_gib(config, str(start.get("precision")), cap), 2)


def run_once(logs: Path, assets: Path, cap: float) -> dict[str, object]:
    import shutil

    from rvc.train.progress import read_events

    root = logs / "bench"
    for name in ("checkpoints", "tensorboard"):
        shutil.rmtree(root / name, ignore_errors=True)
    for name in ("bench.pth", "bench_best.pth", "progress.jsonl"):
        (root / name).unlink(missing_ok=True)
    env = dict(os.environ, RVC_GPU_MEMORY_GIB=str(cap))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "rvc", "--logs-dir", str(logs), "--assets-dir", str(assets)]
    started = time.time()
    train = [*command, "train", "--experiment", "bench"]
    result = subprocess.run(train, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    events = [e.to_json() for e in read_events(root / "progress.jsonl")[0]]
    start = next((e for e in events if e["kind"] == "start"), {})
    epochs = [e for e in events if e["kind"] == "epoch"]
    errors = [e for e in events if e["kind"] == "error"]
    peaks = [e.get("peak_mem_gib") or 0.0 for e in epochs]
    held = [e.get("peak_reserved_gib") or 0.0 for e in epochs]
    return {
        "cap_gib": cap,
        "exit_code": result.returncode,
        "finished": result.returncode == 0 and any(e["kind"] == "done" for e in events),
        "error": errors[-1].get("message") if errors else None,
        "wall_s": round(time.time() - started, 1),
        "start_s": round(start["time"] - started, 1) if start else None,  # process start to the start event
        "batch_trials_s": start.get("batch_trials_s"),  # of it, batch auto's trial steps
        "compile_s": start.get("compile_s"),
        "step_mode": start.get("step_mode"),
        "batch_size": (start.get("config") or {}).get("train", {}).get("batch_size"),
        "epochs": len(epochs),
        "steps_per_s": round(start["steps_per_epoch"] / epochs[-1]["epoch_s"], 2) if epochs else None,
        "peak_mem_gib_first_epoch": peaks[0] if peaks else None,
        "peak_mem_gib": max(peaks[1:] or peaks or [0.0]),
        # What the allocator held (a graphed step's pool and the held-out pass's among it): what the card
        # must have, and what Validate's estimate (beside it) predicts.
        "peak_reserved_gib_first_epoch": held[0] if held else None,
        "peak_reserved_gib": max(held[1:] or held or [0.0]),
        "estimate_gib": estimate_gib(logs, start, cap),
        "exports": [e["which"] for e in events if e["kind"] == "export"],
        "log_tail": [line for line in result.stdout.splitlines() if not line.startswith("@@rvc ")][-8:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caps", type=float, nargs="+", default=[6, 8, 12, 16, 24])
    parser.add_argument("--precisions", nargs="+", default=["bf16-tail", "fp16"])
    parser.add_argument("--step-modes", nargs="+", default=["graph"])
    parser.add_argument("--sets", nargs="+", default=["uniform", "variable"], choices=["uniform", "variable"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--clips", type=int, default=None, help="fewer training clips (a smoke test)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    result: dict[str, object] = {
        **header("memory_caps"),
        "settings": f"defaults (batch auto) but precision and step mode; save and validation every epoch; "
        f"{args.epochs} epochs; RVC_GPU_MEMORY_GIB = the cap",
        "runs": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"memory_caps-{result['machine']}{'-' + args.tag if args.tag else ''}.json"
    with tempfile.TemporaryDirectory() as scratch:
        assets = Path(scratch) / "assets"  # one compile cache for all runs: compiled runs after the first are warm
        for kind in args.sets:
            logs = Path(scratch) / kind
            make_set(logs, kind, args.clips)
            for precision in args.precisions:
                for step_mode in args.step_modes:
                    configure(logs, args.epochs, precision, step_mode)
                    for cap in args.caps:
                        run = {"set": kind, "precision": precision, **run_once(logs, assets, cap)}
                        result["runs"].append(run)  # type: ignore[attr-defined]
                        print(json.dumps({k: v for k, v in run.items() if k != "log_tail"}), flush=True)
                        out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""What a user waits for: from ``python -m rvc train`` to a finished model, with where the time went.

Run: ``python benchmarks/time_to_model.py [--epochs 200] [--runs cold warm] [--warm-epochs N] [--step-mode auto]``.

The 10-minute benchmark set (200 clips of 3 s at 40 kHz, 10 held-out clips, random 768-d content
features, harmonic f0; train_throughput.py's), the full v2 40k model from scratch, every training
setting at its default but ``--epochs`` (200, the default, unless given) and the batch size (8, not
"auto": the figure is defined at batch 8). Each run is the real CLI
in its own process with its own assets folder, so its compile cache starts empty; ``warm`` runs
again on the cache the run before it filled. Measured from the process start to the ``done`` event,
with ``NAME.pth`` and ``NAME_best.pth`` written. The phases come from the progress events:

- ``start_s``: process start, data, models and preparing the first step (``compile_s`` of it);
- ``train_s``: the epochs' training steps (the sum of ``epoch_s``);
- ``validation_s``, ``sample_s``, ``save_s``: what each cost the training thread;
- ``end_s``: from the last epoch event to ``done`` (exports, the last writes);
- ``other_s``: the rest of the wall time (step reports, epoch boundaries).

Steady speed: the median epoch of the last quarter. Results go to
``benchmarks/results/time_to_model-<machine>[-<tag>].json``, written after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import header  # noqa: E402
from benchmarks.train_throughput import make_dataset  # noqa: E402


def configure(logs: Path, epochs: int, step_mode: str) -> None:
    from rvc.experiment import Experiment
    from rvc.experiment.config_file import load_config, save_config

    experiment = Experiment(logs, "bench")
    config = load_config(experiment)
    config.train.epochs = epochs
    config.train.step_mode = step_mode
    config.train.batch_size = 8  # the figure is defined at batch 8, whatever "auto" would pick on this card
    save_config(experiment, config)


def clear_run(logs: Path) -> None:
    import shutil

    root = logs / "bench"
    for name in ("checkpoints", "tensorboard", "progress.jsonl", "bench.pth", "bench_best.pth"):
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _steady_peak(epochs: list[dict[str, Any]], steady: int, key: str) -> float | None:
    """The largest ``key`` of the last ``steady`` epochs (None: none steady)."""
    return max((e.get(key) or 0.0) for e in epochs[-steady:]) if steady else None


def run_once(logs: Path, assets: Path, label: str, log_file: Path) -> dict[str, object]:
    from rvc.train.progress import read_events

    clear_run(logs)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    for variable in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        env.pop(variable, None)  # the trainer keeps its cache under --assets-dir: this run's own
    command = [sys.executable, "-m", "rvc", "--logs-dir", str(logs), "--assets-dir", str(assets)]
    started_at = time.time()
    train = [*command, "train", "--experiment", "bench"]
    result = subprocess.run(train, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.time() - started_at
    log_file.write_text(result.stdout)  # the whole log, also when the run fails before its first event
    log = [line for line in result.stdout.splitlines() if not line.startswith("@@rvc ")]
    events = [e.to_json() for e in read_events(logs / "bench" / "progress.jsonl")[0]]
    by_kind: dict[str, list[dict]] = {}
    for event in events:
        by_kind.setdefault(event["kind"], []).append(event)
    done = by_kind.get("done", [{}])[-1]
    start = by_kind["start"][0]
    epochs = by_kind.get("epoch", [])
    first_step = by_kind["step"][0]
    total = lambda name: round(sum(e.get(name, 0.0) for e in epochs), 2)  # noqa: E731
    steady = [e["epoch_s"] for e in epochs[-max(1, len(epochs) // 4) :]]
    steps_per_epoch = start["steps_per_epoch"]
    phases = {
        "start_s": round(start["time"] - started_at, 2),
        "compile_s": start.get("compile_s"),
        "train_s": total("epoch_s"),
        "validation_s": total("validation_s"),
        "sample_s": total("sample_s"),
        "save_s": total("save_s"),
        "end_s": round(done["time"] - epochs[-1]["time"], 2) if done and epochs else None,
    }
    to_done = round(done["time"] - started_at, 2) if done else None
    accounted = sum(v for v in phases.values() if isinstance(v, int | float)) - (phases["compile_s"] or 0)
    root = logs / "bench"
    return {
        "run": label,
        "exit_code": result.returncode,
        "epochs": len(epochs),
        "steps": epochs[-1]["step"] if epochs else 0,
        "process_start_to_done_s": to_done,
        "process_wall_s": round(wall, 2),
        "process_start_to_first_step_s": round(first_step["time"] - started_at, 2),
        "phases": phases,
        "other_s": round(to_done - accounted, 2) if to_done else None,
        "step_mode": start.get("step_mode"),
        "step_mode_reason": start.get("step_mode_reason"),
        "validations": sum(1 for e in epochs if e.get("validation")),
        "checkpoints": len(by_kind.get("checkpoint", [])),
        "checkpoint_write_s": [e.get("write_s") for e in by_kind.get("checkpoint", [])][-3:],
        "steady_epoch_s": round(statistics.median(steady), 3) if steady else None,
        "steps_per_s": round(steps_per_epoch / statistics.median(steady), 2) if steady else None,
        "batch_size": start["config"]["train"]["batch_size"],
        "peak_mem_gib": _steady_peak(epochs, len(steady), "peak_mem_gib"),
        "peak_mem_gib_any_epoch": max((e.get("peak_mem_gib") or 0.0) for e in epochs) if epochs else None,
        "peak_reserved_gib": _steady_peak(epochs, len(steady), "peak_reserved_gib"),
        "val_mel_final": epochs[-1].get("validation", {}).get("loss/val/mel") if epochs else None,
        "best_epoch": done.get("overtrain", {}).get("best_epoch") if isinstance(done.get("overtrain"), dict) else None,
        "exports": {e["which"]: Path(e["path"]).is_file() for e in by_kind.get("export", [])},
        "models_written": (root / "bench.pth").is_file() and (root / "bench_best.pth").is_file(),
        "log_tail": log[-25:],  # the trainer's own lines: how the step runs and why
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--runs", nargs="+", default=["cold", "warm"], help="cold: an empty compile cache; warm: reuse")
    parser.add_argument(
        "--warm-epochs",
        type=int,
        default=None,
        help="epochs of the warm run (default --epochs): a short one measures Start -> first step on a warm cache",
    )
    parser.add_argument("--step-mode", default="auto", help="the trainer's --step-mode (auto is the default)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    result: dict[str, object] = {
        **header("time_to_model"),
        "data": "200 clips x 3 s at 40 kHz (10 min) + 10 held out, random 768-d features; v2 40k from scratch",
        "settings": f"defaults (batch 8, save every 10, validation auto, precision auto), epochs {args.epochs}, "
        f"step mode {args.step_mode}",
        "reference": {"applio_h200_200_epochs_s": 1670, "issue_13_baseline_h200_s": 600},
        "runs": [],
    }
    tag = f"-{args.tag}" if args.tag else ""
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        logs, assets = Path(scratch) / "logs", Path(scratch) / "assets"
        make_dataset(logs)
        for label in args.runs:
            epochs = args.warm_epochs if label == "warm" and args.warm_epochs else args.epochs
            configure(logs, epochs, args.step_mode)
            run = run_once(logs, assets, label, args.out / f"time_to_model-{result['machine']}{tag}-{label}.log")
            result["runs"].append(run)  # type: ignore[attr-defined]
            print(json.dumps(run), flush=True)
            out = args.out / f"time_to_model-{result['machine']}{tag}.json"
            out.write_text(json.dumps(result, indent=2) + "\n")  # after each run: a call cut short keeps it
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

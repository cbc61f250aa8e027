"""Hours of many voices, as a pretrain maker trains: the streamed training set against the resident one.

Run on the device: ``python benchmarks/pretrain_data.py [--hours 2] [--speakers 20] [--epochs 3]
[--batch-size 16] [--placements gpu stream]`` (about 6 minutes on an H100 machine: 2 hours of audio
synthesised, prepared and extracted on its 16 cores and GPU, then two short trainings). CPU smoke test
of the whole script: ``python benchmarks/pretrain_data.py --hours 0.02 --speakers 2 --tiny-model
--device cpu --f0 pm --epochs 1 --batch-size 8 --out /tmp/pretrain-smoke`` (a few minutes on 2 cores: 3 s clips
on a CPU are slow even for the tiny model; not part of the test suite).

Phases, each the real CLI in its own process, and the result file written after each one
(``benchmarks/results/pretrain_data-<machine>[-<tag>].json``), so a call cut short keeps what it had:

1. ``synth``: ``--hours`` of synthetic speech-like audio (harmonic tones with moving pitch, noise and
   pauses; each speaker its own pitch range and brightness), 44.1 kHz 16-bit, in one folder per
   speaker, generated here (nothing is carried to the machine);
2. ``prepare --speakers-from folders`` and ``extract`` (random-weight RMVPE pitch, or ``--f0 pm``;
   a ContentVec-sized random HubertModel, or a tiny one with ``--tiny-model``: weights cannot be
   downloaded on the device, and their values do not change the cost);
3. ``train`` once per ``--placements`` (``gpu``: the whole set on the GPU; ``stream``: the set in
   host memory, a batch at a time), the full v2 40k model from scratch (``--tiny-model``: the tests'
   tiny one), every run with the same seed, data order and settings.

Per run: steps/s (median epoch after the first, warm-up and cuDNN tuning excluded), each epoch's
peak GPU memory (``torch.cuda.max_memory_allocated`` reset per epoch: flat over the run when
nothing grows), NVML's used memory at each step report, the trainer's peak host memory (VmHWM),
its start and compile time, the held-out mel after the last epoch (the same in both placements:
the same batches) and the ratio of the streamed run's steps/s to the resident one's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import header  # noqa: E402
from tests.synth import harmonic_tone, silence  # noqa: E402

SOURCE_RATE = 44100
EXPERIMENT = "pretrain"
PLACEMENT_NAMES = {"gpu": "resident", "stream": "stream"}


# ----------------------------------------------------------------------------- 1. synthetic speakers


def speaker_recording(speaker: int, index: int, seconds: float, sample_rate: int = SOURCE_RATE) -> np.ndarray:
    """Return ``seconds`` of phrases (1.5-5 s) and pauses in speaker ``speaker``'s pitch range (float32 mono)."""
    rng = np.random.default_rng(speaker * 100_003 + index)
    base = 85.0 * 2.0 ** ((speaker * 7 % 19) / 12)  # 85 Hz up to about 2.5 octaves higher, speakers spread out
    harmonics = 6 + speaker % 9  # brightness: another timbre per speaker
    parts = [silence(0.3, sample_rate, seed=index)]
    total = len(parts[0])
    while total < seconds * sample_rate:
        length = float(rng.uniform(1.5, 5.0))
        start = base * float(rng.uniform(0.85, 1.2))
        end = start * float(rng.uniform(0.75, 1.3))
        seed = int(rng.integers(1 << 30))
        parts.append(
            harmonic_tone(length, sample_rate, start, end, 5.0, 30.0, n_harmonics=harmonics, amplitude=0.4, seed=seed)
        )
        parts.append(silence(float(rng.uniform(0.25, 0.8)), sample_rate, seed=seed + 1))
        total += len(parts[-2]) + len(parts[-1])
    return np.concatenate(parts)[: round(seconds * sample_rate)]


def _write_recording(job: tuple[Path, int, int, float]) -> float:
    path, speaker, index, seconds = job
    audio = speaker_recording(speaker, index, seconds)
    sf.write(path, audio, SOURCE_RATE, subtype="PCM_16")
    return len(audio) / SOURCE_RATE


def write_speakers(folder: Path, hours: float, speakers: int, file_seconds: float = 60.0) -> dict[str, Any]:
    """Write ``hours`` of audio in ``speakers`` folders (files of at most ``file_seconds``), across all cores."""
    total = hours * 3600
    files_each = max(1, math.ceil(total / (speakers * file_seconds)))
    seconds = total / (speakers * files_each)
    jobs = []
    for speaker in range(speakers):
        (folder / f"speaker{speaker:03d}").mkdir(parents=True, exist_ok=True)
        for index in range(files_each):
            jobs.append((folder / f"speaker{speaker:03d}" / f"take{index:04d}.wav", speaker, index, seconds))
    with ProcessPoolExecutor() as pool:
        written = sum(pool.map(_write_recording, jobs, chunksize=4))
    return {"speakers": speakers, "files": len(jobs), "file_seconds": round(seconds, 1), "audio_s": round(written, 1)}


# ----------------------------------------------------------------------------- 2. prepare and extract


def write_weights(assets: Path, tiny: bool, f0: str) -> Path:
    """Write random RMVPE weights (for ``--f0 rmvpe``) and a content encoder in Hugging Face format with random
    weights, ContentVec's size or the tests' tiny one; return the encoder's folder."""
    if f0 == "rmvpe":
        import torch

        from rvc.experiment import AssetDir
        from rvc.f0.rmvpe_net import RmvpeNet

        target = AssetDir(assets).rmvpe_weights
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(RmvpeNet().state_dict(), target)
    folder = assets / "embedders" / ("tiny-hubert" if tiny else "contentvec-random")
    if tiny:
        from tests.fake_experiment import save_tiny_hubert

        return save_tiny_hubert(folder, layers=1)
    from transformers import HubertConfig, HubertModel

    HubertModel(HubertConfig()).save_pretrained(folder)  # 768-d, 12 layers: ContentVec's shape
    return folder


def rvc(folders: list[str], *args: str) -> float:
    """Run ``python -m rvc <args>``; return its wall time."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    env["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rvc", *folders, *args], check=True, env=env, cwd=REPO)
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- 3. training runs


class HostPeak:
    """The peak resident memory (VmHWM) of a process, read until it exits."""

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.gib: float | None = None
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            try:
                text = self.path.read_text()
            except OSError:  # gone (or no /proc): the last reading stands
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.gib = round(int(line.split()[1]) / 2**20, 2)
            time.sleep(0.5)

    def join(self) -> float | None:
        self._thread.join(timeout=2)
        return self.gib


def clear_run(logs: Path) -> None:
    import shutil

    from rvc.experiment import Experiment

    experiment = Experiment(logs, EXPERIMENT)
    for folder in (experiment.checkpoints.folder, experiment.tensorboard_dir):
        shutil.rmtree(folder, ignore_errors=True)
    experiment.progress_jsonl.unlink(missing_ok=True)


def train(logs: Path, folders: list[str], placement: str, device: str, log_file: Path) -> dict[str, Any]:
    """Train once with ``placement``; return what its progress events and the process tell."""
    from rvc.experiment import Experiment
    from rvc.train.progress import read_events

    clear_run(logs)
    rvc(folders, "config", "--experiment", EXPERIMENT, "--data-placement", placement)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    command = [sys.executable, "-m", "rvc", *folders, "train", "--experiment", EXPERIMENT, "--device", device]
    started_at = time.time()
    with log_file.open("w") as log:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        host = HostPeak(process.pid)
        code = process.wait()
    events = [e.to_json() for e in read_events(Experiment(logs, EXPERIMENT).progress_jsonl)[0]]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_kind.setdefault(event["kind"], []).append(event)
    start, epochs = by_kind.get("start", [{}])[0], by_kind.get("epoch", [])
    steady = [e["epoch_s"] for e in epochs[1:]] or [e["epoch_s"] for e in epochs]
    steps = start.get("steps_per_epoch", 0)
    return {
        "placement": PLACEMENT_NAMES.get(placement, placement),
        "exit_code": code,
        "data_placement": start.get("data_placement"),  # what the trainer says it did
        "clips": start.get("clips"),
        "dataset_s": start.get("dataset_seconds"),
        "steps_per_epoch": steps,
        "step_mode": start.get("step_mode"),
        "precision": start.get("precision"),
        "compile_s": start.get("compile_s"),
        "process_start_to_first_step_s": (
            round(by_kind["step"][0]["time"] - started_at, 1) if by_kind.get("step") else None
        ),
        "epoch_s": [round(e["epoch_s"], 3) for e in epochs],
        "steps_per_s": round(steps / statistics.median(steady), 2) if steady else None,
        "peak_mem_gib_per_epoch": [e.get("peak_mem_gib") for e in epochs],
        "nvml_used_gib_at_steps": [
            [e["step"], round(e["gpu"]["gpu/memory_used_gib"], 2)]
            for e in by_kind.get("step", [])
            if "gpu/memory_used_gib" in e.get("gpu", {})
        ],
        "host_peak_gib": host.join(),
        "val_mel_final": epochs[-1].get("validation", {}).get("loss/val/mel") if epochs else None,
        "error": by_kind["error"][-1].get("message") if by_kind.get("error") else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=2.0, help="synthetic audio to generate (at least 2 measures)")
    parser.add_argument("--speakers", type=int, default=20, help="speaker folders (at most 109)")
    parser.add_argument("--epochs", type=int, default=3, help="per placement; steps/s is the median after the first")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--placements", nargs="+", default=["gpu", "stream"], choices=("gpu", "stream", "auto"))
    parser.add_argument(
        "--step-mode", default=None, help="eager, graph or compiled; default: graph (no compile time), eager on a CPU"
    )
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--f0", default="rmvpe", help="extract's pitch method (rmvpe: random weights, on the GPU)")
    parser.add_argument("--device", default="auto", help="auto, cuda or cpu")
    parser.add_argument("--tiny-model", action="store_true", help="the tests' tiny model and embedder (CPU smoke)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    args.step_mode = args.step_mode or ("eager" if args.device == "cpu" else "graph")
    from rvc.experiment import Experiment

    result: dict[str, Any] = {
        **header("pretrain_data"),
        "settings": {
            "hours": args.hours,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "step_mode": args.step_mode,
            "precision": args.precision,
            "f0": args.f0,
            "model": "tiny (tests)" if args.tiny_model else "v2 40k, from scratch",
            "embedder": "tiny random HubertModel" if args.tiny_model else "ContentVec-sized random HubertModel",
        },
        "phases_s": {},
        "runs": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    tag = f"-{args.tag}" if args.tag else ""
    out = args.out / f"pretrain_data-{result['machine']}{tag}.json"

    def save(phase: str, seconds: float | None = None) -> None:
        if seconds is not None:
            result["phases_s"][phase] = round(seconds, 1)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"== {phase} done ({out})", flush=True)

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        logs, assets = scratch / "logs", scratch / "assets"
        folders = ["--logs-dir", str(logs), "--assets-dir", str(assets)]
        started = time.perf_counter()
        result["data"] = write_speakers(scratch / "voices", args.hours, args.speakers)
        save("synth", time.perf_counter() - started)

        voices = str(scratch / "voices")
        prepare_s = rvc(folders, "prepare", "--experiment", EXPERIMENT, "--input", voices, "--speakers-from", "folders")
        dataset = json.loads(Experiment(logs, EXPERIMENT).dataset_report.read_text())
        result["data"] |= {
            "clips": dataset["clip_count"],
            "train_clips": dataset["train_clip_count"],
            "validation_clips": dataset["validation_clip_count"],
            "prepared_s": dataset["total_seconds"],
            "speakers_in_report": len(dataset["speakers"]),
        }
        save("prepare", prepare_s)

        embedder = write_weights(assets, args.tiny_model, args.f0)
        extract = ["extract", "--experiment", EXPERIMENT, "--f0", args.f0, "--embedder", str(embedder)]
        save("extract", rvc(folders, *extract, "--device", args.device))

        config = ["config", "--experiment", EXPERIMENT, "--epochs", str(args.epochs), "--batch-size"]
        config += [str(args.batch_size), "--save-every", "100000", "--validate-every", str(args.epochs)]
        config += ["--step-mode", args.step_mode, "--precision", args.precision, "--resume", "false"]
        rvc(folders, *config, *(["--tiny-model"] if args.tiny_model else []))
        for placement in args.placements:
            log_file = args.out / f"pretrain_data-{result['machine']}{tag}-{placement}.log"
            started = time.perf_counter()
            run = train(logs, folders, placement, args.device, log_file)
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
            rates = {r["placement"]: r["steps_per_s"] for r in result["runs"]}
            if rates.get("stream") and rates.get("resident"):
                result["stream_over_resident_steps_per_s"] = round(rates["stream"] / rates["resident"], 3)
            save(f"train-{placement}", time.perf_counter() - started)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""How good is a trained voice? Held-out losses per speed setting, and reconstruction metrics.

No HuBERT/ContentVec or RVC pretrain can be downloaded where this was written, so every
measure here holds with any content encoder (a ContentVec-sized HubertModel with random
weights) and runs offline:

* held-out validation mel L1 after a fixed number of steps, and at equal wall time, for the
  trainer at each precision and step mode (``--settings``): a speed-up must not buy its
  speed with quality;
* for held-out clips of the target speaker, reconstruction through each trained model (the
  real conversion pipeline: its own content features and f0, no index): speaker similarity
  to the target voice (resemblyzer, against the mean embedding of training clips), DNSMOS
  (speechmos) and the f0 error in cents of the output against the input;
* the same numbers for an untrained model (the floor) and for the input itself (the ceiling).

Speech is synthesised offline with Debian's flite voices (``synth``: slt is the target, rms
and awb are other speakers whose similarity shows what "a different voice" scores).

Run:
    python benchmarks/quality.py synth --out .bench-data          # needs `apt install flite`
    python benchmarks/quality.py run --data .bench-data [--steps 400] [--settings eager:fp32 graph:bf16]

The evaluators are in requirements-bench.txt (not the app's requirements). Results go to
``benchmarks/results/quality-<machine>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.prepare_extract import write_random_weights  # noqa: E402
from benchmarks.record import header  # noqa: E402

TARGET_VOICE = "slt"
OTHER_VOICES = ("rms", "awb")
TEXT_SOURCES = ("/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0")


# --- speech ------------------------------------------------------------------
def sentences(limit: int) -> list[str]:
    """Plain English sentences of 6-30 words from the licence texts every Debian system has."""
    import re

    text = " ".join(Path(p).read_text(encoding="utf-8", errors="ignore") for p in TEXT_SOURCES if Path(p).exists())
    found = []
    for sentence in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)):
        words = re.sub(r"[^A-Za-z ,']", " ", sentence).split()
        if 6 <= len(words) <= 30:
            found.append(" ".join(words) + ".")
        if len(found) >= limit:
            break
    if len(found) < limit:
        raise SystemExit(f"found only {len(found)} sentences in {TEXT_SOURCES}")
    return found


def synth(out: Path, target_sentences: int, other_sentences: int) -> None:
    """Write ``target/<voice>_NNN.wav`` and ``others/<voice>_NNN.wav`` (16 kHz mono) with flite."""
    if shutil.which("flite") is None:
        raise SystemExit("flite is not installed: apt install flite")
    lines = sentences(target_sentences + other_sentences * len(OTHER_VOICES))
    jobs = [("target", TARGET_VOICE, i, lines[i]) for i in range(target_sentences)]
    for v, voice in enumerate(OTHER_VOICES):
        first = target_sentences + v * other_sentences
        jobs += [("others", voice, i, lines[first + i]) for i in range(other_sentences)]
    for folder, voice, i, line in jobs:
        path = out / folder / f"{voice}_{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["flite", "-voice", voice, "-t", line, "-o", str(path)], check=True)
    print(f"wrote {len(jobs)} clips under {out}")


# --- training ----------------------------------------------------------------
def rvc(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "rvc", *args], check=True, env=env, text=True, **kwargs)


def train_setting(common: list[str], name: str, mode: str, precision: str, seed: int, args: argparse.Namespace) -> dict:
    """Train a copy of the extracted experiment with one setting; return its curve and timings."""
    from rvc.experiment import Experiment
    from rvc.train.progress import read_events

    logs = Path(common[1])
    shutil.copytree(logs / "base", logs / name, ignore=shutil.ignore_patterns("checkpoints", "progress.jsonl"))
    epochs = math.ceil(args.steps / args.steps_per_epoch)
    settings = ["--epochs", str(epochs), "--batch-size", str(args.batch_size), "--save-every", str(epochs)]
    settings += ["--precision", precision, "--step-mode", mode, "--seed", str(seed)]
    settings += ["--validate-every", str(args.validate_every)]
    rvc([*common, "config", "--experiment", name, *settings])
    started = time.time()
    rvc([*common, "train", "--experiment", name], stdout=subprocess.DEVNULL)
    events = [e.to_json() for e in read_events(Experiment(logs, name).progress_jsonl)[0]]
    start = next(e for e in events if e["kind"] == "start")
    epochs_seen = [e for e in events if e["kind"] == "epoch"]
    # Training time counts from the start event (which comes once the step is compiled and
    # captured) and includes the held-out validations, which every setting runs alike.
    t0 = start["time"]
    curve = [
        {"step": e["step"], "train_s": round(e["time"] - t0, 2), "val_mel": round(e["validation"]["loss/val/mel"], 4)}
        for e in epochs_seen
        if e.get("validation")
    ]
    exported = next(e["path"] for e in reversed(events) if e["kind"] == "export" and e["which"] == "latest")
    return {
        "setting": name,
        "step_mode": start["step_mode"],
        "precision": start["precision"],
        "compile_s": start["compile_s"],
        "process_s": round(time.time() - started, 1),
        "steps": curve[-1]["step"],
        "train_s": curve[-1]["train_s"],
        "val_mel_after_steps": curve[-1]["val_mel"],
        "curve": curve,
        "model": exported,
    }


def seed_spread(runs: list[dict]) -> dict[str, dict]:
    """Per setting: the held-out mel after the fixed steps of each seed, their mean and range."""
    by_setting: dict[str, list[float]] = {}
    for run in runs:
        by_setting.setdefault(f"{run['step_mode']}:{run['precision']}", []).append(run["val_mel_after_steps"])
    return {
        setting: {
            "val_mel": values,
            "mean": round(sum(values) / len(values), 4),
            "range": round(max(values) - min(values), 4),
        }
        for setting, values in by_setting.items()
    }


def at_wall_time(curve: list[dict], seconds: float) -> float:
    """The held-out mel of the last validation done within ``seconds`` of training."""
    done = [point["val_mel"] for point in curve if point["train_s"] <= seconds]
    return done[-1] if done else float("nan")


def export_untrained(experiment: Any, out: Path, seed: int) -> Path:
    """An untrained generator of the experiment's shape in the exported format: the floor."""
    import torch

    from rvc.experiment.config_file import load_config
    from rvc.export import export_model
    from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid

    config = load_config(experiment)
    torch.manual_seed(seed)
    generator = SynthesizerTrnMs768NSFsid(config.model)
    metadata = {"name": "untrained", "embedder": "contentvec"}
    return export_model(generator.state_dict(), config.model, out, epoch=0, step=0, metadata=metadata)


# --- evaluation --------------------------------------------------------------
class Evaluator:
    """Speaker similarity (resemblyzer), DNSMOS (speechmos) and f0 error, all at 16 kHz."""

    def __init__(self, reference_clips: list[np.ndarray]) -> None:
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder("cpu", verbose=False)
        embeddings = np.stack([self._embed(clip) for clip in reference_clips])
        mean = embeddings.mean(axis=0)
        self.reference = mean / np.linalg.norm(mean)

    def _embed(self, audio: np.ndarray) -> np.ndarray:
        from resemblyzer import preprocess_wav

        return np.asarray(self.encoder.embed_utterance(preprocess_wav(audio, source_sr=16000)))

    def similarity(self, audio: np.ndarray) -> float:
        return float(np.dot(self._embed(audio), self.reference))

    @staticmethod
    def dnsmos(audio: np.ndarray) -> dict[str, float]:
        from speechmos import dnsmos

        scores = dnsmos.run(np.clip(audio, -1, 1).astype(np.float32), sr=16000)
        return {k: float(scores[k]) for k in ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")}

    @staticmethod
    def f0_cents_error(reference: np.ndarray, output: np.ndarray) -> tuple[float, float]:
        """Median |cents| over frames voiced in both, and the share of frames whose voicing differs.

        Praat's autocorrelation pitch (our "pm" estimator), 100 frames/s, 60-600 Hz.
        """
        from rvc.f0.pm import PmEstimator

        estimator = PmEstimator(60.0, 600.0)
        a, b = estimator.estimate(reference), estimator.estimate(output)
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        both = (a > 0) & (b > 0)
        cents = np.abs(1200 * np.log2(b[both] / a[both])) if both.any() else np.array([np.nan])
        return float(np.median(cents)), float(np.mean((a > 0) != (b > 0)))


def evaluate(model: Path, clips: list[np.ndarray], assets: Any, evaluator: Evaluator, f0_method: str) -> dict:
    """Convert each held-out clip through ``model``; average the metrics over the clips."""
    from rvc.audio import resample
    from rvc.infer.pipeline import ConvertOptions, VoiceConverter

    converter = VoiceConverter.load(model, assets, embedder="contentvec", allow_download=False)
    options = ConvertOptions(f0_method=f0_method, index_rate=0.0, protect=0.5, rms_mix=1.0, seed=0)
    rows = []
    for audio16 in clips:
        result = converter.convert(audio16, 16000, options)
        out16 = resample(result.audio, result.sample_rate, 16000)
        rows.append(measure(audio16, out16, evaluator))
    return average(rows)


def measure(reference: np.ndarray, audio: np.ndarray, evaluator: Evaluator) -> dict[str, float]:
    cents, voicing = evaluator.f0_cents_error(reference, audio)
    return {
        "speaker_similarity": evaluator.similarity(audio),
        **evaluator.dnsmos(audio),
        "f0_median_abs_cents": cents,
        "voicing_mismatch": voicing,
    }


def average(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.nanmean([r[k] for r in rows])), 4) for k in rows[0]}


def run(args: argparse.Namespace) -> None:
    import soundfile as sf
    import torch

    from rvc.experiment import AssetDir, Experiment
    from rvc.experiment.dataset import read_clip_list

    args.out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="rvc-quality-"))
    logs, assets_dir = scratch / "logs", scratch / "assets"
    torch.manual_seed(0)  # the same random content encoder for every call: features comparable across calls
    write_random_weights(assets_dir)
    common = ["--logs-dir", str(logs), "--assets-dir", str(assets_dir)]
    target = sorted((args.data / "target").glob("*.wav"))
    rvc([*common, "prepare", "--experiment", "base", "--input", str(args.data / "target"), "--validation", "0.1"])
    rvc([*common, "extract", "--experiment", "base", "--f0", args.f0, "--embedder", "contentvec"])
    size = ["--tiny-model"] if args.tiny_model else []  # CPU-sized: to study an effect, not to judge a voice
    rvc([*common, "config", "--experiment", "base", "--sample-rate", "40000", *size])
    base = Experiment(logs, "base")
    train_names = read_clip_list(base.train_clips)
    validation_names = read_clip_list(base.validation_clips)
    args.steps_per_epoch = math.ceil(len(train_names) / args.batch_size)

    jobs = []
    for setting in args.settings:
        mode, precision, *own_seed = setting.split(":")
        seeds = [int(own_seed[0])] if own_seed else args.seeds
        for seed in seeds:
            name = f"{mode}-{precision}" + (f"-s{seed}" if len(seeds) > 1 or own_seed else "")
            jobs.append((name, mode, precision, seed))
    runs = []

    def train_job(job: tuple[str, str, str, int]) -> dict:
        name, mode, precision, seed = job
        result = train_setting(common, name, mode, precision, seed, args) | {"seed": seed}
        print(json.dumps({k: v for k, v in result.items() if k != "curve"}), flush=True)
        return result

    # Several runs share the GPU only to save device time: their held-out mel is unaffected,
    # their times are not comparable (train_s and compile_s then count the others' work too).
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        for result in pool.map(train_job, jobs):
            runs.append(result | {"parallel": args.parallel})
            (args.out / "quality-partial.json").write_text(json.dumps(runs, indent=2) + "\n")  # if evaluation dies
    spread = seed_spread(runs)
    if args.train_only:
        result = {
            **header("quality"),
            "settings": {"steps": args.steps, "batch_size": args.batch_size, "seeds": args.seeds, "model": "v2 40k"},
            "training": [{k: v for k, v in r.items() if k != "model"} for r in runs],
            "spread": spread,
        }
        path = args.out / f"quality-train-{result['machine']}{'-' + args.tag if args.tag else ''}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result))
        shutil.rmtree(scratch, ignore_errors=True)
        return
    equal_time = min(r["train_s"] for r in runs)
    for r in runs:
        r["val_mel_at_equal_time"] = at_wall_time(r["curve"], equal_time)

    def read16(name: str) -> np.ndarray:
        audio, _ = sf.read(base.clip_audio_16k(name), dtype="float32")
        return audio

    held_out = [read16(n) for n in validation_names[: args.eval_clips]]
    evaluator = Evaluator([read16(n) for n in train_names[: args.reference_clips]])
    assets = AssetDir(assets_dir)
    untrained = export_untrained(base, scratch / "untrained.pth", args.seeds[0])
    reconstruction = {"input (ceiling)": average([measure(a, a, evaluator) for a in held_out])}
    others = {}
    for voice in OTHER_VOICES:
        clips = sorted((args.data / "others").glob(f"{voice}_*.wav"))
        others[voice] = round(float(np.mean([evaluator.similarity(load16(p)) for p in clips])), 4)
    reconstruction["untrained (floor)"] = evaluate(untrained, held_out, assets, evaluator, args.f0)
    for r in runs:
        reconstruction[r["setting"]] = evaluate(Path(r["model"]), held_out, assets, evaluator, args.f0)
        print(r["setting"], reconstruction[r["setting"]], flush=True)

    result = {
        **header("quality"),
        "data": (
            f"flite voice {TARGET_VOICE}: {len(target)} sentences, {len(train_names)} training and "
            f"{len(validation_names)} held-out clips after prepare (40 kHz); content features from a "
            "ContentVec-sized HubertModel with random weights; f0 by " + args.f0
        ),
        "settings": {"steps": args.steps, "batch_size": args.batch_size, "seeds": args.seeds, "model": "v2 40k"},
        "training": [{k: v for k, v in r.items() if k != "model"} for r in runs],
        "spread": spread,
        "equal_wall_time_s": equal_time,
        "reconstruction": reconstruction,
        "other_speakers_similarity": others,
        "evaluated_clips": len(held_out),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"quality-{result['machine']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)


def load16(path: Path) -> np.ndarray:
    from rvc.audio import load_audio

    return load_audio(path, sample_rate=16000)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("synth", help="synthesise the speech with flite")
    make.add_argument("--out", type=Path, default=REPO / ".bench-data")
    make.add_argument("--target-sentences", type=int, default=100)
    make.add_argument("--other-sentences", type=int, default=4)
    measure_ = commands.add_parser("run", help="train each setting and measure")
    measure_.add_argument("--data", type=Path, default=REPO / ".bench-data")
    measure_.add_argument("--steps", type=int, default=400)
    measure_.add_argument("--batch-size", type=int, default=8)
    measure_.add_argument(
        "--settings",
        nargs="+",
        default=["eager:fp32", "eager:bf16", "graph:fp32", "graph:bf16"],
        help="MODE:PRECISION, or MODE:PRECISION:SEED for one seed of its own",
    )
    measure_.add_argument("--f0", default="pm", help="an f0 method that needs no downloaded weights")
    measure_.add_argument("--seeds", type=int, nargs="+", default=[1234], help="several: run-to-run noise")
    measure_.add_argument("--validate-every", type=int, default=2, help="epochs between held-out losses")
    measure_.add_argument("--tiny-model", action="store_true", help="the test-sized model (runs on a CPU)")
    measure_.add_argument("--train-only", action="store_true", help="held-out mel only: no reconstruction")
    measure_.add_argument("--tag", default="", help="appended to a --train-only result's file name")
    measure_.add_argument(
        "--parallel", type=int, default=1, help="runs at once on one GPU (saves device time; their times then mix)"
    )
    measure_.add_argument("--eval-clips", type=int, default=12)
    measure_.add_argument("--reference-clips", type=int, default=20)
    measure_.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    if args.command == "synth":
        synth(args.out, args.target_sentences, args.other_sentences)
    else:
        run(args)


if __name__ == "__main__":
    main()

"""Time prepare + extract on N minutes of synthetic speech-like audio.

Run: ``python benchmarks/prepare_extract.py [--minutes 10] [--f0 rmvpe] [--device auto]``.

Weights cannot be downloaded on benchmark machines, so the script writes a
random-weight RMVPE (``rmvpe.pt``) and a ContentVec-sized random HubertModel
(768-d, 12 layers) into a scratch assets folder: shapes, not values, set the
cost. Each stage runs as the real CLI in a subprocess (its start-up included,
as a user pays it). Results go to ``benchmarks/results/prepare_extract-<machine>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import header  # noqa: E402
from tests.synth import speech_like  # noqa: E402


def write_sources(folder: Path, minutes: float, sample_rate: int = 44100) -> float:
    """Write 30 s speech-like recordings totalling ``minutes``; return the seconds written."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0.0
    index = 0
    while total < minutes * 60 - 1e-6:
        # phrases of 2-5 s with 0.5 s gaps, about 30 s a file
        rng = np.random.default_rng(index)
        phrases = tuple(float(x) for x in rng.uniform(2.0, 5.0, size=8))
        audio = speech_like(sample_rate, phrases=phrases, gap_seconds=0.5, seed=index)
        sf.write(folder / f"take_{index:03d}.wav", audio, sample_rate, subtype="PCM_16")
        total += len(audio) / sample_rate
        index += 1
    return total


def write_random_weights(assets: Path) -> None:
    """A random RMVPE and a ContentVec-sized random HubertModel, in their real formats."""
    import torch
    from transformers import HubertConfig, HubertModel

    from rvc.f0.rmvpe_net import RmvpeNet

    (assets / "rmvpe").mkdir(parents=True, exist_ok=True)
    torch.save(RmvpeNet().state_dict(), assets / "rmvpe" / "rmvpe.pt")
    HubertModel(HubertConfig()).save_pretrained(assets / "embedders" / "contentvec")


def run_stage(args: list[str]) -> float:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rvc", *args], check=True, env=env, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--f0", default="rmvpe")
    parser.add_argument("--embedder", default="contentvec")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--only", default="all", choices=("all", "f0", "content"), help="extract one part only")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        seconds = write_sources(scratch / "input", args.minutes)
        write_random_weights(scratch / "assets")
        common = ["--logs-dir", str(scratch / "logs"), "--assets-dir", str(scratch / "assets")]
        prepare_s = run_stage([*common, "prepare", "--experiment", "bench", "--input", str(scratch / "input")])
        extract_args = [
            "extract",
            "--experiment",
            "bench",
            "--f0",
            args.f0,
            "--embedder",
            args.embedder,
            "--device",
            args.device,
            "--batch-size",
            str(args.batch_size),
            "--only",
            args.only,
        ]
        extract_s = run_stage([*common, *extract_args])
        features = json.loads((scratch / "logs" / "bench" / "features.json").read_text())
        cached_s = run_stage([*common, *extract_args])
        dataset = json.loads((scratch / "logs" / "bench" / "dataset.json").read_text())

    result = {
        **header("prepare_extract"),
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "data": f"{seconds / 60:.1f} min synthetic speech-like audio, 44.1 kHz 16-bit mono wav, 30 s files",
        "settings": {
            "only": args.only,
            "f0": args.f0,
            "embedder": f"{args.embedder} (random weights, 768-d, 12 layers)",
            "device": features["device"],
            "batch_size": args.batch_size,
        },
        "audio_seconds": round(seconds, 1),
        "clips": dataset["clip_count"],
        "prepare_s": round(prepare_s, 2),
        "extract_s": round(extract_s, 2),
        "extract_cached_s": round(cached_s, 2),
        "extract_stage_s": {k: round(v, 2) for k, v in features["seconds"].items()},
        "total_s": round(prepare_s + extract_s, 2),
        "x_realtime": {
            "prepare": round(seconds / prepare_s, 1),
            "extract": round(seconds / extract_s, 1),
            "f0": round(seconds / features["seconds"].get("f0", float("nan")), 1),
            "content": round(seconds / features["seconds"].get("content", float("nan")), 1),
            "total": round(seconds / (prepare_s + extract_s), 1),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    parts = "" if args.only == "all" else f"-{args.only}-only"
    out = args.out / f"prepare_extract-{result['machine']}-{args.f0}{parts}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

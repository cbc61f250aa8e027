"""The one-click pipeline through the real CLI: recordings in, an exported model and an index out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from rvc.export import read_exported
from tests.fake_experiment import save_tiny_hubert
from tests.synth import speech_like

REPO = Path(__file__).resolve().parents[1]


def test_run_goes_from_recordings_to_an_exported_model(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for i in range(2):
        sf.write(recordings / f"take{i}.wav", speech_like(44100, phrases=(2.0, 1.6), seed=i), 44100)
    embedder = save_tiny_hubert(tmp_path / "embedder", hidden_size=768, layers=1)  # v2 takes 768-d
    env = {
        "PYTHONPATH": str(REPO),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HOME": str(tmp_path),
    }
    command = [
        sys.executable,
        "-m",
        "rvc",
        "--logs-dir",
        str(tmp_path / "logs"),
        "--assets-dir",
        str(tmp_path / "assets"),
        "run",
        "--experiment",
        "voice",
        "--input",
        str(recordings),
        "--f0",
        "pm",
        "--embedder",
        str(embedder),
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--tiny-model",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    root = tmp_path / "logs" / "voice"
    model = read_exported(root / "voice.pth")
    assert model.version == "v2" and model.sample_rate == 40000 and model.f0 == 1
    assert model.metadata["f0_method"] == "pm" and model.metadata["epochs"] == 2
    assert (root / "voice.index").is_file()
    for stage in ("prepare", "extract", "config", "train", "index"):
        assert f"== {stage}" in result.stdout

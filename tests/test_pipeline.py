"""The one-click pipeline through the real CLI: recordings in, an exported model and an index out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf
import torch

from rvc.export import read_exported
from tests.synth import speech_like

REPO = Path(__file__).resolve().parents[1]


def _embedder_768(folder: Path) -> Path:
    """A one-layer random HubertModel with the real 768-d output (what v2 models take)."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    HubertModel(config).eval().save_pretrained(folder)
    return folder


def test_run_goes_from_recordings_to_an_exported_model(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for i in range(2):
        sf.write(recordings / f"take{i}.wav", speech_like(44100, phrases=(2.0, 1.6), seed=i), 44100)
    embedder = _embedder_768(tmp_path / "embedder")
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

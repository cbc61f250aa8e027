"""An experiment as prepare + extract leave it, made directly (fast) for trainer tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

from rvc.config.experiment import DataInfo, ExperimentConfig
from rvc.config.train import TrainConfig
from rvc.experiment import Experiment
from rvc.experiment.config_file import save_config
from rvc.f0 import coarse_f0
from rvc.fileio import atomic_write_json
from rvc.models.config import ModelConfig
from tests.synth import harmonic_tone


def make_extracted_experiment(
    logs_dir: Path,
    name: str = "voice",
    train_clips: int = 6,
    validation_clips: int = 2,
    seconds: float = 0.6,
    sample_rate: int = 40000,
    feature_dim: int = 768,
    seed: int = 0,
) -> Experiment:
    """Write clips (target rate), features, f0 and the clip lists; return the experiment."""
    rng = np.random.default_rng(seed)
    experiment = Experiment(logs_dir, name)
    names = [f"clip-{i:04d}" for i in range(train_clips + validation_clips)]
    clips = []
    for i, clip in enumerate(names):
        f0_hz = 120.0 + 15.0 * i
        audio = harmonic_tone(seconds, sample_rate, f0_hz, f0_hz * 1.1, seed=seed + i)
        path = experiment.clip_audio(clip, sample_rate)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, sample_rate, subtype="FLOAT")
        n16 = round(seconds * 16000)
        frames = n16 // 160 + 1
        f0 = np.geomspace(f0_hz, f0_hz * 1.1, frames).astype(np.float32)
        for folder in (experiment.f0_dir, experiment.f0_coarse_dir, experiment.features_dir):
            folder.mkdir(parents=True, exist_ok=True)
        np.save(experiment.clip_f0(clip), f0)
        np.save(experiment.clip_f0_coarse(clip), coarse_f0(f0))
        content_frames = (n16 - 400) // 320 + 1
        np.save(experiment.clip_features(clip), rng.standard_normal((content_frames, feature_dim)).astype(np.float32))
        split = "train" if i < train_clips else "validation"
        clips.append(
            {"name": clip, "source": "synthetic", "start": 0.0, "end": seconds, "seconds": seconds, "split": split}
        )
    experiment.train_clips.write_text("\n".join(names[:train_clips]) + "\n")
    experiment.validation_clips.write_text("\n".join(names[train_clips:]) + "\n")
    atomic_write_json(
        experiment.dataset_report,
        {
            "version": 1,
            "sample_rate": sample_rate,
            "clips": clips,
            "total_seconds": seconds * len(names),
            "clip_count": len(names),
        },
    )
    return experiment


def tiny_config(sample_rate: int = 40000, **train: object) -> ExperimentConfig:
    """A tiny model (same code, small channels) with a short segment, and the given training settings."""
    model = replace(ModelConfig.tiny(sample_rate), segment_size=ModelConfig.tiny(sample_rate).hop_length * 8)
    defaults = {
        "epochs": 2,
        "batch_size": 2,
        "save_every": 1,
        "validate_every": 1,  # tests count on a validation every epoch; auto depends on timing
        "log_every_steps": 1,
        "precision": "fp32",
    }
    return ExperimentConfig(
        model=model, train=TrainConfig(**(defaults | train)), data=DataInfo(sample_rate=sample_rate)
    )


def write_tiny_config(experiment: Experiment, **train: object) -> ExperimentConfig:
    config = tiny_config(**train)
    save_config(experiment, config)
    return config


def save_tiny_hubert(folder: Path, hidden_size: int = 768, layers: int = 2) -> Path:
    """Save a small random HubertModel in Hugging Face format (HuBERT's real conv strides: 50 frames/s).

    768-d, as v2 trains on (extract refuses other widths); narrow convolutions and feed-forward keep it small.
    """
    import torch
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    HubertModel(config).eval().save_pretrained(folder)
    return folder

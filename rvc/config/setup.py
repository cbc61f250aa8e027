"""Fill a configuration from what the data stages recorded, with defaults that suit the dataset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rvc.config.experiment import DataInfo, ExperimentConfig
from rvc.config.train import TrainConfig
from rvc.experiment import Experiment
from rvc.experiment.dataset import DatasetReport
from rvc.experiment.features import FeaturesReport
from rvc.models.config import ModelConfig


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def data_info(experiment: Experiment, previous: DataInfo | None = None) -> DataInfo:
    """Return what prepare and extract recorded for ``experiment`` (``previous`` where they recorded nothing)."""
    info = dataclasses.replace(previous) if previous else DataInfo()
    dataset = DatasetReport.find(experiment)
    if dataset is not None:
        info.sample_rate = dataset.sample_rate
        info.seconds = dataset.total_seconds
        info.speakers = dataset.speaker_count
    features = FeaturesReport.find(experiment)
    if features is not None:
        info.f0_method = features.f0_method
        info.embedder = features.embedder
    info.train_clips = _count_lines(experiment.train_clips) or info.train_clips
    info.validation_clips = _count_lines(experiment.validation_clips)
    return info


def suggested_batch_size(minutes: float) -> int:
    """RVC guides' rule: up to 8 below half an hour of audio, larger batches for an hour or more."""
    if minutes < 10:
        return 4
    if minutes < 60:
        return 8
    return 16


def default_config(experiment: Experiment) -> ExperimentConfig:
    """Return the v2 preset for the dataset's sample rate and training defaults sized to the data and GPU."""
    from rvc.config.validate import largest_batch
    from rvc.devices import gpu_memory_gib

    info = data_info(experiment)
    batch = suggested_batch_size(info.seconds / 60)
    config = ExperimentConfig(model=ModelConfig.for_sample_rate(info.sample_rate), train=TrainConfig(), data=info)
    memory = gpu_memory_gib()
    if memory is not None:
        batch = max(1, min(batch, largest_batch(config, memory)))
    config.train.batch_size = batch
    return config

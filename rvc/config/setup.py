"""Fill a configuration from what the data stages recorded, with defaults that suit the dataset."""

from __future__ import annotations

import dataclasses

from rvc.config.experiment import DataInfo, ExperimentConfig
from rvc.config.train import TrainConfig
from rvc.experiment import Experiment
from rvc.experiment.dataset import DatasetReport, read_clip_list
from rvc.experiment.features import FeaturesReport
from rvc.models.config import ModelConfig


def data_info(experiment: Experiment, previous: DataInfo | None = None) -> DataInfo:
    """Return what prepare and extract recorded for ``experiment`` (``previous`` where they recorded nothing)."""
    info = dataclasses.replace(previous) if previous else DataInfo()
    dataset = DatasetReport.find(experiment)
    if dataset is not None:
        info.sample_rate = dataset.sample_rate
        info.seconds = dataset.total_seconds
        info.speakers = dataset.speaker_count
        info.longest_clip_seconds = max((c.seconds for c in dataset.clips if c.split == "train"), default=0.0)
    features = FeaturesReport.find(experiment)
    if features is not None:
        info.f0_method = features.f0_method
        info.embedder = features.embedder
    # Read as training reads them: a list that is not UTF-8 or names no clip is refused by name here too,
    # not counted (or a crash) in `config` and refused only when training starts.
    info.train_clips = len(read_clip_list(experiment.train_clips)) or info.train_clips
    info.validation_clips = len(read_clip_list(experiment.validation_clips))
    return info


def default_config(experiment: Experiment) -> ExperimentConfig:
    """Return the v2 preset for the dataset's sample rate and the training defaults.

    The batch size stays "auto": the trainer sizes it to the dataset and to what a measured step
    fits in the GPU it runs on (rvc/train/batch_choice.py), which a guess made here cannot know.
    """
    info = data_info(experiment)
    return ExperimentConfig(model=ModelConfig.for_sample_rate(info.sample_rate), train=TrainConfig(), data=info)

"""The model, training and data settings of one experiment (kept in its folder by ``rvc.experiment.config_file``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rvc.config.train import TrainConfig
from rvc.fileio import sha256_json
from rvc.models.config import ModelConfig

CONFIG_VERSION = 1


@dataclass
class DataInfo:
    """What the prepare and extract stages recorded; training reads it, never changes it."""

    sample_rate: int = 40000
    f0_method: str = "rmvpe"
    embedder: str = "contentvec"
    train_clips: int = 0
    validation_clips: int = 0
    seconds: float = 0.0
    speakers: int = 1  # speaker ids the clips use (0..speakers-1): the model needs as many speaker rows
    # Every training clip is padded to the longest on the GPU, and the encoders see whole clips: the
    # memory estimate grows with it (0: not recorded, an experiment configured before it was).
    longest_clip_seconds: float = 0.0


@dataclass
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataInfo = field(default_factory=DataInfo)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": CONFIG_VERSION,
            "model": self.model.to_dict(),
            "train": dataclasses.asdict(self.train),
            "data": dataclasses.asdict(self.data),
        }

    def training_hash(self) -> str:
        """A hash of what a resumed run must share with the run that saved the state (the model's shape)."""
        return sha256_json(self.model.to_dict())[:16]

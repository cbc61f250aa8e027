"""What a training run writes for people to look at: TensorBoard scalars, mel images and audio
(RVC's tag names), and optionally the same scalars in MLflow. Rank 0 only."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn

from rvc.config.experiment import ExperimentConfig
from rvc.experiment import Experiment
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.train.data import TrainingSet
from rvc.train.mel import Spectrogram


class RunLog:
    """TensorBoard event files under ``<experiment>/tensorboard`` (and MLflow when configured)."""

    def __init__(self, experiment: Experiment, config: ExperimentConfig, log: Callable[[str], None]) -> None:
        self.experiment = experiment
        self.config = config
        self.log = log
        self.tensorboard: Any = None
        self.mlflow: Any = None

    def open(self) -> None:
        if self.config.train.mlflow:
            from rvc.train.mlflow_log import MlflowLogger

            self.mlflow = MlflowLogger(self.experiment.name, self.config.to_dict(), self.log)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is in requirements.txt; a trimmed install still trains
            self.log("tensorboard is not installed: no event files will be written")
            return
        self.tensorboard = SummaryWriter(str(self.experiment.tensorboard_dir))

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.mlflow is not None:
            self.mlflow.metrics(values, step)
        if self.tensorboard is not None:
            for name, value in values.items():
                if math.isfinite(value):
                    self.tensorboard.add_scalar(name, value, step)

    @torch.no_grad()
    def sample(self, model: nn.Module, spectrogram: Spectrogram, data: TrainingSet, step: int, audio: bool) -> None:
        """Convert the first clip of ``data`` and log it (a run without held-out clips; with them, the
        held-out pass has converted it already: ``converted_sample``)."""
        if self.tensorboard is None:
            return
        generator = cast(SynthesizerTrnMs768NSFsid, model)
        device = next(generator.parameters()).device  # the clips may be on the host (a streamed set)
        generator.eval()
        frames = int(data.lengths[0])
        phone, pitch, pitchf = (t[:1, :frames].to(device) for t in (data.phone, data.pitch, data.pitchf))
        lengths, speakers = data.lengths[:1].to(device), data.speakers[:1].to(device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)
            fake, _, _ = generator.infer(phone.float(), lengths, pitch, pitchf, speakers)
        generator.train()
        real = data.wav[:1, : frames * data.hop_length].to(device)
        self.converted_sample(real, fake.squeeze(1), spectrogram, step, audio, data.sample_rate)

    @torch.no_grad()
    def converted_sample(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        spectrogram: Spectrogram,
        step: int,
        audio: bool,
        sample_rate: int,
    ) -> None:
        """Mel images of a clip (real and converted, [1, samples] each) and, when ``audio``, the converted audio."""
        if self.tensorboard is None:
            return
        real_mel = spectrogram.mel(real.to(fake.device).float())[0]
        fake_mel = spectrogram.mel(fake.float())[0]
        low, high = float(real_mel.min()), float(real_mel.max())
        for tag, mel in (("slice/mel_org", real_mel), ("slice/mel_gen", fake_mel)):
            self.tensorboard.add_image(tag, _colour(mel, low, high), step, dataformats="HWC")
        if audio:
            self.tensorboard.add_audio("audio/validation", fake.squeeze().float().clamp(-1, 1).cpu(), step, sample_rate)

    def close(self) -> None:
        if self.mlflow is not None:
            self.mlflow.close()
            self.mlflow = None
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None


def _colour(mel: torch.Tensor, low: float, high: float) -> Any:
    """Render a log-mel (bins x frames) as an RGB image, low frequencies at the bottom."""
    import numpy as np
    from matplotlib import colormaps

    scaled = ((mel.float().cpu().numpy() - low) / max(high - low, 1e-6)).clip(0, 1)[::-1]
    return (colormaps["viridis"](scaled)[..., :3] * 255).astype(np.uint8)

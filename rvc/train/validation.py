"""The held-out loss: how well the generator converts clips it never trained on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from rvc.models.commons import sequence_mask
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.train.data import TrainingSet
from rvc.train.mel import Spectrogram

# With --validate-every 0 (auto), validation may take at most this share of the run's time.
VALIDATION_SHARE = 0.1


@dataclass
class ValidationSchedule:
    """When to validate: every ``every`` epochs, or with ``every`` 0 as often as keeps validation
    under VALIDATION_SHARE of the time (every epoch while epochs are slow next to a validation;
    at a 1-second epoch and a 3-second validation, about every 27 epochs), and at the last epoch.
    """

    every: int
    last_epoch: int
    validation_s: float | None = None  # how long the last validation took
    trained_s: float = 0.0  # training time since then

    def due(self, epoch: int, epoch_s: float) -> bool:
        """Count ``epoch``'s training time; return whether to validate after it."""
        self.trained_s += epoch_s
        if self.every > 0:
            return epoch % self.every == 0
        if self.validation_s is None or epoch == self.last_epoch:
            return True
        return self.trained_s * VALIDATION_SHARE / (1 - VALIDATION_SHARE) >= self.validation_s

    def done(self, seconds: float) -> None:
        self.validation_s, self.trained_s = seconds, 0.0


@torch.no_grad()
def held_out_mel(model: nn.Module, spectrogram: Spectrogram, data: TrainingSet, batch_size: int) -> float:
    """Mel L1 per frame and mel bin through the conversion path (prior -> flow -> decoder), with fixed noise.

    Always in fp32, whatever the training precision: the loss measures the weights, not bf16's
    rounding (which raises the floor of quiet frames' log-mel by far more than any difference
    between two runs), and inference runs in fp32 or fp16. The clips may be on the host (a
    streamed run keeps its held-out clips there too): they move to the model a batch at a time.
    """
    generator = cast(SynthesizerTrnMs768NSFsid, model)
    device = next(generator.parameters()).device
    generator.eval()
    total, frames_total = 0.0, 0
    batch = max(1, batch_size)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        for start in range(0, len(data), batch):
            index = torch.arange(start, min(start + batch, len(data)), device=data.wav.device)
            wav, phone, pitch, pitchf, lengths = (
                t[index].to(device) for t in (data.wav, data.phone, data.pitch, data.pitchf, data.lengths)
            )
            with torch.autocast(device.type, enabled=False):
                audio, _, _ = generator.infer(phone.float(), lengths, pitch, pitchf, torch.zeros_like(lengths))
            real_mel = spectrogram.mel(wav)
            fake_mel = spectrogram.mel(audio.squeeze(1).float())
            mask = sequence_mask(lengths, real_mel.size(-1)).unsqueeze(1)
            diff = (fake_mel - real_mel).abs() * mask
            total += float(diff.sum()) / real_mel.size(1)
            frames_total += int(lengths.sum())
    generator.train()
    return total / max(1, frames_total)

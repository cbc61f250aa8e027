"""The held-out loss: how well the generator converts clips it never trained on."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from rvc.models.commons import sequence_mask
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.train.data import TrainingSet
from rvc.train.mel import Spectrogram


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

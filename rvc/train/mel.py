"""Spectrograms on the device: RVC's linear spectrogram (posterior encoder input) and log-mel (L1 loss)."""

from __future__ import annotations

import torch
from torch import nn

from rvc.models.config import ModelConfig


class Spectrogram(nn.Module):
    """RVC's STFT framing: reflect-pad (n_fft - hop) / 2, no centring, so T samples give T // hop frames.

    Runs in float32 whatever the autocast: the FFT has no bf16 kernels, and the mel loss is
    a sum of small differences.
    """

    window: torch.Tensor
    mel_basis: torch.Tensor

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        import torchaudio

        self.n_fft = cfg.filter_length
        self.hop = cfg.hop_length
        self.win = cfg.win_length
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)
        fbanks = torchaudio.functional.melscale_fbanks(
            cfg.filter_length // 2 + 1,
            f_min=cfg.mel_fmin,
            f_max=cfg.mel_fmax if cfg.mel_fmax is not None else cfg.sample_rate / 2,
            n_mels=cfg.n_mel_channels,
            sample_rate=cfg.sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )  # the same filters as librosa.filters.mel (RVC's), transposed
        self.register_buffer("mel_basis", fbanks.T.contiguous(), persistent=False)

    def linear(self, wav: torch.Tensor) -> torch.Tensor:
        """Return magnitudes. wav : Tensor[B x T] -> Tensor[B x n_fft/2+1 x T//hop]"""
        with torch.autocast(wav.device.type, enabled=False):
            pad = (self.n_fft - self.hop) // 2
            padded = nn.functional.pad(wav.float().unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
            stft = torch.stft(padded, self.n_fft, self.hop, self.win, self.window, center=False, return_complex=True)
            return torch.sqrt(stft.real.square() + stft.imag.square() + 1e-6)

    def mel_from_linear(self, spec: torch.Tensor) -> torch.Tensor:
        """Return log-mel. spec : Tensor[B x F x T] -> Tensor[B x n_mels x T]"""
        with torch.autocast(spec.device.type, enabled=False):
            return torch.log(torch.clamp(torch.matmul(self.mel_basis, spec.float()), min=1e-5))

    def mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Return log-mel. wav : Tensor[B x T] -> Tensor[B x n_mels x T//hop]"""
        return self.mel_from_linear(self.linear(wav))

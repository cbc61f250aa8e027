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

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop: int,
        win: int,
        n_mels: int,
        fmin: float = 0.0,
        fmax: float | None = None,
    ) -> None:
        super().__init__()
        import torchaudio

        self.n_fft, self.hop, self.win = n_fft, hop, win
        self.register_buffer("window", torch.hann_window(win), persistent=False)
        fbanks = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1,
            f_min=fmin,
            f_max=fmax if fmax is not None else sample_rate / 2,
            n_mels=n_mels,
            sample_rate=sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )  # the same filters as librosa.filters.mel (RVC's), transposed
        self.register_buffer("mel_basis", fbanks.T.contiguous(), persistent=False)

    @classmethod
    def for_model(cls, cfg: ModelConfig) -> Spectrogram:
        """The spectrogram RVC trains this model with (its filter length, hop and mel bands)."""
        return cls(
            cfg.sample_rate,
            cfg.filter_length,
            cfg.hop_length,
            cfg.win_length,
            cfg.n_mel_channels,
            cfg.mel_fmin,
            cfg.mel_fmax,
        )

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


class MultiScaleMel(nn.Module):
    """Log-mel L1 at several STFT resolutions: short windows catch timing, long ones pitch detail."""

    SCALES = ((512, 128, 64), (1024, 256, 96), (4096, 1024, 160))  # (n_fft, hop, mel bands)

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.spectrograms = nn.ModuleList(
            Spectrogram(sample_rate, n_fft, hop, n_fft, mels) for n_fft, hop, mels in self.SCALES
        )

    def loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Mean L1 between log-mels of real and fake audio over the scales. real, fake : Tensor[B x T]"""
        total = real.new_zeros((), dtype=torch.float32)
        for spectrogram in self.spectrograms:
            assert isinstance(spectrogram, Spectrogram)
            real_mel, fake_mel = spectrogram.mel(torch.cat([real, fake])).chunk(2)
            total = total + nn.functional.l1_loss(fake_mel, real_mel)
        return total / len(self.spectrograms)

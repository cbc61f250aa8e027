"""The RMVPE pitch network and its log-mel input, written to load the public ``rmvpe.pt``.

RMVPE (Wei et al., 2023) is a deep U-Net over a 128-bin log-mel spectrogram
followed by a bidirectional GRU that gives, per 10 ms frame, the salience of
360 pitch bins of 20 cents. The attribute names below (``unet.encoder.bn``,
``unet.encoder.layers.N.conv.M.conv.K``, ``...shortcut``,
``unet.decoder.layers.N.conv1/conv2``, ``cnn``, ``fc.0.gru``, ``fc.1``) are
those of the checkpoint that the RVC WebUI ships (Hub repo
lj1995/VoiceConversionWebUI), so it loads with ``strict=True``; the test data
file ``tests/data/rmvpe_state_dict.txt`` lists every expected name and shape.

Batches of clips of different lengths give the same result as one clip at a
time: each clip's valid frames are passed in, every time-mixing layer (3x3
convolutions, transposed convolutions, the output convolution) sees zeros
beyond a clip's end, exactly as the zero padding of a lone clip, and the GRU
runs on packed sequences.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

SAMPLE_RATE = 16000
N_FFT = 1024
WIN_LENGTH = 1024
HOP = 160
N_MELS = 128
MEL_FMIN = 30.0
MEL_FMAX = 8000.0
LOG_FLOOR = 1e-5  # mel energies are clamped here before the log
N_BINS = 360
FRAME_MULTIPLE = 32  # the U-Net halves time 5 times

_BN_MOMENTUM = 0.01  # only matters for training; kept as the original


def htk_mel_filterbank(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = MEL_FMIN,
    fmax: float = MEL_FMAX,
) -> np.ndarray:
    """Return triangular mel filters (n_mels, n_fft // 2 + 1), HTK mel scale, Slaney area norm.

    This is ``librosa.filters.mel(..., htk=True)`` (norm "slaney"), the filter
    bank RMVPE was trained with.
    """

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_low, mel_high = hz_to_mel(np.array([fmin, fmax], dtype=np.float64))
    mel_edges = np.linspace(mel_low, mel_high, n_mels + 2)
    edges = mel_to_hz(mel_edges)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_hz - lower) / (centre - lower)
    falling = (upper - fft_hz) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    return weights.astype(np.float32)


def reflect_index(position: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Map integer positions into ``[0, length)`` by mirroring at both ends without repeating the edge.

    Inside one period this is ``torch.nn.functional.pad(mode="reflect")``; it
    keeps mirroring for pads longer than the signal, and a length of 1 maps
    everything to 0. ``position`` and ``length`` broadcast together.
    """
    period = (2 * (length - 1)).clamp_min(1)
    folded = torch.remainder(position, period)
    mirrored = torch.where(folded < length, folded, period - folded)
    return torch.where(length > 1, mirrored, torch.zeros_like(mirrored))


class LogMel(nn.Module):
    """Batched log-mel spectrogram of RMVPE: 16 kHz audio -> (B, 128, T), T = N // 160 + 1.

    Each clip is reflect-padded by ``n_fft // 2`` at both ends on its own (a
    centred STFT), so a clip's frames never see another clip or the batch padding.
    """

    window: torch.Tensor
    mel_basis: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN_LENGTH), persistent=False)
        self.register_buffer("mel_basis", torch.from_numpy(htk_mel_filterbank()), persistent=False)

    def forward(self, audio: torch.Tensor, n_samples: torch.Tensor) -> torch.Tensor:
        """Return log-mel (B, 128, max_frames) of audio (B, S) whose rows hold ``n_samples`` (B,) valid samples."""
        width = audio.shape[1]
        half = N_FFT // 2
        lengths = n_samples.to(audio.device).clamp_min(1).unsqueeze(1)
        position = torch.arange(width + 2 * half, device=audio.device).unsqueeze(0)
        padded = audio.gather(1, reflect_index(position - half, lengths))
        padded = padded.masked_fill(position >= lengths + 2 * half, 0.0)
        spectrum = torch.stft(
            padded, N_FFT, hop_length=HOP, win_length=WIN_LENGTH, window=self.window, center=False, return_complex=True
        )
        mel = torch.matmul(self.mel_basis, spectrum.abs())
        return torch.log(mel.clamp_min(LOG_FLOOR))


def pad_frames(mel: torch.Tensor, frames: torch.Tensor, multiple: int = FRAME_MULTIPLE) -> torch.Tensor:
    """Reflect-pad each clip's log-mel (B, C, T) in time from ``frames[b]`` to the next multiple of ``multiple``.

    Returns (B, C, W) with W the largest padded length; columns past a clip's
    padded length hold a repeat of its frames and are masked by the network.
    """
    padded_frames = (frames + multiple - 1) // multiple * multiple
    width = int(padded_frames.max())
    position = torch.arange(width, device=mel.device).unsqueeze(0)
    index = reflect_index(position, frames.to(mel.device).unsqueeze(1))
    return mel.gather(2, index.unsqueeze(1).expand(-1, mel.shape[1], -1))


def _zero_outside(x: torch.Tensor, outside: torch.Tensor | None) -> torch.Tensor:
    return x if outside is None else x.masked_fill(outside, 0.0)


class ResidualConvBlock(nn.Module):
    """Two 3x3 conv + batch-norm + ReLU layers with a residual path (a 1x1 conv when channels change)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=_BN_MOMENTUM),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=_BN_MOMENTUM),
            nn.ReLU(),
        )
        self.shortcut: nn.Conv2d | None = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor, outside: torch.Tensor | None) -> torch.Tensor:
        """Map (B, C_in, T, F) to (B, C_out, T, F); ``outside`` (B, 1, T, 1) marks frames past each clip."""
        conv_a, norm_a, act_a, conv_b, norm_b, act_b = self.conv
        y = act_a(norm_a(conv_a(_zero_outside(x, outside))))
        y = act_b(norm_b(conv_b(_zero_outside(y, outside))))
        residual = x if self.shortcut is None else self.shortcut(x)
        return y + residual


class ResidualStack(nn.Module):
    """``n_blocks`` residual blocks, the first changing the channel count."""

    def __init__(self, in_channels: int, out_channels: int, n_blocks: int) -> None:
        super().__init__()
        blocks = [ResidualConvBlock(in_channels, out_channels)]
        blocks += [ResidualConvBlock(out_channels, out_channels) for _ in range(n_blocks - 1)]
        self.conv = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, outside: torch.Tensor | None) -> torch.Tensor:
        for block in self.conv:
            x = block(x, outside)
        return x


class Encoder(nn.Module):
    """Input batch norm, then stages of residual blocks each followed by 2x2 average pooling."""

    def __init__(self, n_stages: int, n_blocks: int, base_channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(1, momentum=_BN_MOMENTUM)
        channels = [1] + [base_channels * 2**i for i in range(n_stages)]
        self.layers = nn.ModuleList(ResidualStack(channels[i], channels[i + 1], n_blocks) for i in range(n_stages))

    def forward(self, x: torch.Tensor, outside: list[torch.Tensor | None]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the bottleneck (B, C, T/2^n, F/2^n) and each stage's output before pooling."""
        x = self.bn(x)
        skips = []
        for level, stage in enumerate(self.layers):
            x = stage(x, outside[level])
            skips.append(x)
            x = F.avg_pool2d(x, 2)
        return x, skips


class Intermediate(nn.Module):
    """Residual stacks at the bottleneck resolution, doubling the channels once."""

    def __init__(self, in_channels: int, out_channels: int, n_stacks: int, n_blocks: int) -> None:
        super().__init__()
        stacks = [ResidualStack(in_channels, out_channels, n_blocks)]
        stacks += [ResidualStack(out_channels, out_channels, n_blocks) for _ in range(n_stacks - 1)]
        self.layers = nn.ModuleList(stacks)

    def forward(self, x: torch.Tensor, outside: torch.Tensor | None) -> torch.Tensor:
        for stack in self.layers:
            x = stack(x, outside)
        return x


class DecoderStage(nn.Module):
    """Upsample 2x with a transposed conv, join the encoder's skip, then residual blocks."""

    def __init__(self, in_channels: int, out_channels: int, n_blocks: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=_BN_MOMENTUM),
            nn.ReLU(),
        )
        blocks = [ResidualConvBlock(out_channels * 2, out_channels)]
        blocks += [ResidualConvBlock(out_channels, out_channels) for _ in range(n_blocks - 1)]
        self.conv2 = nn.ModuleList(blocks)

    def forward(
        self,
        x: torch.Tensor,
        skip: torch.Tensor,
        outside_in: torch.Tensor | None,
        outside_out: torch.Tensor | None,
    ) -> torch.Tensor:
        x = self.conv1(_zero_outside(x, outside_in))
        x = torch.cat((x, skip), dim=1)
        for block in self.conv2:
            x = block(x, outside_out)
        return x


class Decoder(nn.Module):
    """Decoder stages halving the channels back to the first encoder stage's."""

    def __init__(self, in_channels: int, n_stages: int, n_blocks: int) -> None:
        super().__init__()
        channels = [in_channels // 2**i for i in range(n_stages + 1)]
        self.layers = nn.ModuleList(DecoderStage(channels[i], channels[i + 1], n_blocks) for i in range(n_stages))

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor], outside: list[torch.Tensor | None]) -> torch.Tensor:
        depth = len(self.layers)
        for i, stage in enumerate(self.layers):
            level = depth - 1 - i
            x = stage(x, skips[level], outside[level + 1], outside[level])
        return x


class DeepUNet(nn.Module):
    """Encoder -> intermediate -> decoder with skip connections, over (B, 1, T, 128)."""

    def __init__(self, n_stages: int, n_inter: int, n_blocks: int, base_channels: int) -> None:
        super().__init__()
        bottleneck = base_channels * 2 ** (n_stages - 1)
        self.encoder = Encoder(n_stages, n_blocks, base_channels)
        self.intermediate = Intermediate(bottleneck, bottleneck * 2, n_inter, n_blocks)
        self.decoder = Decoder(bottleneck * 2, n_stages, n_blocks)

    def forward(self, x: torch.Tensor, outside: list[torch.Tensor | None]) -> torch.Tensor:
        x, skips = self.encoder(x, outside)
        x = self.intermediate(x, outside[-1])
        return self.decoder(x, skips, outside)


class BiGRU(nn.Module):
    """A bidirectional GRU over (B, T, C) (a wrapper so the weights are named ``fc.0.gru.*``)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Return (B, T, 2 * hidden); with ``lengths`` (B,) on the CPU, frames past a clip are ignored."""
        if lengths is None:
            return self.gru(x)[0]
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


class RmvpeNet(nn.Module):
    """RMVPE's E2E model: log-mel (B, 128, T) -> pitch-bin salience (B, T, 360) in 0..1.

    The defaults are the released model's (``E2E(4, 1, (2, 2))`` in RVC): 5
    encoder/decoder stages of 4 residual blocks, 4 intermediate stacks,
    16 base channels, one BiGRU layer of 256 units per direction.
    """

    def __init__(
        self, n_stages: int = 5, n_inter: int = 4, n_blocks: int = 4, base_channels: int = 16, gru_hidden: int = 256
    ) -> None:
        super().__init__()
        self.n_stages = n_stages
        self.unet = DeepUNet(n_stages, n_inter, n_blocks, base_channels)
        self.cnn = nn.Conv2d(base_channels, 3, 3, padding=1)
        self.fc = nn.Sequential(BiGRU(3 * N_MELS, gru_hidden, 1), nn.Linear(2 * gru_hidden, N_BINS))

    def forward(self, mel: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """Return salience (B, T, 360) of log-mel (B, 128, T), T a multiple of 32.

        ``frames`` (B,) CPU int64, each a multiple of 32: the valid frames of each
        clip in a padded batch; ``None`` when every clip fills the batch.
        """
        width = mel.shape[-1]
        if width % FRAME_MULTIPLE:
            raise ValueError(f"RMVPE needs a frame count divisible by {FRAME_MULTIPLE}, got {width}")
        outside = self._outside_masks(frames, width, mel.device)
        x = self.unet(mel.transpose(1, 2).unsqueeze(1), outside)
        x = self.cnn(_zero_outside(x, outside[0]))
        x = x.transpose(1, 2).flatten(2)  # (B, T, 3 * 128)
        x = self.fc[0](x, frames)
        return torch.sigmoid(self.fc[1](x))

    def _outside_masks(
        self, frames: torch.Tensor | None, width: int, device: torch.device
    ) -> list[torch.Tensor | None]:
        """Return per level (full resolution first) a (B, 1, T_level, 1) mask of frames past each clip."""
        if frames is None:
            return [None] * (self.n_stages + 1)
        valid = frames.to(device)
        masks: list[torch.Tensor | None] = []
        for level in range(self.n_stages + 1):
            position = torch.arange(width >> level, device=device)
            masks.append((position.unsqueeze(0) >= (valid >> level).unsqueeze(1))[:, None, :, None])
        return masks

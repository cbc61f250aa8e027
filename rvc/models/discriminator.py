"""RVC v2's discriminator: one scale discriminator and period discriminators for 2..37.

Keys `discriminators.0.*` (scale) and `discriminators.1-8.*` (periods 2, 3, 5, 7, 11, 17, 23, 37)
with `convs.N` and `conv_post`, as RVC's MultiPeriodDiscriminatorV2.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rvc.models.commons import LRELU_SLOPE, Conv1d, get_padding, to_channels_last_1d, weight_norm

PERIODS_V2 = (2, 3, 5, 7, 11, 17, 23, 37)

Scores = list[torch.Tensor]
FeatureMaps = list[list[torch.Tensor]]


def _score(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run a discriminator's stack; return its flattened score and every layer's output (feature maps)."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return torch.flatten(x, 1, -1), fmap


class DiscriminatorS(nn.Module):
    """Scale discriminator over the raw waveform with grouped, strided 1-D convolutions.

    x : Tensor[B x 1 x T] -> (score Tensor[B x N], feature maps)

    ``channels_last`` (the trainer sets it on CUDA) runs the stack on (B, C, 1, T) channels-last
    activations, which cuDNN convolves without a transpose around each layer; the feature maps
    are then 4-D (the losses only compare them element by element).
    """

    channels_last = False

    def __init__(self, divisor: int = 1) -> None:
        super().__init__()
        c = [n // divisor for n in (16, 64, 256, 1024)]
        g = [max(1, n // divisor) for n in (4, 16, 64, 256)]
        self.convs = nn.ModuleList(
            [
                weight_norm(Conv1d(1, c[0], 15, 1, padding=7)),
                weight_norm(Conv1d(c[0], c[1], 41, 4, groups=g[0], padding=20)),
                weight_norm(Conv1d(c[1], c[2], 41, 4, groups=g[1], padding=20)),
                weight_norm(Conv1d(c[2], c[3], 41, 4, groups=g[2], padding=20)),
                weight_norm(Conv1d(c[3], c[3], 41, 4, groups=g[3], padding=20)),
                weight_norm(Conv1d(c[3], c[3], 5, 1, padding=2)),
            ]
        )
        self.conv_post = weight_norm(Conv1d(c[3], 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _score(self.convs, self.conv_post, to_channels_last_1d(x) if self.channels_last else x)


class DiscriminatorP(nn.Module):
    """Period discriminator: fold the waveform into (T/p, p) and convolve along time only.

    x : Tensor[B x 1 x T] -> (score Tensor[B x N], feature maps)
    """

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3, divisor: int = 1) -> None:
        super().__init__()
        self.period = period
        pad = (get_padding(kernel_size, 1), 0)
        channels = [1] + [n // divisor for n in (32, 128, 512, 1024, 1024)]
        self.convs = nn.ModuleList(
            weight_norm(
                nn.Conv2d(
                    channels[i],
                    channels[i + 1],
                    (kernel_size, 1),
                    (stride, 1) if i < 4 else 1,
                    padding=pad,
                )
            )
            for i in range(5)
        )
        self.conv_post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        if t % self.period:
            # Reflect-pad to a whole number of periods (a static-shape decision).
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            t += n_pad
        return _score(self.convs, self.conv_post, x.view(b, c, t // self.period, self.period))


class MultiPeriodDiscriminatorV2(nn.Module):
    """Score real and generated audio with all nine discriminators.

    y, y_hat : Tensor[B x 1 x T]
    returns : (y_d_rs, y_d_gs, fmap_rs, fmap_gs), nine entries each, in discriminator order
    """

    def __init__(self, periods: tuple[int, ...] = PERIODS_V2, divisor: int = 1) -> None:
        """``divisor`` > 1 narrows every layer (tiny test models only; pretrains need 1)."""
        super().__init__()
        discriminators: list[nn.Module] = [DiscriminatorS(divisor)]
        discriminators += [DiscriminatorP(p, divisor=divisor) for p in periods]
        self.discriminators = nn.ModuleList(discriminators)

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> tuple[Scores, Scores, FeatureMaps, FeatureMaps]:
        b = y.size(0)
        # Real and generated go through each discriminator as one batch: half the kernel launches.
        both = torch.cat([y, y_hat.to(y.dtype)], dim=0)
        y_d_rs, y_d_gs, fmap_rs, fmap_gs = [], [], [], []
        for d in self.discriminators:
            score, fmap = d(both)
            y_d_rs.append(score[:b])
            y_d_gs.append(score[b:])
            fmap_rs.append([f[:b] for f in fmap])
            fmap_gs.append([f[b:] for f in fmap])
        return y_d_rs, y_d_gs, fmap_rs, fmap_gs

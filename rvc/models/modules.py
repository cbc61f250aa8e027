"""Building blocks of the v2 generator: WaveNet stack, HiFi-GAN residual blocks, coupling flows.

Attribute names follow RVC's (`in_layers`, `res_skip_layers`, `cond_layer`, `convs1`, `convs2`,
`pre`, `enc`, `post`) because they are the state-dict keys community pretrains use.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rvc.models.commons import LRELU_SLOPE, Conv1d, get_padding, weight_norm


class WN(nn.Module):
    """Non-causal WaveNet: gated dilated convolutions with a speaker condition and skip sums.

    x : Tensor[B x H x T], x_mask : Tensor[B x 1 x T], g : Tensor[B x G x 1] or None
    returns : Tensor[B x H x T]
    """

    def __init__(
        self,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError("WN needs an odd kernel size")
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.drop = nn.Dropout(p_dropout)
        # One 1x1 conv makes the condition for every layer at once; each layer takes its slice.
        self.cond_layer = (
            weight_norm(nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1)) if gin_channels else None
        )
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(
                weight_norm(
                    nn.Conv1d(
                        hidden_channels,
                        2 * hidden_channels,
                        kernel_size,
                        dilation=dilation,
                        padding=get_padding(kernel_size, dilation),
                    )
                )
            )
            # The last layer only feeds the skip sum, so it needs no residual half.
            res_skip_channels = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(weight_norm(nn.Conv1d(hidden_channels, res_skip_channels, 1)))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden_channels
        cond = self.cond_layer(g) if self.cond_layer is not None and g is not None else None
        output = torch.zeros_like(x)
        for i, (in_layer, res_skip_layer) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            x_in = in_layer(x)
            if cond is not None:
                x_in = x_in + cond[:, i * 2 * h : (i + 1) * 2 * h, :]
            acts = torch.tanh(x_in[:, :h]) * torch.sigmoid(x_in[:, h:])
            res_skip = res_skip_layer(self.drop(acts))
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :h]) * x_mask
                output = output + res_skip[:, h:]
            else:
                output = output + res_skip
        return output * x_mask


class ResBlock1(nn.Module):
    """HiFi-GAN residual block type 1: per dilation, a dilated conv then a plain conv, with a skip.

    x : Tensor[B x C x T] -> Tensor[B x C x T], or (B, C, 1, T) channels-last -> the same (commons.Conv1d)
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(Conv1d(channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d)))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            weight_norm(Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size))) for _ in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = x + xt
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN residual block type 2: one dilated conv per dilation, each with a skip.

    x : Tensor[B x C x T] -> Tensor[B x C x T], or (B, C, 1, T) channels-last -> the same
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            weight_norm(Conv1d(channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d)))
            for d in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: shift the second half of the channels by a WaveNet of the first.

    x : Tensor[B x C x T], x_mask : Tensor[B x 1 x T], g : Tensor[B x G x 1] or None
    returns : Tensor[B x C x T] (forward maps posterior z to prior space; reverse undoes it)
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError("coupling needs an even channel count")
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.post = nn.Conv1d(hidden_channels, self.half_channels, 1)
        # Zero start: every flow begins as the identity, which keeps early training stable.
        for param in self.post.parameters():
            nn.init.zeros_(param)

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None, reverse: bool = False
    ) -> torch.Tensor:
        x0, x1 = torch.split(x, [self.half_channels, self.half_channels], dim=1)
        h = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        shift = self.post(h) * x_mask
        x1 = (x1 - shift) * x_mask if reverse else shift + x1 * x_mask
        return torch.cat([x0, x1], dim=1)


class Flip(nn.Module):
    """Reverse the channel order so the next coupling layer transforms the other half."""

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None, reverse: bool = False
    ) -> torch.Tensor:
        return torch.flip(x, [1])

"""Small shared pieces: masks, segment gathers, weight norm on and off, channels-first LayerNorm,
1-D convolutions that also run channels-last.

Everything here keeps shapes static and avoids host syncs, so a training step built from
these pieces can be captured in one CUDA graph.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrizations, parametrize

LRELU_SLOPE = 0.1  # HiFi-GAN's leaky ReLU slope, used across RVC's decoder and discriminators


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """Return the padding that keeps a stride-1 convolution's length unchanged."""
    return (kernel_size * dilation - dilation) // 2


def sequence_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Return a (B, max_length) bool mask, True where the position is inside the sequence.

    `max_length` is a Python int (the padded length), never `lengths.max()`, which would sync.
    """
    positions = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def slice_segments(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """Gather a window of `size` steps per batch item along the last axis.

    x : Tensor[B x T] or Tensor[B x C x T]
    starts : Tensor[B] (long), first index of each window; windows must lie inside T
    returns : Tensor[B x size] or Tensor[B x C x size]

    A gather rather than a Python loop: no per-item indexing, no host sync.
    """
    index = starts.unsqueeze(-1) + torch.arange(size, device=x.device)  # [B, size]
    if x.dim() == 3:
        index = index.unsqueeze(1).expand(-1, x.size(1), -1)
    return torch.gather(x, -1, index)


def rand_slice_segments(x: torch.Tensor, lengths: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a random window of `size` frames from each item, inside its valid length.

    x : Tensor[B x C x T]; lengths : Tensor[B]
    returns : (Tensor[B x C x size], starts Tensor[B] long)

    Starts are drawn as RVC draws them (uniform over the valid positions of each item), on the
    device. A batch padded to fewer than `size` frames is right-padded with zeros (a static shape
    decision), and an item shorter than `size` starts at 0.
    """
    total = x.size(-1)
    if total < size:
        x = F.pad(x, (0, size - total))
        total = size
    highest = (lengths - size + 1).clamp(min=1)
    starts = (torch.rand(x.size(0), device=x.device) * highest).long()
    starts = starts.clamp(max=total - size)
    return slice_segments(x, starts, size), starts


def to_channels_last_1d(x: torch.Tensor) -> torch.Tensor:
    """(N, C, L) -> the same values as (N, C, 1, L) stored channels-last ((N, L, C) in memory).

    cuDNN's tensor-core kernels read and write channels-last; given (N, C, L) they wrap each
    1-D convolution in an NCHW->NHWC transpose of its input and an NHWC->NCHW one of its output
    (about a fifth of a graphed bf16 step). A network that keeps its activations channels-last
    from input to output pays one transpose each way instead.
    """
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def from_channels_last_1d(x: torch.Tensor) -> torch.Tensor:
    """(N, C, 1, L) channels-last -> (N, C, L) (a strided view; the next op reads it as it is)."""
    return x.squeeze(2)


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` that also takes (N, C, 1, L) input and then runs as the equivalent 2-D convolution.

    The layout travels with the tensor: a 4-D channels-last input gives a 4-D channels-last output,
    so a block of these keeps its activations channels-last without knowing it. Same parameters
    and state-dict keys as ``nn.Conv1d`` (zero padding only, as every RVC convolution).
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if input.dim() != 4:
            return super()._conv_forward(input, weight, bias)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("the 2-D route of Conv1d supports numeric zero padding only")
        return F.conv2d(
            input,
            weight.unsqueeze(2),
            bias,
            (1, self.stride[0]),
            (0, self.padding[0]),
            (1, self.dilation[0]),
            self.groups,
        )


class ConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` that also takes (N, C, 1, L) input, as ``Conv1d`` above."""

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if input.dim() != 4:
            return super().forward(input, output_size)
        if output_size is not None:
            raise ValueError("the 2-D route of ConvTranspose1d takes no output_size")
        return F.conv_transpose2d(
            input,
            self.weight.unsqueeze(2),
            self.bias,
            (1, self.stride[0]),
            (0, int(self.padding[0])),
            (0, int(self.output_padding[0])),
            self.groups,
            (1, self.dilation[0]),
        )


def weight_norm(module: nn.Module) -> nn.Module:
    """Put weight normalisation on `module.weight` (dim 0), in PyTorch's parametrization form.

    Its state-dict keys are `parametrizations.weight.original0/1`; weights.py converts to and
    from RVC's `weight_g/weight_v`.
    """
    return parametrizations.weight_norm(module, name="weight", dim=0)


def remove_weight_norm(model: nn.Module) -> nn.Module:
    """Fold every weight-norm parametrization under `model` into a plain weight, in place.

    For inference and export: the folded model computes the same output with fewer kernels.
    """
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


class LayerNorm(nn.Module):
    """Layer normalisation over channels of a channels-first tensor, with RVC's gamma/beta names.

    x : Tensor[B x C x T] -> Tensor[B x C x T]
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)

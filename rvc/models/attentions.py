"""The text encoder's transformer: multi-head self-attention with windowed relative positions.

RVC (from VITS) adds learned relative-position embeddings for offsets within +-window_size to
both the attention logits and the attended values. RVC builds them with pad-and-reshape tricks
over a (T, 2T-1) matrix; here the same pad-and-reshape ("skew") moves only the (2*window+1)
band between the relative and the absolute layout. No gather: a gather's backward is a
scatter, which torch.compile turned into the slowest kernel of the training step.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from rvc.models.commons import LayerNorm


class MultiHeadAttention(nn.Module):
    """Self-attention with relative position embeddings shared across heads.

    x : Tensor[B x C x T], attn_mask : Tensor[B x 1 x T x T] (1 = attend) or None
    returns : Tensor[B x C_out x T]

    Nothing from a forward pass is kept on the module (RVC kept `self.attn`, which holds the
    last autograd graph alive and breaks CUDA graph capture).
    """

    def __init__(
        self,
        channels: int,
        out_channels: int,
        n_heads: int,
        p_dropout: float = 0.0,
        window_size: int = 10,
    ) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError("channels must be divisible by n_heads")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        # Shape [1, 2w+1, d]: the leading 1 is RVC's "heads share one table" layout.
        scale = self.k_channels**-0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * scale)
        self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * scale)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, c, t = x.shape
        # [B, C, T] -> [B, heads, T, d]
        q = self.conv_q(x).view(b, self.n_heads, self.k_channels, t).transpose(2, 3)
        k = self.conv_k(x).view(b, self.n_heads, self.k_channels, t).transpose(2, 3)
        v = self.conv_v(x).view(b, self.n_heads, self.k_channels, t).transpose(2, 3)
        q = q / math.sqrt(self.k_channels)

        w = self.window_size
        scores = torch.matmul(q, k.transpose(-2, -1))
        # Relative logits for the 2w+1 offsets, then placed at (i, j) with j - i = offset.
        rel_logits = torch.matmul(q, self.emb_rel_k[0].transpose(0, 1))  # [B, h, T, 2w+1]
        scores = scores + band_to_full(rel_logits, w)
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, -1e4)
        p_attn = self.drop(F.softmax(scores, dim=-1))  # [B, h, T, T]

        output = torch.matmul(p_attn, v)
        # Attention weight at each offset: p[i, i + offset], zero where that leaves the sequence.
        output = output + torch.matmul(full_to_band(p_attn, w), self.emb_rel_v[0])
        output = output.transpose(2, 3).reshape(b, c, t)
        return self.conv_o(output)


def band_to_full(band: torch.Tensor, w: int) -> torch.Tensor:
    """Place relative entries at absolute positions: out[..., i, j] = band[..., i, j - i + w], 0 off the band.

    band : Tensor[... x T x 2w+1] -> Tensor[... x T x T]

    Padding each row with T zeros and re-reading the flat buffer with rows one shorter shifts
    row i right by i.
    """
    *lead, t, width = band.shape
    padded = F.pad(band, (0, t)).reshape(*lead, t * (width + t))
    shifted = padded[..., : t * (width + t - 1)].reshape(*lead, t, width + t - 1)
    return shifted[..., w : w + t]


def full_to_band(full: torch.Tensor, w: int) -> torch.Tensor:
    """The inverse gathering: out[..., i, r] = full[..., i, i + r - w], 0 where that column is outside [0, T).

    full : Tensor[... x T x T] -> Tensor[... x T x 2w+1]

    Re-reading the flat buffer with rows one longer shifts row i left by i.
    """
    *lead, t, _ = full.shape
    width = t + 2 * w + 1
    padded = F.pad(F.pad(full, (w, w + 1)).reshape(*lead, t * width), (0, t))
    return padded.reshape(*lead, t, width + 1)[..., : 2 * w + 1]


class FFN(nn.Module):
    """Position-wise feed-forward made of two same-padded convolutions with a ReLU.

    x : Tensor[B x C x T], x_mask : Tensor[B x 1 x T] -> Tensor[B x C_out x T]
    """

    def __init__(
        self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int, p_dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        # "same" padding, left-biased for even kernels as RVC does
        return F.pad(x, ((self.kernel_size - 1) // 2, self.kernel_size // 2))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(self._pad(x * x_mask)))
        x = self.conv_2(self._pad(self.drop(x) * x_mask))
        return x * x_mask


class Encoder(nn.Module):
    """Post-norm transformer encoder: attention then feed-forward, each with residual and LayerNorm.

    x : Tensor[B x H x T], x_mask : Tensor[B x 1 x T] -> Tensor[B x H x T]
    """

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        p_dropout: float = 0.0,
        window_size: int = 10,
    ) -> None:
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden_channels, hidden_channels, n_heads, p_dropout, window_size)
            for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout) for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)  # [B, 1, T, T]
        x = x * x_mask
        for attn, norm_1, ffn, norm_2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = norm_1(x + self.drop(attn(x, attn_mask)))
            x = norm_2(x + self.drop(ffn(x, x_mask)))
        return x * x_mask

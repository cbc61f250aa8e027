"""The text encoder's transformer: multi-head self-attention with windowed relative positions.

RVC (from VITS) adds learned relative-position embeddings for offsets within +-window_size to
both the attention logits and the attended values. RVC builds them with pad-and-reshape tricks
over a (T, 2T-1) matrix; here the same numbers come from two static-shape gathers over the
(2*window+1) band, which is cheaper for long inputs and keeps shapes fixed for a given T.
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

        band, band_valid = self._band_index(t, x.device)
        scores = torch.matmul(q, k.transpose(-2, -1))
        # Relative logits for the 2w+1 offsets, then placed at (i, j) with j - i = offset.
        rel_logits = torch.matmul(q, self.emb_rel_k[0].transpose(0, 1))  # [B, h, T, 2w+1]
        rel_logits = F.pad(rel_logits, (0, 1))  # a zero column for offsets outside the window
        scores = scores + torch.gather(rel_logits, 3, band.expand(b, self.n_heads, t, t))
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, -1e4)
        p_attn = self.drop(F.softmax(scores, dim=-1))  # [B, h, T, T]

        output = torch.matmul(p_attn, v)
        # Attention weight at each offset: p[i, i + offset], zero where that leaves the sequence.
        p_padded = F.pad(p_attn, (0, 1))
        rel_weights = torch.gather(p_padded, 3, band_valid.expand(b, self.n_heads, t, band_valid.size(-1)))
        output = output + torch.matmul(rel_weights, self.emb_rel_v[0])
        output = output.transpose(2, 3).reshape(b, c, t)
        return self.conv_o(output)

    def _band_index(self, t: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the gather indices between absolute (i, j) and relative (i, offset) layouts.

        band : Tensor[T x T], offset index j - i + w, or 2w+1 (the zero column) outside the window
        band_valid : Tensor[T x 2w+1], column j = i + offset - w, or T (the zero column) outside [0, T)
        """
        w = self.window_size
        pos = torch.arange(t, device=device)
        rel = pos.unsqueeze(0) - pos.unsqueeze(1) + w  # [i, j] -> j - i + w
        band = torch.where((rel >= 0) & (rel <= 2 * w), rel, torch.full_like(rel, 2 * w + 1))
        cols = pos.unsqueeze(1) + torch.arange(-w, w + 1, device=device).unsqueeze(0)  # [i, r] -> i + r - w
        band_valid = torch.where((cols >= 0) & (cols < t), cols, torch.full_like(cols, t))
        return band, band_valid


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

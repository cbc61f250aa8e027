"""The RVC v2 generator (RVC's `SynthesizerTrnMs768NSFsid`): a VITS-style model with an NSF decoder.

Training: content features + coarse pitch -> prior (enc_p); linear spectrogram -> posterior z
(enc_q); z -> prior space through the flow; a random slice of z plus f0 -> audio (dec).
Inference: prior sample -> reverse flow -> decoder.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rvc.models.attentions import Encoder
from rvc.models.commons import rand_slice_segments, remove_weight_norm, sequence_mask, slice_segments
from rvc.models.config import ModelConfig
from rvc.models.generator import GeneratorNSF
from rvc.models.modules import WN, Flip, ResidualCouplingLayer


class TextEncoder(nn.Module):
    """Prior encoder: content features plus a coarse-pitch embedding through a transformer.

    phone : Tensor[B x T x P] (P = 768 for v2), pitch : Tensor[B x T] long in 1..255 (0 unvoiced),
    lengths : Tensor[B]
    returns : (m Tensor[B x C x T'], logs Tensor[B x C x T'], mask Tensor[B x 1 x T']), T' = T - skip_head
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb_phone = nn.Linear(in_channels, hidden_channels)
        self.emb_pitch = nn.Embedding(256, hidden_channels)  # coarse pitch bins 0..255
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self, phone: torch.Tensor, pitch: torch.Tensor, lengths: torch.Tensor, skip_head: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = (self.emb_phone(phone) + self.emb_pitch(pitch)) * math.sqrt(self.hidden_channels)
        x = self.lrelu(x).transpose(1, 2)  # [B, H, T]
        x_mask = sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        x = self.encoder(x * x_mask, x_mask)
        if skip_head:
            # Real-time conversion drops context frames it only needed for attention.
            x, x_mask = x[:, :, skip_head:], x_mask[:, :, skip_head:]
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs, x_mask


class PosteriorEncoder(nn.Module):
    """Posterior encoder: linear spectrogram -> latent z through a WaveNet.

    y : Tensor[B x S x T], lengths : Tensor[B], g : Tensor[B x G x 1]
    returns : (z, m, logs : Tensor[B x C x T], mask Tensor[B x 1 x T])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self, y: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        y_mask = sequence_mask(lengths, y.size(2)).unsqueeze(1).to(y.dtype)
        h = self.enc(self.pre(y) * y_mask, y_mask, g=g)
        stats = self.proj(h) * y_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * y_mask
        return z, m, logs, y_mask


class ResidualCouplingBlock(nn.Module):
    """Normalising flow between posterior and prior: coupling layers alternated with Flips.

    x : Tensor[B x C x T], x_mask : Tensor[B x 1 x T], g : Tensor[B x G x 1] -> Tensor[B x C x T]
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        n_flows: int = 4,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(
                ResidualCouplingLayer(
                    channels, hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels
                )
            )
            self.flows.append(Flip())

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None, reverse: bool = False
    ) -> torch.Tensor:
        flows = reversed(self.flows) if reverse else iter(self.flows)
        for flow in flows:
            x = flow(x, x_mask, g=g, reverse=reverse)
        return x


LatentStats = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class SynthesizerTrnMs768NSFsid(nn.Module):
    """RVC v2 generator with pitch guidance, state-dict compatible with RVC's class of this name.

    Build from a `ModelConfig`; `ModelConfig.tiny()` gives a small model with the same code.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.segment_frames = cfg.segment_frames
        # Registration order is RVC's (dec, enc_q, flow, emb_g, enc_p: RVC re-adds enc_p last), so
        # state-dict keys come out in the same order as in RVC's files.
        self.dec = GeneratorNSF(
            cfg.inter_channels,
            cfg.resblock,
            cfg.resblock_kernel_sizes,
            cfg.resblock_dilation_sizes,
            cfg.upsample_rates,
            cfg.upsample_initial_channel,
            cfg.upsample_kernel_sizes,
            gin_channels=cfg.gin_channels,
            sample_rate=cfg.sample_rate,
        )
        self.enc_q = PosteriorEncoder(
            cfg.spec_channels,
            cfg.inter_channels,
            cfg.hidden_channels,
            kernel_size=5,
            dilation_rate=1,
            n_layers=cfg.posterior_layers,
            gin_channels=cfg.gin_channels,
        )
        self.flow = ResidualCouplingBlock(
            cfg.inter_channels,
            cfg.hidden_channels,
            kernel_size=5,
            dilation_rate=1,
            n_layers=cfg.flow_layers,
            n_flows=cfg.n_flows,
            gin_channels=cfg.gin_channels,
        )
        self.emb_g = nn.Embedding(cfg.spk_embed_dim, cfg.gin_channels)
        self.enc_p = TextEncoder(
            cfg.phone_channels,
            cfg.inter_channels,
            cfg.hidden_channels,
            cfg.filter_channels,
            cfg.n_heads,
            cfg.n_layers,
            cfg.kernel_size,
            cfg.p_dropout,
        )

    def forward(
        self,
        phone: torch.Tensor,
        phone_lengths: torch.Tensor,
        pitch: torch.Tensor,
        pitchf: torch.Tensor,
        y: torch.Tensor,
        y_lengths: torch.Tensor,
        ds: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, LatentStats]:
        """Run one training pass: render a random slice of each item.

        phone : Tensor[B x T x 768] content features at 100 frames/s
        phone_lengths, y_lengths : Tensor[B] long, valid frames
        pitch : Tensor[B x T] long coarse pitch; pitchf : Tensor[B x T] f0 in Hz
        y : Tensor[B x spec_channels x T] linear magnitude spectrogram
        ds : Tensor[B] long speaker ids
        returns : o Tensor[B x 1 x segment_size] audio, ids_slice Tensor[B] start frames,
            x_mask, z_mask Tensor[B x 1 x T], (z, z_p, m_p, logs_p, m_q, logs_q) Tensor[B x C x T]

        The caller cuts the real audio (and mel) at ids_slice * hop_length with `slice_segments`.
        """
        g = self.emb_g(ds).unsqueeze(-1)  # [B, G, 1]
        m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths)
        z, m_q, logs_q, z_mask = self.enc_q(y, y_lengths, g=g)
        z_p = self.flow(z, z_mask, g=g)
        z_slice, ids_slice = rand_slice_segments(z, y_lengths, self.segment_frames)
        pitchf_slice = slice_segments(_pad_to(pitchf, self.segment_frames), ids_slice, self.segment_frames)
        o = self.dec(z_slice, pitchf_slice, g=g)
        return o, ids_slice, x_mask, z_mask, (z, z_p, m_p, logs_p, m_q, logs_q)

    @torch.no_grad()
    def infer(
        self,
        phone: torch.Tensor,
        phone_lengths: torch.Tensor,
        pitch: torch.Tensor,
        nsff0: torch.Tensor,
        sid: torch.Tensor,
        skip_head: int | None = None,
        return_length: int | None = None,
        noise_scale: float = 0.66666,
        prior_noise: torch.Tensor | None = None,
        source_noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Convert: sample the prior, undo the flow, decode with the given f0.

        phone : Tensor[B x T x 768], phone_lengths : Tensor[B], pitch : Tensor[B x T] long,
        nsff0 : Tensor[B x T] Hz, sid : Tensor[B] long
        skip_head, return_length : frames (Python ints) for real-time chunks, as RVC: drop the first
            skip_head frames and return return_length frames
        prior_noise : Tensor[B x C x T'] standard normal, the prior's sample (T' = T less the dropped
            head), and source_noise : Tensor[B x T_out*hop_length x 1], the decoder's excitation
            noise; None: drawn here. Given, the output is a function of the inputs (the ONNX
            export passes the noise its graph drew, so a test can compare exactly).
        returns : o Tensor[B x 1 x T_out*hop_length], x_mask, (z, z_p, m_p, logs_p)
        """
        g = self.emb_g(sid).unsqueeze(-1)
        if skip_head is not None and return_length is not None:
            # Keep up to 24 frames of left context through the flow (its receptive field), as RVC.
            flow_head = max(skip_head - 24, 0)
            dec_head = skip_head - flow_head
            m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths, skip_head=flow_head)
            z_p = (m_p + torch.exp(logs_p) * _normal(m_p, prior_noise) * noise_scale) * x_mask
            z = self.flow(z_p, x_mask, g=g, reverse=True)
            z = z[:, :, dec_head : dec_head + return_length]
            x_mask = x_mask[:, :, dec_head : dec_head + return_length]
            nsff0 = nsff0[:, skip_head : skip_head + return_length]
        else:
            m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths)
            z_p = (m_p + torch.exp(logs_p) * _normal(m_p, prior_noise) * noise_scale) * x_mask
            z = self.flow(z_p, x_mask, g=g, reverse=True)
        o = self.dec(z * x_mask, nsff0, g=g, noise=source_noise)
        return o, x_mask, (z, z_p, m_p, logs_p)

    def remove_weight_norm(self) -> SynthesizerTrnMs768NSFsid:
        """Fold weight norm into plain weights for inference; returns self."""
        remove_weight_norm(self)
        return self


def _normal(like: torch.Tensor, given: torch.Tensor | None) -> torch.Tensor:
    """Return ``given``, or standard-normal noise shaped like ``like`` when none is given."""
    return torch.randn_like(like) if given is None else given


def _pad_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Right-pad the last axis with zeros up to `size` (a static-shape decision)."""
    return x if x.size(-1) >= size else nn.functional.pad(x, (0, size - x.size(-1)))

"""Decode a pitch salience map (360 bins of 20 cents, CREPE's and RMVPE's grid) to f0 in Hz.

Bin ``k`` is centred at ``1997.38 + 20 k`` cents above 10 Hz: 31.7 Hz for bin 0
up to 2006 Hz for bin 359. Decoding is CREPE's "local weighted average": the
salience-weighted mean of the cents of the 9 bins around the strongest bin,
which gives a continuous pitch rather than one quantised to 20 cents. It runs
on whole tensors, on the device that produced them.
"""

from __future__ import annotations

import math

import torch

PITCH_BINS = 360
CENTS_PER_BIN = 20.0
CENTS_BIN0 = 1997.3794084376191  # cents re 10 Hz of bin 0 (CREPE's constant, kept by RMVPE)
_HALF_WINDOW = 4  # bins each side of the peak that enter the weighted average


def hz_to_bin(f0_hz: float) -> float:
    """Return the (fractional) salience bin of a frequency."""
    return (1200.0 * math.log2(f0_hz / 10.0) - CENTS_BIN0) / CENTS_PER_BIN


def allowed_bins(f0_min: float, f0_max: float, device: torch.device) -> torch.Tensor:
    """Return a bool mask (360,) of the bins that may hold the pitch peak for a search range in Hz.

    The bins that contain ``f0_min`` and ``f0_max`` are included, so the range
    is never narrower than asked.
    """
    low = max(0, math.floor(hz_to_bin(f0_min)))
    high = min(PITCH_BINS - 1, math.ceil(hz_to_bin(f0_max)))
    bins = torch.arange(PITCH_BINS, device=device)
    return (bins >= low) & (bins <= high)


def local_average_f0(
    salience: torch.Tensor, threshold: float, allowed: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode salience (..., 360) to f0 in Hz (...) and the peak salience (...).

    Frames whose peak salience is not above ``threshold`` get 0 Hz (unvoiced).
    ``allowed`` (360,) bool restricts the bins the peak and its neighbours may
    come from (the f0 search range); ``None`` allows all.
    """
    sal = salience.float()
    if allowed is not None:
        sal = sal.masked_fill(~allowed, 0.0)
    peak, centre = sal.max(dim=-1)
    offsets = torch.arange(-_HALF_WINDOW, _HALF_WINDOW + 1, device=sal.device)
    window = centre.unsqueeze(-1) + offsets
    inside = (window >= 0) & (window < PITCH_BINS)
    window = window.clamp(0, PITCH_BINS - 1)
    weights = sal.gather(-1, window) * inside
    cents_table = CENTS_BIN0 + CENTS_PER_BIN * torch.arange(PITCH_BINS, device=sal.device, dtype=torch.float32)
    # A voiced frame has a positive peak, so its weight sum is positive; the clamp only spares unvoiced frames a 0/0.
    cents = (weights * cents_table[window]).sum(-1) / weights.sum(-1).clamp_min(1e-12)
    f0 = 10.0 * torch.pow(2.0, cents / 1200.0)
    f0 = torch.where(peak > threshold, f0, torch.zeros_like(f0))
    return f0, peak


def median3(values: torch.Tensor) -> torch.Tensor:
    """Return the running median over 3 frames of (T,) values, repeating the edge frames."""
    padded = torch.cat([values[:1], values, values[-1:]])
    return torch.stack([padded[:-2], padded[1:-1], padded[2:]]).median(dim=0).values

"""Small numpy helpers shared by the f0 methods: input checks, frame counts, batching."""

from __future__ import annotations

import numpy as np

from rvc.f0 import n_frames


def as_clip(audio: np.ndarray) -> np.ndarray:
    """Return ``audio`` as a float32 mono array (N,), non-finite samples set to 0.

    Raises ValueError for anything that is not one-dimensional: the caller
    mixes to mono and resamples to 16 kHz before pitch extraction.
    """
    clip = np.asarray(audio, dtype=np.float32)
    if clip.ndim != 1:
        raise ValueError(f"f0 estimation needs mono audio of shape (N,), got shape {clip.shape}")
    if not np.all(np.isfinite(clip)):
        clip = np.nan_to_num(clip, nan=0.0, posinf=0.0, neginf=0.0)
    return clip


def fit_length(f0: np.ndarray, n_samples: int) -> np.ndarray:
    """Crop or zero-pad (unvoiced) frame-aligned f0 (T,) at its end to ``n_frames(n_samples)``, as float32."""
    target = n_frames(n_samples)
    f0 = np.asarray(f0, dtype=np.float32).reshape(-1)
    if len(f0) >= target:
        return np.ascontiguousarray(f0[:target])
    return np.concatenate([f0, np.zeros(target - len(f0), dtype=np.float32)])


def length_batches(lengths: list[int], max_total: int) -> list[list[int]]:
    """Group clip indices into batches of similar length whose padded size stays under ``max_total``.

    Clips are sorted by length (longest first) so that padding to the longest
    clip of a batch wastes little; a clip longer than ``max_total`` gets a batch
    of its own. ``lengths`` are in any unit (samples, frames); so is ``max_total``.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # The first clip of a batch is its longest, so the padded size is len * count.
        if current and lengths[current[0]] * (len(current) + 1) > max_total:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches

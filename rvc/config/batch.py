"""Batch size "auto" before any GPU is touched: what the dataset supports.

The trainer (``rvc/train/batch_choice.py``) takes the largest batch within this bound that a
measured trial step fits in the GPU; Validate (``rvc/config/validate.py``) says what the memory
estimate expects it to choose.
"""

from __future__ import annotations

from dataclasses import dataclass

from rvc.config.train import MAX_BATCH

# A trial step's need (what stays reserved, gaps included, plus its transient peak) may take this share
# of the usable GPU memory; the rest is the margin for the CUDA graph's own pool, validation and a save's copies.
MEASURED_SHARE = 0.85


def suggested_batch_size(minutes: float) -> int:
    """RVC guides' rule: up to 8 below half an hour of audio, larger batches for an hour or more."""
    if minutes < 10:
        return 4
    if minutes < 60:
        return 8
    return 16


@dataclass(frozen=True)
class DatasetBound:
    """The largest batch the dataset supports, and why, in words for the ``start`` event and Validate."""

    size: int
    why: str  # e.g. "the dataset's 10.0 minutes suggest at most 8"


def dataset_bound(seconds: float, clips: int, world_size: int = 1) -> DatasetBound:
    """Return the batch "auto" may not exceed: the length's suggestion, and no more clips than a GPU's share.

    seconds : the training audio's length; clips : training clips (0: not known yet, no cap);
    world_size : GPUs training together, each drawing its own batch from the same clips.
    """
    suggestion = suggested_batch_size(seconds / 60)
    size = min(suggestion, MAX_BATCH)
    why = f"the dataset's {seconds / 60:.1f} minutes suggest at most {suggestion}"
    share = max(1, clips // max(1, world_size))
    if clips and share < size:
        size = share
        over = f" over {world_size} GPUs" if world_size > 1 else ""
        why += f", and its {clips} training clips{over} fill batches of {share}"
    return DatasetBound(size, why)

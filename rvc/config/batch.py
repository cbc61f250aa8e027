"""Batch size "auto" before any GPU is touched: what the dataset supports.

The trainer (``rvc/train/batch_choice.py``) takes the largest batch within this bound that a
measured trial step fits in the GPU; Validate (``rvc/config/validate.py``) says what the memory
estimate (``rvc/config/memory.py``) expects it to choose.
"""

from __future__ import annotations

from dataclasses import dataclass

from rvc.config.train import MAX_BATCH

# Held-out clips converted at once, at most, and never more than the training batch: on CUDA the whole
# pass is one graph replay whatever the batch, so the batch only bounds the memory that whole clips in
# fp32 need beside training's. Within the training batch the pass needs about what the step the batch
# was chosen for does, or less: a held-out clip of 3.2 s takes 113 MiB at the pass's peak against a
# training clip's 230 (bf16-tail), one of 12 s 422 against 390 (CPU counts, benchmarks/clip_memory.py).
# At 12 s, 5 clips at once had needed 2.2 GiB beside a training batch of 2 on an H100, and their graph
# ran out of memory under a 6 GiB cap.
HELD_OUT_BATCH = 8
# A trial step's need (what stays reserved, gaps included, plus its transient peak or its graph's
# capture, and beside a graphed step the held-out pass's estimate) may take this share of the usable
# GPU memory; the rest is the margin for what the trial does not see (the held-out pass's own graph
# and gaps, the allocator's fragmentation over a long run).
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


def balanced_batch(count: int, most: int) -> int:
    """The batch size that splits ``count`` clips into the fewest batches of at most ``most``, all
    (but possibly the last) of one size: 10 clips at most 8 go as 5 + 5, not 8 + 2, so every batch
    has the same shape (one set of cuDNN plans, and a CUDA graph of the whole pass stays small)."""
    batches = max(1, -(-count // max(1, most)))
    return max(1, -(-count // batches))


def held_out_batch(clips: int, training_batch: int) -> int:
    """How many of ``clips`` held-out clips the held-out pass converts at once beside a training batch
    of ``training_batch`` (0 where there are none, or no batch)."""
    if clips <= 0 or training_batch <= 0:
        return 0
    return balanced_batch(clips, min(HELD_OUT_BATCH, training_batch))

"""Cut recordings at silences, then into chunks of at most ``--chunk`` seconds.

The silence slicer follows RVC's ``slicer2.Slicer`` (the same frame RMS, the
same rules for where to cut inside a silence and how much silence to keep),
but returns sample spans instead of copies and drops spans that hold no sound
at all (RVC's slicer returns leading/trailing silence as clips of their own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rvc.errors import UserError
from rvc.settings import setting


@dataclass(frozen=True)
class SlicerParams:
    """Where the silence slicer cuts; times in seconds."""

    threshold_db: float = setting(
        -42.0,
        "silence below this level, dBFS (frame RMS)",
        label="Silence threshold (dBFS)",
        flag="--threshold",
        metavar="DB",
        group="slicing",
    )
    min_length: float = setting(
        1.5, "shortest slice the slicer cuts, s", label="Shortest slice (s)", metavar="S", group="slicing"
    )
    min_interval: float = setting(
        0.4,
        "shortest silence that is a cut point, s",
        label="Shortest silence to cut at (s)",
        metavar="S",
        group="slicing",
    )
    hop: float = setting(
        0.015, "slicer frame hop, s: the resolution of every cut", label="Slicer hop (s)", metavar="S", group="slicing"
    )
    max_silence_kept: float = setting(
        0.5, "silence kept at each side of a cut, s", label="Silence kept at cuts (s)", metavar="S", group="slicing"
    )

    def check(self) -> None:
        """Raise a UserError naming the option when the times are inconsistent (RVC's own conditions)."""
        if not self.hop > 0:
            raise UserError(f"$hop {self.hop:g} must be positive", field="hop", options=SlicerParams)
        if not self.min_length >= self.min_interval >= self.hop:
            raise UserError(
                f"$min_length {self.min_length:g} must be at least $min_interval ({self.min_interval:g}), "
                f"which must be at least $hop ({self.hop:g})",
                field="min_length",
                options=SlicerParams,
            )
        if not self.max_silence_kept >= self.hop:
            raise UserError(
                f"$max_silence_kept {self.max_silence_kept:g} must be at least $hop ({self.hop:g})",
                field="max_silence_kept",
                options=SlicerParams,
            )
        if not self.threshold_db < 0:
            raise UserError(
                f"$threshold_db {self.threshold_db:g} must be below 0 dBFS", field="threshold_db", options=SlicerParams
            )


def frame_rms(audio: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Return the RMS of centred frames (zero padded), like librosa's and RVC's ``get_rms``.

    audio : float32 ndarray[T]; returns float64 ndarray[1 + T // hop_length].
    """
    half = frame_length // 2
    n_frames = 1 + len(audio) // hop_length
    if frame_length % hop_length == 0 and half % hop_length == 0:
        return _frame_rms_aligned(np.asarray(audio, dtype=np.float32), frame_length, hop_length, n_frames)
    padded = np.pad(np.asarray(audio, dtype=np.float64), (half, half))
    # Sum of squares from a cumulative sum: O(T) whatever the frame length.
    cumulative = np.concatenate(([0.0], np.cumsum(padded * padded)))
    starts = np.arange(n_frames) * hop_length
    ends = np.minimum(starts + frame_length, len(padded))
    power = (cumulative[ends] - cumulative[starts]) / frame_length
    return np.sqrt(np.maximum(power, 0.0))


def _frame_rms_aligned(audio: np.ndarray, frame_length: int, hop_length: int, n_frames: int) -> np.ndarray:
    """The same RMS from per-hop sums of squares, when frames are whole hops (the slicer's 4 x hop)."""
    blocks_per_frame, lead = frame_length // hop_length, frame_length // 2 // hop_length
    n_blocks = n_frames + blocks_per_frame  # enough zero blocks on both sides for every frame
    squares = np.zeros(n_blocks * hop_length, dtype=np.float32)
    squares[lead * hop_length : lead * hop_length + len(audio)] = np.square(audio)
    block_sums = squares.reshape(n_blocks, hop_length).sum(axis=1, dtype=np.float64)
    cumulative = np.concatenate(([0.0], np.cumsum(block_sums)))
    power = (cumulative[blocks_per_frame : blocks_per_frame + n_frames] - cumulative[:n_frames]) / frame_length
    return np.sqrt(np.maximum(power, 0.0))


def loudest_frame_db(audio: np.ndarray, sample_rate: int, hop: float = 0.015) -> float:
    """Return the level of the loudest frame, in dBFS (-inf for digital silence)."""
    hop_length = max(1, round(sample_rate * hop))
    rms = frame_rms(audio, 4 * hop_length, hop_length)
    top = float(rms.max()) if rms.size else 0.0
    return 20 * math.log10(top) if top > 0 else -math.inf


def slice_at_silences(audio: np.ndarray, sample_rate: int, params: SlicerParams) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` sample spans between long silences, in order.

    audio : float32 ndarray[T] (mono). Spans with no frame above the threshold
    are left out, so fully silent audio gives ``[]``.
    """
    params.check()
    hop = max(1, round(sample_rate * params.hop))
    min_interval_samples = sample_rate * params.min_interval
    window = min(round(min_interval_samples), 4 * hop)
    min_length = round(sample_rate * params.min_length / hop)
    min_interval = round(min_interval_samples / hop)
    max_kept = round(sample_rate * params.max_silence_kept / hop)
    threshold = 10 ** (params.threshold_db / 20)

    rms = frame_rms(audio, window, hop)
    if len(rms) <= min_length:
        tags: list[tuple[int, int]] = []
    else:
        tags = _silence_tags(rms, threshold, min_length, min_interval, max_kept)
    frames = _frame_spans(tags, len(rms))
    spans = []
    for begin, end in frames:
        if end <= begin or rms[begin:end].max(initial=0.0) < threshold:
            continue  # nothing audible in it
        spans.append((begin * hop, min(len(audio), end * hop)))
    return [(a, b) for a, b in spans if b > a]


def _silence_tags(
    rms: np.ndarray, threshold: float, min_length: int, min_interval: int, max_kept: int
) -> list[tuple[int, int]]:
    """Return the frame ranges to cut out, by RVC's rules (kept verbatim for the same cuts)."""
    tags: list[tuple[int, int]] = []
    silence_start: int | None = None
    clip_start = 0
    for i, value in enumerate(rms):
        if value < threshold:
            if silence_start is None:
                silence_start = i
            continue
        if silence_start is None:
            continue
        is_leading_silence = silence_start == 0 and i > max_kept
        need_slice_middle = i - silence_start >= min_interval and i - clip_start >= min_length
        if not is_leading_silence and not need_slice_middle:
            silence_start = None
            continue
        if i - silence_start <= max_kept:
            pos = int(rms[silence_start : i + 1].argmin()) + silence_start
            tags.append((0, pos) if silence_start == 0 else (pos, pos))
            clip_start = pos
        elif i - silence_start <= max_kept * 2:
            pos = int(rms[i - max_kept : silence_start + max_kept + 1].argmin()) + i - max_kept
            pos_l = int(rms[silence_start : silence_start + max_kept + 1].argmin()) + silence_start
            pos_r = int(rms[i - max_kept : i + 1].argmin()) + i - max_kept
            if silence_start == 0:
                tags.append((0, pos_r))
                clip_start = pos_r
            else:
                tags.append((min(pos_l, pos), max(pos_r, pos)))
                clip_start = max(pos_r, pos)
        else:
            pos_l = int(rms[silence_start : silence_start + max_kept + 1].argmin()) + silence_start
            pos_r = int(rms[i - max_kept : i + 1].argmin()) + i - max_kept
            tags.append((0, pos_r) if silence_start == 0 else (pos_l, pos_r))
            clip_start = pos_r
        silence_start = None
    total = len(rms)
    if silence_start is not None and total - silence_start >= min_interval:
        silence_end = min(total, silence_start + max_kept)
        pos = int(rms[silence_start : silence_end + 1].argmin()) + silence_start
        tags.append((pos, total + 1))
    return tags


def _frame_spans(tags: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    """Turn the cut-out ranges into the frame ranges that are kept."""
    if not tags:
        return [(0, total)]
    spans = []
    if tags[0][0] > 0:
        spans.append((0, tags[0][0]))
    spans.extend((tags[i][1], tags[i + 1][0]) for i in range(len(tags) - 1))
    if tags[-1][1] < total:
        spans.append((tags[-1][1], total))
    return spans


def chunk_span(start: int, end: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """Cut ``[start, end)`` into the fewest equal chunks of at most ``chunk`` samples overlapping by ``overlap``.

    A span no longer than ``chunk`` stays whole. Longer spans get
    ``n = ceil((L - overlap) / (chunk - overlap))`` chunks of equal length, so
    there is no short tail: every chunk is longer than ``(chunk + overlap) / 2``
    (RVC instead writes a tail of up to ``chunk + overlap``, longer than asked).
    """
    if not 0 <= overlap < chunk:
        raise ValueError("the chunk overlap must be at least 0 and shorter than the chunk")
    length = end - start
    if length <= chunk:
        return [(start, end)] if length > 0 else []
    n = math.ceil((length - overlap) / (chunk - overlap))
    size = min(chunk, math.ceil((length + (n - 1) * overlap) / n))
    starts = np.round(np.linspace(start, end - size, n)).astype(int)
    return [(int(s), int(s) + size) for s in starts]

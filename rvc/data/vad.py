"""Shorten long silences inside a recording (``--trim-silence``), keeping track of where audio came from.

An energy VAD: 30 ms frames every 10 ms, silent below the slicer's threshold.
A silence longer than ``max_silence`` is shortened to ``max_silence`` (half
kept at each side). The joins get 5 ms fades; they sit in near-silence, so the
fades only remove clicks. :class:`TimeMap` converts positions between the
trimmed signal and the source file, so the report can name source times.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from rvc.data.slicer import frame_rms

FADE_SECONDS = 0.005


@dataclass(frozen=True)
class TimeMap:
    """Pieces of a processed signal and where each came from in the source (all in samples).

    pieces : ``(processed_start, source_start, length)``, in order, contiguous in processed time.
    """

    pieces: tuple[tuple[int, int, int], ...]

    @classmethod
    def identity(cls, length: int) -> TimeMap:
        return cls(((0, 0, length),))

    @property
    def length(self) -> int:
        """Length of the processed signal."""
        last = self.pieces[-1]
        return last[0] + last[2]

    def to_source(self, position: int) -> int:
        """Return the source sample of processed sample ``position`` (the end maps to the last piece's end)."""
        starts = [p[0] for p in self.pieces]
        index = max(0, bisect.bisect_right(starts, position) - 1)
        processed_start, source_start, length = self.pieces[index]
        return source_start + min(max(position - processed_start, 0), length)

    def to_processed(self, position: int) -> int:
        """Return the processed sample of source sample ``position``; a removed stretch maps to its join."""
        starts = [p[1] for p in self.pieces]
        index = max(0, bisect.bisect_right(starts, position) - 1)
        processed_start, source_start, length = self.pieces[index]
        return processed_start + min(max(position - source_start, 0), length)


def trim_long_silences(
    audio: np.ndarray, sample_rate: int, threshold_db: float, max_silence: float
) -> tuple[np.ndarray, TimeMap]:
    """Return ``audio`` with every silence longer than ``max_silence`` seconds shortened to it.

    audio : float32 ndarray[T]; returns float32 ndarray[T'] (T' <= T) and its TimeMap.
    """
    hop = max(1, round(sample_rate * 0.010))
    rms = frame_rms(audio, 3 * hop, hop)
    silent = rms < 10 ** (threshold_db / 20)
    keep_half = round(max_silence * sample_rate / 2)
    cuts = []  # source sample ranges to remove
    for first, last in _runs(silent):
        start, end = first * hop, min(len(audio), (last + 1) * hop)
        if end - start <= max_silence * sample_rate:
            continue
        if start == 0 and end >= len(audio):
            continue  # all silence: nothing to shorten it towards
        # Leading silence keeps only the half before the sound, trailing only the half after it.
        cut_start = 0 if start == 0 else start + keep_half
        cut_end = len(audio) if end >= len(audio) else end - keep_half
        if cut_end > cut_start:
            cuts.append((cut_start, cut_end))
    if not cuts:
        return np.asarray(audio, dtype=np.float32), TimeMap.identity(len(audio))
    return _splice(audio, sample_rate, cuts)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Return (first, last) indices of each run of True in ``mask``."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _splice(audio: np.ndarray, sample_rate: int, cuts: list[tuple[int, int]]) -> tuple[np.ndarray, TimeMap]:
    """Remove ``cuts`` (sorted source ranges) and fade in/out at each join."""
    fade = max(1, round(FADE_SECONDS * sample_rate))
    pieces: list[np.ndarray] = []
    mapping: list[tuple[int, int, int]] = []
    position, processed = 0, 0
    for cut_start, cut_end in [*cuts, (len(audio), len(audio))]:
        if cut_start > position:
            piece = np.array(audio[position:cut_start], dtype=np.float32)
            n = min(fade, len(piece) // 2)
            if n and position > 0:
                piece[:n] *= np.linspace(0.0, 1.0, n, dtype=np.float32)
            if n and cut_start < len(audio):
                piece[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
            pieces.append(piece)
            mapping.append((processed, position, len(piece)))
            processed += len(piece)
        position = cut_end
    if not pieces:
        return np.zeros(0, dtype=np.float32), TimeMap.identity(0)
    return np.concatenate(pieces), TimeMap(tuple(mapping))

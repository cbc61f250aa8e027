"""Convert long inputs in windows cut at quiet points, so memory stays bounded and there are no seams.

RVC's scheme (``Pipeline.pipeline``: ``x_pad``, ``x_query``, ``x_center``, ``x_max``), made exact:

- inputs up to ``max_seconds`` are converted in one pass;
- longer ones are cut near every multiple of ``center_seconds``, at the quietest 20 ms within
  ``query_seconds`` either side (RVC takes the smallest |sum of samples| over 10 ms, which is
  also small in the middle of a loud vowel; we take the smallest energy);
- each window is converted with ``pad_seconds`` of real (or reflected, at the ends) audio on both
  sides, and that context is trimmed from its output, so every kept sample was rendered with
  context on both sides; the kept parts abut exactly.

All cuts fall on frame boundaries (160 samples at 16 kHz), so the windows' frames line up with
the single-pass frames and the output has exactly the input's duration. Where RVC drops the
last content frame or two of each window (its output drifts by up to 20 ms per window), the
caller pads to whole frames (see :class:`Window`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000  # windows are planned on the 16 kHz input
HOP = 160  # samples per frame at 16 kHz: 100 frames/s, the f0 and generator frame rate
_MIN_PAD_SECONDS = 0.05  # context must cover the few frames the content encoder leaves short


@dataclass(frozen=True)
class WindowConfig:
    """How long inputs are cut (RVC's x_pad, x_query, x_center, x_max, in seconds)."""

    pad_seconds: float = 1.0  # context converted on each side of a window and trimmed away
    query_seconds: float = 6.0  # a cut may move this far from its nominal place to find a quiet point
    center_seconds: float = 38.0  # nominal distance between cuts
    max_seconds: float = 41.0  # inputs up to this long are converted in one pass

    def __post_init__(self) -> None:
        if self.pad_seconds < _MIN_PAD_SECONDS:
            raise ValueError(f"pad_seconds must be at least {_MIN_PAD_SECONDS}, got {self.pad_seconds}")
        if self.query_seconds < 0 or self.center_seconds <= 2 * self.query_seconds:
            raise ValueError(
                "need 0 <= query_seconds < center_seconds / 2 so that cuts stay in order, "
                f"got query {self.query_seconds}, center {self.center_seconds}"
            )
        if self.max_seconds < self.center_seconds:
            raise ValueError(f"max_seconds {self.max_seconds} must be at least center_seconds {self.center_seconds}")

    @classmethod
    def rvc(cls, half_precision: bool) -> WindowConfig:
        """Return RVC's settings: 3/10/60/65 s in half precision (6 GB GPUs), else 1/6/38/41 s."""
        return cls(3.0, 10.0, 60.0, 65.0) if half_precision else cls(1.0, 6.0, 38.0, 41.0)

    @property
    def pad_samples(self) -> int:
        return round(self.pad_seconds * SAMPLE_RATE / HOP) * HOP

    @property
    def longest_window_seconds(self) -> float:
        """Return the most input one window converts, context included: the memory bound."""
        one_pass = self.max_seconds
        windowed = self.center_seconds + 2 * self.query_seconds
        return max(one_pass, windowed) + 2 * self.pad_seconds + HOP / SAMPLE_RATE


@dataclass(frozen=True)
class Window:
    """One window of the 16 kHz input: the part it keeps and the context converted around it.

    start, end : kept input samples [start, end); start is a multiple of HOP
    pad : context samples on each side (a multiple of HOP)
    The window converts ``segment_frames`` frames (``segment_frames * HOP`` samples of the padded
    input, from ``start``): the kept frames, rounded up to whole frames, plus the context.
    """

    start: int
    end: int
    pad: int

    @property
    def frames(self) -> int:
        """Return the kept frames (the last window's partial frame counts as one)."""
        return -(-(self.end - self.start) // HOP)

    @property
    def context_frames(self) -> int:
        return self.pad // HOP

    @property
    def segment_frames(self) -> int:
        return self.frames + 2 * self.context_frames

    @property
    def segment_samples(self) -> int:
        return self.segment_frames * HOP

    def segment(self, padded: np.ndarray) -> np.ndarray:
        """Return this window's input with context: float32 [segment_samples], from ``pad_input``'s output."""
        return padded[self.start : self.start + self.segment_samples]

    def trim(self, output: np.ndarray, hop: int) -> np.ndarray:
        """Return the kept part of the window's output (``hop`` output samples per frame): [frames * hop]."""
        first = self.context_frames * hop
        kept = output[first : first + self.frames * hop]
        if len(kept) != self.frames * hop:
            raise ValueError(f"window output of {len(output)} samples is shorter than its {self.segment_frames} frames")
        return kept


def quiet_cuts(audio: np.ndarray, config: WindowConfig) -> list[int]:
    """Return where to cut ``audio`` (16 kHz, [N]): sample positions, multiples of HOP, increasing.

    None when the input is at most ``max_seconds`` long. Otherwise one cut near each multiple of
    ``center_seconds``: the frame boundary within ``query_seconds`` whose surrounding 20 ms holds
    the least energy. Only the searched stretches are
    read, so planning needs no copy of the input.
    """
    n = len(audio)
    if n <= config.max_seconds * SAMPLE_RATE:
        return []
    center = round(config.center_seconds * SAMPLE_RATE)
    query = round(config.query_seconds * SAMPLE_RATE)
    last_boundary = (n - 1) // HOP  # a cut must leave at least one sample after it
    cuts: list[int] = []
    for nominal in range(center, n, center):
        low = max(-(-(nominal - query) // HOP), (cuts[-1] // HOP + 1) if cuts else 1)
        high = min((nominal + query) // HOP, last_boundary)
        if high < low:
            continue
        # Energy of [k*HOP - HOP, k*HOP + HOP) for k in low..high, from whole 10 ms blocks.
        stretch = np.asarray(audio[(low - 1) * HOP : (high + 1) * HOP], dtype=np.float64)
        blocks = np.square(stretch).reshape(-1, HOP).sum(axis=1)
        energy = blocks[:-1] + blocks[1:]
        cuts.append((low + int(np.argmin(energy))) * HOP)
    return cuts


def plan_windows(audio: np.ndarray, config: WindowConfig) -> list[Window]:
    """Return the windows that convert ``audio`` (16 kHz, [N], N > 0): kept parts that tile [0, N)."""
    n = len(audio)
    if n == 0:
        raise ValueError("cannot plan windows for empty audio")
    edges = [0, *quiet_cuts(audio, config), n]
    return [Window(start, end, config.pad_samples) for start, end in itertools.pairwise(edges)]


def pad_input(audio: np.ndarray, pad: int) -> np.ndarray:
    """Reflect-pad ``audio`` by ``pad`` samples before and by ``pad`` plus the last partial frame after.

    Every window's segment (see :meth:`Window.segment`) then lies inside the result, as RVC pads.
    """
    n = len(audio)
    tail = -n % HOP
    clip = np.asarray(audio, dtype=np.float32)
    if n == 1:  # a one-sample clip has nothing to reflect
        return np.pad(clip, (pad, pad + tail), mode="edge")
    return np.pad(clip, (pad, pad + tail), mode="reflect")


def output_length(n_samples: int, hop: int) -> int:
    """Return the output samples for ``n_samples`` at 16 kHz, at ``hop`` output samples per 10 ms frame."""
    return round(n_samples * hop / HOP)


Render = Callable[[np.ndarray, Window], np.ndarray]


def run_windowed(
    audio: np.ndarray,
    config: WindowConfig,
    render: Render,
    hop: int,
    on_window: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, list[Window]]:
    """Convert ``audio`` window by window and stitch the kept parts.

    audio : float32 [N] at 16 kHz
    render : (segment float32 [segment_samples], window) -> output [>= segment_frames * hop]
    hop : output samples per frame (the model's sample_rate / 100)
    on_window : called with (windows done, windows in all) after each window
    returns : (output float32 [round(N * hop / 160)], the windows)
    """
    windows = plan_windows(audio, config)
    padded = pad_input(audio, config.pad_samples)
    total_frames = sum(window.frames for window in windows)
    out = np.empty(total_frames * hop, dtype=np.float32)
    filled = 0
    for done, window in enumerate(windows, start=1):
        kept = window.trim(np.asarray(render(window.segment(padded), window), dtype=np.float32), hop)
        out[filled : filled + len(kept)] = kept
        filled += len(kept)
        if on_window is not None:
            on_window(done, len(windows))
    return out[: output_length(len(audio), hop)], windows

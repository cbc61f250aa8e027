"""The f0 fed to the generator: estimated, shifted by semitones, optionally replaced from an f0 file.

As RVC's ``Pipeline.get_f0``: the estimate (100 frames/s at 16 kHz) is multiplied by
``2 ** (semitones / 12)``; an f0 file then replaces the frames it covers with its own values (not
shifted, as RVC does: the file gives the pitch wanted); harvest's track is median-filtered over 3
frames (RVC's default ``filter_radius`` 3). The generator takes both the f0 in Hz (for its sine
source) and the coarse 1..255 pitch (for its prior).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from rvc.errors import UserError
from rvc.f0 import F0Estimator, coarse_f0

FRAMES_PER_SECOND = 100
MAX_F0_HZ = 20000  # the top of human hearing: no voice sings near it
_SEPARATOR = re.compile(r"[,;\s]+")


def shift_semitones(f0_hz: np.ndarray, semitones: float) -> np.ndarray:
    """Return ``f0 * 2 ** (semitones / 12)`` as float32; unvoiced frames (0 Hz) stay 0."""
    return (np.asarray(f0_hz, dtype=np.float64) * 2.0 ** (semitones / 12.0)).astype(np.float32)


def read_f0_file(path: str | Path) -> np.ndarray:
    """Read an f0 curve as RVC does: one ``time,Hz`` pair per line (seconds; 0 Hz = unvoiced).

    Commas, semicolons or whitespace separate the two values; blank lines and lines starting
    with ``#`` are skipped. Returns float64 [K x 2] sorted by time. Raises UserError naming the
    file and line for anything else.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the f0 file ({exc})") from exc
    rows: list[tuple[float, float]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part for part in _SEPARATOR.split(line) if part]
        try:
            time, hz = (float(part) for part in parts)
        except ValueError:
            raise UserError(f"{path}, line {number}: expected 'seconds,Hz' (e.g. '0.51,220.0'), got {line!r}") from None
        if not (np.isfinite(time) and np.isfinite(hz)) or time < 0 or hz < 0:
            raise UserError(f"{path}, line {number}: time and f0 must be finite and >= 0, got {line!r}")
        if hz > MAX_F0_HZ:  # 1e39 Hz is infinite in the generator's float32: a clip of full-scale noise, said done
            raise UserError(
                f"{path}, line {number}: f0 {hz:g} Hz is no pitch (at most {MAX_F0_HZ} Hz); the second value of "
                f"a line is the pitch in Hz, got {line!r}"
            )
        rows.append((time, hz))
    if not rows:
        raise UserError(f"{path}: the f0 file holds no 'seconds,Hz' lines")
    curve = np.array(rows, dtype=np.float64)
    return curve[np.argsort(curve[:, 0], kind="stable")]


def apply_f0_curve(f0_hz: np.ndarray, curve: np.ndarray, first_frame: int) -> np.ndarray:
    """Replace the frames the curve covers with its linear interpolation.

    f0_hz : float32 [T], frame i at time (first_frame + i) / 100 s of the input (first_frame < 0
    for context before the input's start); curve : [K x 2] (seconds, Hz), sorted by time.
    Frames before the curve's first time or after its last keep their estimate.
    """
    times = (first_frame + np.arange(len(f0_hz))) / FRAMES_PER_SECOND
    covered = (times >= curve[0, 0]) & (times <= curve[-1, 0])
    out = np.array(f0_hz, dtype=np.float32)
    out[covered] = np.interp(times[covered], curve[:, 0], curve[:, 1]).astype(np.float32)
    return out


def estimate_f0(estimator: F0Estimator, segment: np.ndarray, n_frames: int) -> np.ndarray:
    """Return the estimator's f0 of a 16 kHz segment as float32 [n_frames] (cropped or zero-padded)."""
    f0 = np.asarray(estimator.estimate(segment), dtype=np.float32)
    if estimator.name == "harvest":
        from scipy import signal

        f0 = signal.medfilt(f0, 3).astype(np.float32)  # RVC: filter_radius 3 removes harvest's one-frame jumps
    if len(f0) >= n_frames:
        return f0[:n_frames]
    return np.concatenate([f0, np.zeros(n_frames - len(f0), dtype=np.float32)])


def generator_pitch(
    f0_hz: np.ndarray,
    semitones: float = 0.0,
    curve: np.ndarray | None = None,
    first_frame: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return what the generator takes for an estimated f0 track: (coarse int64 [T], f0 float32 [T] Hz).

    The estimate is shifted by ``semitones``; then ``curve`` (from :func:`read_f0_file`), if any,
    replaces the frames it covers (frame i is at (first_frame + i) / 100 s of the input).
    """
    f0 = shift_semitones(f0_hz, semitones)
    if curve is not None:
        f0 = apply_f0_curve(f0, curve, first_frame)
    return coarse_f0(f0), f0

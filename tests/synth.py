"""Synthetic speech-like audio for the tests: harmonic tones with moving pitch, noise, silences."""

from __future__ import annotations

import numpy as np


def harmonic_tone(
    seconds: float,
    sample_rate: int,
    f0_start: float = 140.0,
    f0_end: float | None = None,
    vibrato_hz: float = 0.0,
    vibrato_cents: float = 0.0,
    n_harmonics: int = 12,
    amplitude: float = 0.5,
    noise_db: float = -40.0,
    seed: int = 0,
) -> np.ndarray:
    """Return a voiced-like tone (float32, mono) whose f0 glides from f0_start to f0_end.

    Harmonics fall off at 6 dB/octave, like a glottal source; a little noise is added.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0_end = f0_start if f0_end is None else f0_end
    f0 = np.geomspace(f0_start, f0_end, n) if n else np.zeros(0)
    if vibrato_hz and vibrato_cents:
        f0 = f0 * 2.0 ** (vibrato_cents / 1200.0 * np.sin(2 * np.pi * vibrato_hz * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    signal = np.zeros(n)
    for k in range(1, n_harmonics + 1):
        audible = (k * f0) < (sample_rate / 2 - 200)
        signal += audible * np.sin(k * phase) / k
    peak = np.max(np.abs(signal)) if n else 1.0
    signal = amplitude * signal / (peak or 1.0)
    signal += 10 ** (noise_db / 20) * rng.standard_normal(n)
    return signal.astype(np.float32)


def silence(seconds: float, sample_rate: int, noise_db: float = -70.0, seed: int = 1) -> np.ndarray:
    """Near-silence: very quiet noise, as in a real room."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    return (10 ** (noise_db / 20) * rng.standard_normal(n)).astype(np.float32)


def speech_like(
    sample_rate: int,
    phrases: tuple[float, ...] = (2.5, 3.5, 2.0),
    gap_seconds: float = 0.8,
    seed: int = 0,
) -> np.ndarray:
    """Return phrases of moving-pitch tones separated by silences (float32, mono).

    Total voiced time is ``sum(phrases)``; there is ``gap_seconds`` of silence
    before, between and after the phrases.
    """
    rng = np.random.default_rng(seed)
    parts = [silence(gap_seconds, sample_rate, seed=seed)]
    for i, length in enumerate(phrases):
        start = float(rng.uniform(110, 220))
        end = float(start * rng.uniform(0.7, 1.4))
        parts.append(harmonic_tone(length, sample_rate, start, end, vibrato_hz=5.0, vibrato_cents=30, seed=seed + i))
        parts.append(silence(gap_seconds, sample_rate, seed=seed + 100 + i))
    return np.concatenate(parts)

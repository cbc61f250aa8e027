"""RMS mix: give the converted audio the input's loudness envelope, in part or in full (RVC's change_rms).

Both signals' RMS is taken over 1 s frames every 0.5 s (librosa's ``feature.rms`` with
``frame_length = rate // 2 * 2``, ``hop = rate // 2``, centred, zero-padded), stretched linearly to
the output's length, and the output is scaled by ``rms_in ** (1 - rate) * rms_out ** (rate - 1)``:
rate 1 keeps the output as it is, rate 0 gives it the input's envelope.
"""

from __future__ import annotations

import numpy as np

_CHUNK_BLOCKS = 256  # half-second blocks squared at a time
_FLOOR = 1e-6  # RVC's floor on the output's RMS: silence must not divide by zero


def frame_rms(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return librosa's centred RMS with 1 s frames (``sample_rate // 2 * 2`` samples) every 0.5 s.

    audio : float [N] -> float64 [1 + N // (sample_rate // 2)]
    """
    hop = sample_rate // 2
    frames = 1 + len(audio) // hop
    # librosa centres the frames (frame_length // 2 = hop zeros in front), so frame t covers padded
    # samples [t*hop, t*hop + 2*hop): block t-1 and block t of the audio, block -1 being the padding.
    energy = np.zeros(frames + 1, dtype=np.float64)
    for first in range(0, len(audio), _CHUNK_BLOCKS * hop):  # in chunks: no float64 copy of an hour of audio
        chunk = np.asarray(audio[first : first + _CHUNK_BLOCKS * hop], dtype=np.float64)
        tail = -len(chunk) % hop
        sums = np.square(np.pad(chunk, (0, tail))).reshape(-1, hop).sum(axis=1)
        block = first // hop + 1
        energy[block : block + len(sums)] = sums
    return np.sqrt((energy[:-1] + energy[1:]) / (2 * hop))


def _stretch(values: np.ndarray, length: int) -> np.ndarray:
    """Resize linearly to ``length`` as ``torch.nn.functional.interpolate(mode="linear")`` does."""
    positions = (np.arange(length) + 0.5) * (len(values) / length) - 0.5
    return np.interp(np.clip(positions, 0, len(values) - 1), np.arange(len(values)), values)


def mix_rms(source: np.ndarray, source_rate: int, target: np.ndarray, target_rate: int, rate: float) -> np.ndarray:
    """Return ``target`` with its loudness envelope blended towards ``source``'s.

    source : the input, float [N] at ``source_rate``; target : the output, float [M] at ``target_rate``
    rate : share of the output's own envelope, 0..1 (1 returns ``target`` unchanged)
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"RMS mix rate must be in 0..1, got {rate}")
    target = np.asarray(target, dtype=np.float32)
    if rate >= 1.0 or len(target) == 0 or len(source) == 0:
        return target
    rms_in = _stretch(frame_rms(source, source_rate), len(target))
    rms_out = np.maximum(_stretch(frame_rms(target, target_rate), len(target)), _FLOOR)
    gain = np.power(rms_in, 1.0 - rate) * np.power(rms_out, rate - 1.0)
    return (target * gain).astype(np.float32)

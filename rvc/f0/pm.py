"""Praat's autocorrelation pitch ("pm" in RVC) through parselmouth, on the CPU.

Settings as RVC: ``to_pitch_ac`` with a 10 ms time step, voicing threshold
0.6 and the f0 search range as pitch floor and ceiling.

Alignment: Praat centres its frames in the sound, so their times depend on the
clip's length. We pad the clip with zeros so that Praat's frames fall exactly
on samples ``i * 160`` of the clip and there are ``N // 160 + 1`` of them:
``lead`` samples before it, where ``2 * lead`` is the analysis window (3 periods
of the pitch floor) plus half a frame step, and enough after it that the
padded length is ``2 * lead + (n_frames - 1) * 160``. Praat then makes exactly
n_frames frames, the first at ``lead`` samples. This also lets clips shorter
than the analysis window be analysed (their frames come out unvoiced).
"""

from __future__ import annotations

import numpy as np

from rvc.f0 import HOP, SAMPLE_RATE, n_frames
from rvc.f0.frames import as_clip, fit_length

VOICING_THRESHOLD = 0.6  # RVC's pm setting
_PERIODS_PER_WINDOW = 3.0  # Praat's window for the ac method (not "very accurate")


class PmEstimator:
    """Praat autocorrelation f0 estimator (RVC's "pm"); CPU only."""

    name = "pm"
    uses_gpu = False

    def __init__(self, f0_min: float = 50.0, f0_max: float = 1100.0) -> None:
        self.f0_min = f0_min
        self.f0_max = f0_max

    def estimate(self, audio: np.ndarray) -> np.ndarray:
        """Return f0 in Hz: float32 (N,) at 16 kHz -> float32 (N // 160 + 1,), 0 = unvoiced."""
        import parselmouth

        clip = as_clip(audio)
        frames = n_frames(len(clip))
        window = _PERIODS_PER_WINDOW / self.f0_min * SAMPLE_RATE
        lead = round((window + HOP / 2) / 2)
        trail = 2 * lead + (frames - 1) * HOP - lead - len(clip)
        padded = np.concatenate([np.zeros(lead), clip.astype(np.float64), np.zeros(trail)])
        pitch = parselmouth.Sound(padded, SAMPLE_RATE).to_pitch_ac(
            time_step=HOP / SAMPLE_RATE,
            voicing_threshold=VOICING_THRESHOLD,
            pitch_floor=self.f0_min,
            pitch_ceiling=self.f0_max,
        )
        return fit_length(pitch.selected_array["frequency"], len(clip))

    def estimate_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Return ``estimate`` of each clip (one after another; the caller parallelises CPU methods)."""
        return [self.estimate(audio) for audio in audios]

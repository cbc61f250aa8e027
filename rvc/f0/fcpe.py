"""FCPE pitch estimation with torchfcpe's bundled model (``spawn_bundled_infer_model``).

Settings as RVC and Applio use it: the "local_argmax" decoder, voicing
threshold 0.006. Frames below ``f0_min`` are unvoiced; torchfcpe clamps f0
above ``f0_max`` to ``f0_max``.

Alignment: torchfcpe already returns ``N // 160 + 1`` frames, and its frame
``i`` follows the pitch at sample ``i * 160``: on a tone gliding up then down
an octave, the lag measured against the true pitch was under 0.01 frame (its
mel window sits 80 samples later, but the model was trained that way; shifting
the input by 80 samples made it lag by half a frame). In a padded batch each
clip keeps its own first ``N // 160 + 1`` frames; the zeros after a shorter
clip reach the network's receptive field, so its last few frames can differ
slightly from a run of that clip alone (by up to 2.6 Hz on synthetic tones).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch

from rvc.f0.device import resolve_device
from rvc.f0.frames import as_clip, fit_length, length_batches

SAMPLE_RATE = 16000
HOP = 160
THRESHOLD = 0.006  # RVC's and Applio's FCPE voicing threshold
_CUDA_BATCH_SAMPLES = 16000 * 600  # padded audio per forward pass on a GPU (10 minutes)


def load_fcpe(device: torch.device) -> Any:
    """Return torchfcpe's bundled inference model (an untyped ``InferCFNaiveMelPE``) on ``device``."""
    from torchfcpe import spawn_bundled_infer_model

    # torchfcpe prints its config warnings to stdout; they say nothing to our users.
    with contextlib.redirect_stdout(io.StringIO()):
        return spawn_bundled_infer_model(device=str(device))


class FcpeEstimator:
    """FCPE f0 estimator; batches clips (zero-padded to the longest) on a GPU."""

    name = "fcpe"

    def __init__(self, device: str = "cpu", f0_min: float = 50.0, f0_max: float = 1100.0) -> None:
        self.device = resolve_device(device)
        self.uses_gpu = self.device.type == "cuda"
        self.f0_min = f0_min
        self.f0_max = f0_max
        self.model = load_fcpe(self.device)

    def estimate(self, audio: np.ndarray) -> np.ndarray:
        """Return f0 in Hz: float32 (N,) at 16 kHz -> float32 (N // 160 + 1,), 0 = unvoiced."""
        return self._run([as_clip(audio)])[0]

    def estimate_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Return the f0 of each clip: padded batches of similar lengths on a GPU, one by one on the CPU."""
        clips = [as_clip(a) for a in audios]
        if not self.uses_gpu:
            return [self._run([clip])[0] for clip in clips]
        results: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(clips)
        for batch in length_batches([len(c) for c in clips], _CUDA_BATCH_SAMPLES):
            for index, f0 in zip(batch, self._run([clips[i] for i in batch]), strict=True):
                results[index] = f0
        return results

    @torch.inference_mode()
    def _run(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Estimate clips as one zero-padded batch; return each clip's f0 in the same order."""
        width = max(1, max(len(c) for c in clips))
        audio = np.zeros((len(clips), width), dtype=np.float32)
        for row, clip in enumerate(clips):
            audio[row, : len(clip)] = clip
        # torchfcpe prints a warning for every input outside [-1, 1]; such peaks are clipping anyway.
        wave = torch.from_numpy(audio).to(self.device).clamp(-1.0, 1.0).unsqueeze(-1)
        f0 = self.model.infer(
            wave,
            sr=SAMPLE_RATE,
            decoder_mode="local_argmax",
            threshold=THRESHOLD,
            f0_min=self.f0_min,
            f0_max=self.f0_max,
            interp_uv=False,
        ).squeeze(-1)
        f0 = torch.where(f0 >= self.f0_min, f0, 0.0)
        f0_host = f0.float().cpu().numpy()
        return [fit_length(f0_host[row], len(clip)) for row, clip in enumerate(clips)]

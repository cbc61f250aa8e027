"""Pitch (f0) estimation: one module per method behind one Protocol.

Every method turns a float32 mono 16 kHz clip of ``N`` samples into float32 f0
in Hz at 100 frames/s, exactly ``n_frames(N)`` values, frame ``i`` centred on
sample ``i * HOP``; 0 means unvoiced. ``coarse_f0`` maps that to RVC's 1..255.

This module stays light (numpy only): the method modules, which import torch or
the pitch libraries, are imported by ``create_f0_estimator`` when it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from rvc.choices import F0_METHODS
from rvc.errors import UserError

if TYPE_CHECKING:
    from rvc.experiment import AssetDir

SAMPLE_RATE = 16000
HOP = 160  # 100 frames/s at 16 kHz

# RVC's coarse pitch: the mel scale of 50..1100 Hz spread over bins 1..255.
_COARSE_BINS = 256
_COARSE_F0_MIN = 50.0
_COARSE_F0_MAX = 1100.0


def n_frames(n_samples: int) -> int:
    """Return the number of f0 frames of a 16 kHz clip of ``n_samples`` samples (RVC's ``N // 160 + 1``)."""
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    return n_samples // HOP + 1


def _hz_to_mel(f0_hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(f0_hz / 700.0)


def coarse_f0(f0_hz: np.ndarray) -> np.ndarray:
    """Quantise f0 to RVC's coarse pitch: (T,) Hz -> (T,) int64 in 1..255.

    The mel value of 50..1100 Hz is spread linearly over 1..255; anything at or
    below 50 Hz, unvoiced frames (0 Hz) and non-finite values give 1, anything
    above 1100 Hz gives 255 (as RVC's ``extract_f0_print.py`` does).
    """
    f0 = np.asarray(f0_hz, dtype=np.float64)
    f0 = np.where(np.isfinite(f0) & (f0 > 0), f0, 0.0)
    mel_min, mel_max = _hz_to_mel(np.array([_COARSE_F0_MIN, _COARSE_F0_MAX]))
    mel = _hz_to_mel(f0)
    scaled = (mel - mel_min) * (_COARSE_BINS - 2) / (mel_max - mel_min) + 1
    scaled = np.where(mel > 0, scaled, 1.0)
    return np.rint(np.clip(scaled, 1, _COARSE_BINS - 1)).astype(np.int64)


class F0Estimator(Protocol):
    """A pitch estimator for 16 kHz mono clips."""

    name: str
    uses_gpu: bool  # True when its maths runs on a CUDA device: the caller then batches clips

    def estimate(self, audio: np.ndarray) -> np.ndarray:
        """Return f0 in Hz of one clip: float32 (N,) -> float32 (n_frames(N),), 0 = unvoiced."""
        ...

    def estimate_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Return ``estimate(a)`` for each clip; GPU methods run them as padded batches."""
        ...


def create_f0_estimator(
    method: str,
    assets: AssetDir,
    device: str = "cpu",
    f0_min: float = 50.0,
    f0_max: float = 1100.0,
) -> F0Estimator:
    """Build the estimator of ``method`` (one of ``F0_METHODS``) searching ``f0_min..f0_max`` Hz.

    ``device`` ("cpu", "cuda", "cuda:N" or "auto") matters for the neural
    methods (rmvpe, crepe, crepe-tiny, fcpe); harvest, dio and pm always run on
    the CPU. rmvpe reads ``assets.rmvpe_weights`` and downloads it when missing.
    """
    if method not in F0_METHODS:
        raise UserError(f"unknown f0 method {method!r}: choose one of {', '.join(F0_METHODS)}")
    if not 0 < f0_min < f0_max:
        raise UserError(f"invalid f0 range {f0_min}..{f0_max} Hz: need 0 < f0 min < f0 max (e.g. 50 and 1100)")
    _require_library(method)
    if method == "rmvpe":
        from rvc.f0.rmvpe import RmvpeEstimator

        return RmvpeEstimator.from_assets(assets, device=device, f0_min=f0_min, f0_max=f0_max)
    if method in ("crepe", "crepe-tiny"):
        from rvc.f0.crepe import CrepeEstimator

        capacity = "tiny" if method == "crepe-tiny" else "full"
        return CrepeEstimator(capacity, device=device, f0_min=f0_min, f0_max=f0_max)
    if method == "fcpe":
        from rvc.f0.fcpe import FcpeEstimator

        return FcpeEstimator(device=device, f0_min=f0_min, f0_max=f0_max)
    if method in ("harvest", "dio"):
        from rvc.f0.world import WorldEstimator

        return WorldEstimator(method, f0_min=f0_min, f0_max=f0_max)
    from rvc.f0.pm import PmEstimator

    return PmEstimator(f0_min=f0_min, f0_max=f0_max)


# The pitch libraries a method imports (module, pip package); rmvpe needs torch alone.
_LIBRARIES = {
    "crepe": ("torchcrepe", "torchcrepe"),
    "crepe-tiny": ("torchcrepe", "torchcrepe"),
    "fcpe": ("torchfcpe", "torchfcpe"),
    # pyworld itself has no Linux or macOS wheels; pyworld-prebuilt installs the same module as wheels
    "harvest": ("pyworld", "pyworld-prebuilt"),
    "dio": ("pyworld", "pyworld-prebuilt"),
    "pm": ("parselmouth", "praat-parselmouth"),
}


def _require_library(method: str) -> None:
    """Refuse a method whose library is not installed before any clip is read (rather than fail every clip)."""
    import importlib.util

    if method not in _LIBRARIES:
        return
    module, package = _LIBRARIES[method]
    if importlib.util.find_spec(module) is None:
        others = ", ".join(m for m in F0_METHODS if m not in _LIBRARIES or _LIBRARIES[m][0] != module)
        raise UserError(
            f"pitch method {method!r} needs the {package} package, which is not installed: "
            f"`pip install -r requirements.txt` (or `pip install {package}`), or pick another method ({others})"
        )

"""Harvest and DIO pitch estimation with pyworld (the WORLD vocoder), on the CPU.

As RVC's training extraction does: a 10 ms frame period (frame ``i`` at
``i * 160`` samples, ``N // 160 + 1`` frames), the f0 search range as WORLD's
floor and ceiling, and StoneMask refinement of the raw estimate for both methods.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

from rvc.f0 import HOP, SAMPLE_RATE
from rvc.f0.frames import as_clip, fit_length

FRAME_PERIOD_MS = 1000.0 * HOP / SAMPLE_RATE


@functools.cache
def pyworld_module() -> ModuleType:
    """Return the pyworld extension module.

    pyworld 0.3.5's ``__init__`` only imports ``pkg_resources`` to read its own
    version, and setuptools 81+ no longer ships ``pkg_resources``. When that
    import fails we load pyworld's compiled module straight from its package
    folder, which needs nothing else.
    """
    try:
        import pyworld

        return pyworld
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise
    spec = importlib.util.find_spec("pyworld")
    folders = list(spec.submodule_search_locations or []) if spec else []
    compiled = [path for folder in folders for path in Path(folder).glob("pyworld.*.so")]
    compiled += [path for folder in folders for path in Path(folder).glob("pyworld.*.pyd")]
    if not compiled:
        raise ModuleNotFoundError("pyworld's compiled module was not found; reinstall pyworld", name="pyworld")
    extension_spec = importlib.util.spec_from_file_location("pyworld", compiled[0])
    if extension_spec is None or extension_spec.loader is None:
        raise ModuleNotFoundError(f"cannot load {compiled[0]}", name="pyworld")
    module = importlib.util.module_from_spec(extension_spec)
    extension_spec.loader.exec_module(module)
    return module


class WorldEstimator:
    """Harvest (slow, robust) or DIO (fast) f0 via pyworld, refined with StoneMask; CPU only."""

    uses_gpu = False

    def __init__(self, method: str = "harvest", f0_min: float = 50.0, f0_max: float = 1100.0) -> None:
        if method not in ("harvest", "dio"):
            raise ValueError(f"pyworld method must be 'harvest' or 'dio', got {method!r}")
        self.name = method
        self.f0_min = f0_min
        self.f0_max = f0_max

    def estimate(self, audio: np.ndarray) -> np.ndarray:
        """Return f0 in Hz: float32 (N,) at 16 kHz -> float32 (N // 160 + 1,), 0 = unvoiced."""
        clip = as_clip(audio)
        if len(clip) == 0:  # WORLD indexes past the end of an empty signal
            return fit_length(np.zeros(0), 0)
        world = pyworld_module()
        signal = clip.astype(np.float64)
        track = world.harvest if self.name == "harvest" else world.dio
        f0, times = track(signal, SAMPLE_RATE, f0_floor=self.f0_min, f0_ceil=self.f0_max, frame_period=FRAME_PERIOD_MS)
        f0 = world.stonemask(signal, f0, times, SAMPLE_RATE)
        return fit_length(f0, len(clip))

    def estimate_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Return ``estimate`` of each clip (one after another; the caller parallelises CPU methods)."""
        return [self.estimate(audio) for audio in audios]

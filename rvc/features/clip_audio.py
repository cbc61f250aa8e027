"""Reading the prepared 16 kHz clips for the extract stage: one at a time, or a batch ahead of the GPU."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rvc.experiment import Experiment


def read_clip_16k(path: Path) -> np.ndarray:
    """Read a prepared 16 kHz clip as float32 mono (N,)."""
    import soundfile as sf

    audio, sample_rate = sf.read(str(path), dtype="float32", always_2d=False)
    if sample_rate != 16000:
        raise ValueError(f"{path} is {sample_rate} Hz, expected 16000 Hz: prepare the dataset again")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return np.ascontiguousarray(audio, dtype=np.float32)


def batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _load_batch(load: Callable[[str], np.ndarray | Exception], names: list[str]) -> list[np.ndarray | Exception]:
    return [load(name) for name in names]


def prefetched(
    batches: Iterator[list[str]], load: Callable[[str], np.ndarray | Exception]
) -> Iterator[tuple[list[str], list[np.ndarray | Exception]]]:
    """Yield each batch with its audio, reading the next batch on a thread while the GPU works."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = None
        for batch in batches:
            future = pool.submit(_load_batch, load, batch)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (batch, future)
        if pending is not None:
            yield pending[0], pending[1].result()


def safe_loader(experiment: Experiment) -> Callable[[str], np.ndarray | Exception]:
    def load(name: str) -> np.ndarray | Exception:
        try:
            return read_clip_16k(experiment.clip_audio_16k(name))
        except Exception as error:  # reported per clip by the caller
            return error

    return load

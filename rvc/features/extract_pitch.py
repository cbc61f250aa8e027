"""The extract stage's pitch part: f0 of each clip, batched on a GPU or in a pool of CPU processes."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rvc.experiment import AssetDir, Experiment
from rvc.features.clip_audio import batches, prefetched, read_clip_16k, safe_loader
from rvc.fileio import atomic_save_npy
from rvc.jobs.process import worker_pool
from rvc.jobs.reporter import Reporter

if TYPE_CHECKING:
    from rvc.features.extract import ExtractOptions

# Per-process estimator for the CPU pool (built once per worker by _init_f0_worker).
_WORKER_STATE: dict[str, Any] = {}


def _init_f0_worker(method: str, assets_root: str, f0_min: float, f0_max: float, parent: int) -> None:
    from rvc.jobs.process import exit_with_parent

    exit_with_parent(parent)  # a stage killed with -9 must not leave its workers behind
    import torch

    # Each worker is one core's worth of work; torch's own thread pool would oversubscribe.
    torch.set_num_threads(1)
    from rvc.f0 import create_f0_estimator

    _WORKER_STATE["estimator"] = create_f0_estimator(method, AssetDir(Path(assets_root)), "cpu", f0_min, f0_max)


def _f0_worker(audio_path: str) -> np.ndarray | str:
    try:
        audio = read_clip_16k(Path(audio_path))
        return np.asarray(_WORKER_STATE["estimator"].estimate(audio), dtype=np.float32)
    except Exception as error:  # reported per clip; one bad clip must not stop the stage
        return f"{type(error).__name__}: {error}"


def _write_f0(experiment: Experiment, clip: str, f0_hz: np.ndarray) -> None:
    from rvc.f0 import coarse_f0

    atomic_save_npy(experiment.clip_f0(clip), f0_hz.astype(np.float32))
    atomic_save_npy(experiment.clip_f0_coarse(clip), coarse_f0(f0_hz))


def extract_pitch(
    experiment: Experiment,
    assets: AssetDir,
    clips: list[str],
    options: ExtractOptions,
    device: str,
    on_done: Callable[[str, str | None], None],
    estimator: Any,
    reporter: Reporter,
) -> None:
    """Compute f0 for ``clips``; call ``on_done(clip, error_or_None)`` for each."""
    bar = reporter.bar(f"pitch ({options.f0_method})", len(clips), "clip")
    try:
        if estimator.uses_gpu:
            load = safe_loader(experiment)
            for names, audios in prefetched(batches(clips, options.batch_size), load):
                good = [(n, a) for n, a in zip(names, audios, strict=True) if isinstance(a, np.ndarray)]
                for name, audio in zip(names, audios, strict=True):
                    if isinstance(audio, Exception):
                        on_done(name, f"unreadable 16 kHz clip: {audio}")
                if good:
                    results = estimator.estimate_batch([a for _, a in good])
                    for (name, _), f0 in zip(good, results, strict=True):
                        _write_f0(experiment, name, np.asarray(f0, dtype=np.float32))
                        on_done(name, None)
                bar.update(len(names))
            return
        # CPU methods: the pool builds its own estimator, one per worker process
        workers = options.workers or os.cpu_count() or 1
        paths = [str(experiment.clip_audio_16k(name)) for name in clips]
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # fork after torch threads exist can deadlock
        init_args = (options.f0_method, str(assets.root), options.f0_min, options.f0_max, os.getpid())
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_f0_worker, initargs=init_args)
        # On a stop or an error the workers are killed: their chunks are not waited for.
        with worker_pool(pool):
            chunksize = max(1, min(16, len(paths) // (workers * 4)))
            for name, result in zip(clips, pool.map(_f0_worker, paths, chunksize=chunksize), strict=True):
                if isinstance(result, str):
                    on_done(name, result)
                else:
                    _write_f0(experiment, name, result)
                    on_done(name, None)
                bar.update(1)
    finally:
        bar.close()

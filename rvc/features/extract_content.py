"""The extract stage's content part: the content encoder's features of each clip, in batches of equal length."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rvc.experiment import Experiment
from rvc.features.clip_audio import batches, prefetched, safe_loader
from rvc.fileio import atomic_save_npy
from rvc.jobs.reporter import Reporter

if TYPE_CHECKING:
    from rvc.features.extract import ExtractOptions


def embedder_dtype(precision: str, device: str) -> str:
    if not device.startswith("cuda") or precision == "fp32":
        return "float32"
    if precision == "fp16":
        return "float16"
    if precision == "bf16":
        return "bfloat16"
    # auto: fp16 is as fast as bf16 for HuBERT on an H100 and about 8x closer to fp32 (measured)
    return "float16"


def extract_content(
    experiment: Experiment,
    clips: list[str],
    options: ExtractOptions,
    on_done: Callable[[str, str | None], None],
    embedder: Any,
    reporter: Reporter,
) -> None:
    """Compute content features for ``clips``; call ``on_done(clip, error_or_None)`` for each."""
    import torch

    if embedder.device.type == "cpu":
        torch.set_num_threads(options.workers or os.cpu_count() or 1)
    # Sorting by length puts equal-length clips (most are exactly --chunk seconds) in the same batch,
    # so the embedder can batch them without padding.
    lengths = {name: _clip_frames(experiment, name) for name in clips}
    ordered = sorted(clips, key=lambda name: (lengths[name], name))
    embedder_name = Path(options.embedder).name if "/" in options.embedder else options.embedder
    bar = reporter.bar(f"content ({embedder_name})", len(clips), "clip")
    try:
        for names, audios in prefetched(batches(ordered, options.batch_size), safe_loader(experiment)):
            good = [(n, a) for n, a in zip(names, audios, strict=True) if isinstance(a, np.ndarray)]
            for name, audio in zip(names, audios, strict=True):
                if isinstance(audio, Exception):
                    on_done(name, f"unreadable 16 kHz clip: {audio}")
            if good:
                for name, feats in _embed_or_explain(embedder, good):
                    if isinstance(feats, str):
                        on_done(name, feats)
                        continue
                    atomic_save_npy(experiment.clip_features(name), np.asarray(feats, dtype=np.float32))
                    on_done(name, None)
            bar.update(len(names))
    finally:
        bar.close()


def _embed_or_explain(embedder: Any, clips: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray | str]]:
    """Embed a batch; when the batch is refused (one clip too short, NaNs), embed clip by clip."""
    try:
        return list(zip([n for n, _ in clips], embedder.embed_batch([a for _, a in clips]), strict=True))
    except ValueError:
        results: list[tuple[str, np.ndarray | str]] = []
        for name, audio in clips:
            try:
                results.append((name, embedder.embed(audio)))
            except ValueError as error:
                results.append((name, str(error)))
        return results


def _clip_frames(experiment: Experiment, name: str) -> int:
    import soundfile as sf

    try:
        return int(sf.info(str(experiment.clip_audio_16k(name))).frames)
    except Exception:  # an unreadable clip sorts first and is reported when it is loaded
        return 0

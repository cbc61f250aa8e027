"""Batch conversion: every audio file under a folder, converted into another folder with the same layout."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.errors import UserError

if TYPE_CHECKING:
    from rvc.infer.pipeline import ConvertOptions, VoiceConverter


@dataclass(frozen=True)
class BatchItem:
    """One file of a batch: where it came from, where it went, and how it went."""

    source: Path
    target: Path
    input_seconds: float = 0.0
    seconds: float = 0.0  # wall time
    error: str | None = None  # why it was not converted; None when it was


@dataclass
class BatchReport:
    """What a batch did, file by file, in order."""

    items: list[BatchItem] = field(default_factory=list)

    @property
    def converted(self) -> list[BatchItem]:
        return [item for item in self.items if item.error is None]

    @property
    def failed(self) -> list[BatchItem]:
        return [item for item in self.items if item.error is not None]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def plan_batch(input_dir: Path, output_dir: Path) -> list[tuple[Path, Path]]:
    """Return (source, target) for every audio file under ``input_dir`` (recursively, sorted).

    Targets keep the sub-folders and take a ``.wav`` suffix (``a/b.mp3`` -> ``OUT/a/b.wav``; when two
    sources would meet there, the full name is kept: ``OUT/a/b.mp3.wav``). Files under
    ``output_dir`` are not inputs, so converting into a sub-folder does not convert the results.
    Raises UserError when the input folder is missing or has no audio, or is the output folder.
    """
    from rvc.audio import is_audio_name

    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    if not input_dir.is_dir():
        raise UserError(f"{input_dir}: no such folder")
    if input_dir == output_dir:
        raise UserError(f"{output_dir}: the output folder must differ from the input folder (outputs are .wav files)")
    sources = sorted(
        path
        for path in input_dir.rglob("*")
        if path.is_file() and is_audio_name(path) and not _inside(path.resolve(), output_dir)
    )
    if not sources:
        raise UserError(f"{input_dir}: no audio files (wav, flac, mp3, ogg, m4a, ...) in this folder")
    stems: dict[Path, int] = {}
    for source in sources:
        plain = source.relative_to(input_dir).with_suffix(".wav")
        stems[plain] = stems.get(plain, 0) + 1
    pairs = []
    for source in sources:
        relative = source.relative_to(input_dir)
        plain = relative.with_suffix(".wav")
        target = plain if stems[plain] == 1 else relative.with_name(relative.name + ".wav")
        pairs.append((source, output_dir / target))
    return pairs


def convert_folder(
    converter: VoiceConverter,
    input_dir: Path,
    output_dir: Path,
    options: ConvertOptions,
    on_file: Callable[[int, int, BatchItem], None] | None = None,
) -> BatchReport:
    """Convert every audio file under ``input_dir`` into ``output_dir`` (see :func:`plan_batch`).

    A file that cannot be read or converted is reported (``item.error``) and the batch goes on.
    on_file : called with (files done, files in all, the item) after each file.
    """
    pairs = plan_batch(input_dir, output_dir)
    report = BatchReport()
    for done, (source, target) in enumerate(pairs, start=1):
        started = time.perf_counter()
        try:
            conversion = converter.convert_file(source, target, options)
            item = BatchItem(source, target, conversion.input_seconds, time.perf_counter() - started)
        except (UserError, ValueError) as exc:  # this file's problem: report it and go on
            item = BatchItem(source, target, seconds=time.perf_counter() - started, error=str(exc))
        report.items.append(item)
        if on_file is not None:
            on_file(done, len(pairs), item)
    return report

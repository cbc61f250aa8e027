"""The prepare stage's clip files on disk, kept in step with its manifest.

Storing a source's result in the manifest deletes the clip files it made stale; sources gone from
the inputs lose their clips; files no source owns (left by a crash or a hand edit) are swept.
Only the prepare process calls these: its workers write clip files under names no other source
can produce.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from rvc.data.manifest import Manifest, SourceEntry
from rvc.data.process import SourceJob, SourceResult
from rvc.experiment import Experiment
from rvc.jobs.reporter import Reporter

log = logging.getLogger(__name__)


class ClipFiles:
    """The clips of ``experiment`` that ``manifest`` records, at the run's target rate ``sample_rate``."""

    def __init__(self, experiment: Experiment, manifest: Manifest, sample_rate: int) -> None:
        self.experiment = experiment
        self.manifest = manifest
        self.sample_rate = sample_rate

    def record(self, job: SourceJob, result: SourceResult, key: str, base_key: str) -> None:
        """Store one result in the manifest and delete the files it made stale."""
        sr = self.sample_rate
        old = self.manifest.sources.get(job.sha256)
        if result.ok and not job.write_16k and old is not None:
            old.rates = sorted({*old.rates, sr})
            return
        if old is not None:
            keep = {c.name for c in result.clips}
            self.delete([c.name for c in old.clips if c.name not in keep], [16000])
            self.delete([c.name for c in old.clips], [r for r in old.rates if r != sr])
            self.delete([c.name for c in old.clips if c.name not in keep], [sr])
        if result.ok:
            entry = SourceEntry(
                path=str(job.path),
                key=key,
                base_key=base_key,
                ok=True,
                notes=list(result.notes),
                sample_rate=result.sample_rate,
                duration=round(result.duration, 4),
                rates=[sr],
                clips=list(result.clips),
            )
        else:
            log.warning("skipped %s: %s", job.path, result.reason)
            entry = SourceEntry(str(job.path), key, base_key, False, result.reason, retry=result.retry)
        self.manifest.sources[job.sha256] = entry

    def delete(self, names: Sequence[str], rates: Sequence[int]) -> None:
        for rate in rates:
            for name in names:
                path = self.experiment.clip_audio_16k(name) if rate == 16000 else self.experiment.clip_audio(name, rate)
                path.unlink(missing_ok=True)

    def remove_gone(self, sources: Mapping[str, Path], roots: Sequence[Path], reporter: Reporter) -> int:
        """Forget the sources not among ``sources`` and delete their clips; return how many went."""
        gone = [sha for sha in self.manifest.sources if sha not in sources]
        outside = [
            self.manifest.sources[sha].path
            for sha in gone
            if not any(Path(self.manifest.sources[sha].path).is_relative_to(root) for root in roots)
        ]
        if outside:  # not files deleted from the input folders: the dataset is being replaced; say so first
            folders = sorted({str(Path(path).parent) for path in outside})
            reporter.log(
                f"replacing the dataset: {len(outside)} source(s) prepared before from {', '.join(folders[:3])}"
                f"{' ...' if len(folders) > 3 else ''} are not under --input, so their clips are removed (the "
                "recordings themselves are not touched); to add recordings instead, give every folder as --input"
            )
        for sha in gone:
            entry = self.manifest.sources.pop(sha)
            self.delete([c.name for c in entry.clips], [16000, *entry.rates])
        return len(gone)

    def sweep(self) -> None:
        """Delete clip files no source owns (left by a crash or a hand edit) and stale temporary files."""
        entries = [e for e in self.manifest.sources.values() if e.ok]
        owned = {self.experiment.audio_16k_dir: {c.name for e in entries for c in e.clips}}
        for rate in {self.sample_rate, *(r for e in entries for r in e.rates)}:
            owned[self.experiment.audio_dir(rate)] = {c.name for e in entries if rate in e.rates for c in e.clips}
        for folder, names in owned.items():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                stale_temp = path.name.startswith(".") and path.name.endswith(".tmp")
                if stale_temp or (path.suffix == ".wav" and path.stem not in names):
                    path.unlink(missing_ok=True)

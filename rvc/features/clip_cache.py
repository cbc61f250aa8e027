"""The extract stage's per-clip cache: which settings made the files on disk, and what a run must compute.

``extract.json``'s manifest keeps, per clip, the sha256 of its 16 kHz audio and a key of the f0
settings and of the embedder that produced its files. A clip whose audio, settings or files
changed is computed again; the files of clips no longer in the dataset are removed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.experiment import Experiment
from rvc.fileio import atomic_write_json, read_json, sha256_file, sha256_json

if TYPE_CHECKING:
    from rvc.features.extract import ExtractOptions

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
# Save the manifest after this many newly computed clips, so an interrupted run keeps its work.
MANIFEST_SAVE_EVERY = 64


@dataclass
class ClipEntry:
    audio_sha256: str
    f0_key: str | None = None
    content_key: str | None = None


class Manifest:
    """Per-clip record of which settings produced the files on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, ClipEntry] = {}
        self._unsaved = 0
        try:
            data = read_json(path, default=None)
            if isinstance(data, dict) and data.get("version") == MANIFEST_VERSION:
                self.entries = {str(name): ClipEntry(**entry) for name, entry in data["entries"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            # A cache only: an interrupted copy or a hand edit costs a recomputation, not the run.
            log.warning("ignoring damaged %s (%s): extracting every clip again", path, error)
            self.entries = {}

    def save(self) -> None:
        atomic_write_json(
            self.path,
            {"version": MANIFEST_VERSION, "entries": {name: asdict(e) for name, e in sorted(self.entries.items())}},
        )
        self._unsaved = 0

    def touched(self) -> None:
        self._unsaved += 1
        if self._unsaved >= MANIFEST_SAVE_EVERY:
            self.save()


def embedder_identity(embedder: str) -> str:
    """A cache key part that changes when the embedder's weights change."""
    path = Path(embedder)
    if path.exists():
        stats = [
            (str(p.relative_to(path)) if path.is_dir() else p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in (sorted(path.rglob("*")) if path.is_dir() else [path])
            if p.is_file()
        ]
        return sha256_json({"path": str(path.resolve()), "files": stats})
    return embedder


def forget_removed_clips(experiment: Experiment, manifest: Manifest, clips: list[str]) -> int:
    """Delete the feature files and manifest entries of clips no longer in the dataset; return the files removed."""
    keep = set(clips)
    removed = 0
    for folder in (experiment.f0_dir, experiment.f0_coarse_dir, experiment.features_dir):
        if not folder.is_dir():
            continue
        for path in folder.glob("*.npy"):
            if path.stem not in keep:
                path.unlink(missing_ok=True)
                removed += 1
    for name in list(manifest.entries):
        if name not in keep:
            del manifest.entries[name]
    return removed


@dataclass
class Plan:
    """What a run computes: the clips each part needs, and the clips that failed (clip -> reason)."""

    f0_key: str  # the f0 settings' hash, kept per clip in the manifest
    content_key: str  # the embedder's hash, likewise
    need_f0: list[str] = field(default_factory=list)
    need_content: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def nothing_to_do(self) -> bool:
        return not self.need_f0 and not self.need_content

    def cached(self, clips: list[str]) -> int:
        """Count the clips this run neither computes nor lists as failed."""
        busy = set(self.need_f0) | set(self.need_content) | set(self.failed)
        return sum(1 for name in clips if name not in busy)


def plan_work(experiment: Experiment, manifest: Manifest, clips: list[str], options: ExtractOptions) -> Plan:
    """Find the clips whose audio, settings or files changed since the manifest recorded them."""
    plan = Plan(
        f0_key=sha256_json({"method": options.f0_method, "f0_min": options.f0_min, "f0_max": options.f0_max}),
        content_key=sha256_json({"embedder": embedder_identity(options.embedder)}),
    )
    for name in clips:
        audio_path = experiment.clip_audio_16k(name)
        if not audio_path.is_file():
            plan.failed[name] = f"missing {audio_path}: prepare the dataset again"
            continue
        audio_sha = sha256_file(audio_path)
        entry = manifest.entries.get(name)
        if entry is None or entry.audio_sha256 != audio_sha:
            entry = manifest.entries[name] = ClipEntry(audio_sha)
        f0_stale = entry.f0_key != plan.f0_key or not (
            experiment.clip_f0(name).is_file() and experiment.clip_f0_coarse(name).is_file()
        )
        content_stale = entry.content_key != plan.content_key or not experiment.clip_features(name).is_file()
        if f0_stale and options.only in ("all", "f0"):
            plan.need_f0.append(name)
        if content_stale and options.only in ("all", "content"):
            plan.need_content.append(name)
    return plan

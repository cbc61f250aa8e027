"""The prepare stage's cache: ``prepare_manifest.json``.

For each source (keyed by the sha256 of its bytes) it records the key of the
parameters that decide its clips, the clips themselves (name, source times,
exact sample span and gain) and the target rates whose files are on disk. A
source whose key is unchanged and whose files exist is not touched again;
one whose target rate is missing has only that rate rewritten, from the
recorded spans. File hashes are cached by (size, mtime), as git does, so an
unchanged folder is not even read again.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rvc.data.options import PrepareOptions
from rvc.data.process import ClipRecord
from rvc.fileio import atomic_write_json, read_json, sha256_json

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
# Bump when the processing code changes what a clip holds: every cached source is then redone.
PIPELINE_VERSION = 1

# Options that do not change a source's clips or its 16 kHz audio (the target rate is tracked per source).
_NOT_IN_KEY = ("sample_rate", "speakers_from", "validation", "validation_min_seconds", "workers", "device")


def source_key(sha256: str, options: PrepareOptions, spans: tuple[tuple[float, float], ...] | None = None) -> str:
    """Return the cache key of one source's clips: its content, the clip parameters and any Whisper spans."""
    params = options.to_json()
    for name in _NOT_IN_KEY:
        params.pop(name)
    params["keep_seconds"] = options.keep_seconds
    return sha256_json({"pipeline": PIPELINE_VERSION, "sha256": sha256, "params": params, "spans": spans})


@dataclass
class SourceEntry:
    """The cached outcome for one source file."""

    path: str
    key: str
    base_key: str  # the key without Whisper spans: lets a known-bad file skip transcription
    ok: bool
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    retry: bool = False  # a failure from outside the file: try again next run
    sample_rate: int = 0  # of the source file (clip spans are in its samples)
    duration: float = 0.0
    rates: list[int] = field(default_factory=list)  # target rates whose clips are on disk for this key
    clips: list[ClipRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SourceEntry:
        fields = dict(obj)
        fields["clips"] = [ClipRecord(**c) for c in obj.get("clips", [])]
        return cls(**fields)


@dataclass
class Manifest:
    path: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> {"size", "mtime_ns", "sha256"}
    sources: dict[str, SourceEntry] = field(default_factory=dict)  # sha256 -> entry

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read the manifest; a missing, damaged or older one is an empty cache (everything is redone)."""
        try:
            data = read_json(path, default=None)
            if data is None:
                return cls(path)
            if data.get("version") != MANIFEST_VERSION:
                log.info("%s is from another version: preparing everything again", path)
                return cls(path)
            sources = {sha: SourceEntry.from_json(e) for sha, e in data["sources"].items()}
            return cls(path, dict(data["files"]), sources)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("ignoring damaged %s (%s): preparing everything again", path, error)
            return cls(path)

    def save(self) -> None:
        atomic_write_json(
            self.path,
            {
                "version": MANIFEST_VERSION,
                "files": dict(sorted(self.files.items())),
                "sources": {sha: e.to_json() for sha, e in sorted(self.sources.items())},
            },
        )

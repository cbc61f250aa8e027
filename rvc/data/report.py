"""Assembling the prepare stage's dataset report (``rvc.experiment.dataset.DatasetReport``, whose
docstring gives the schema) from the manifest, the split and the speakers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from rvc.data.manifest import Manifest
from rvc.data.speakers import Speakers
from rvc.data.split import Split
from rvc.experiment.dataset import ClipRow, DatasetReport, Rejection, SourceRow, SpeakerRow

# A file the run could not use before processing it: (path or link, sha256 when known, why).
Rejected = tuple[Path | str, str | None, str]


def hms(seconds: float) -> str:
    """Format a duration as HH:MM:SS (hours may exceed 99)."""
    whole = round(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def covered_samples(spans: Iterable[tuple[int, int]]) -> int:
    """Return how many samples the union of ``(start, end)`` spans covers."""
    total, reach = 0, None
    for start, end in sorted(spans):
        if reach is None or start >= reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def dataset_report(
    manifest: Manifest,
    sources: Mapping[str, Path],
    rejected: Sequence[Rejected],
    unchanged: set[str],
    split: Split,
    speakers: Speakers,
    sample_rate: int,
    options: dict[str, Any],
) -> DatasetReport:
    """Return the report of a run: a row per source (``sources``: sha256 -> path, each in the manifest) and per
    file ``rejected`` before processing, a row per listed clip, and the speakers' totals."""
    which: dict[str, Literal["train", "validation"]] = dict.fromkeys(split.train, "train")
    which.update(dict.fromkeys(split.validation, "validation"))
    held = set(split.held_back)
    rows: list[tuple[str, SourceRow]] = []
    clips: list[ClipRow] = []
    speaker_clips, speaker_seconds = [0] * len(speakers.names), [0.0] * len(speakers.names)  # by speaker id
    total = 0.0
    for sha, path in sources.items():
        entry = manifest.sources[sha]
        listed = [c for c in entry.clips if c.name in which]
        seconds = covered_samples((c.span_start, c.span_end) for c in listed) / entry.sample_rate if listed else 0.0
        total += seconds
        notes = list(entry.notes)
        held_here = sum(1 for c in entry.clips if c.name in held)
        if held_here:
            notes.append(f"{held_here} clip(s) held back from training: they overlap the validation stretch")
        status: Literal["ok", "rejected"] = "ok" if entry.ok else "rejected"
        reason = entry.reason if not entry.ok else ("; ".join(notes) or None)
        rows.append((str(path), source_row(path, sha, status, reason, len(listed), seconds, sha in unchanged)))
        speaker = speakers.speaker(sha)
        if speakers.names:
            speaker_clips[speaker] += len(listed)
            speaker_seconds[speaker] += seconds
        for c in sorted(listed, key=lambda c: (c.start, c.name)):
            clips.append(ClipRow(c.name, str(path), c.start, c.end, c.seconds, which[c.name], speaker))
    for where, known_sha, why in rejected:
        rows.append((str(where), source_row(where, known_sha, "rejected", why, 0, 0.0, False)))
    rows.sort(key=lambda row: row[0])
    clips.sort(key=lambda c: (c.source, c.start, c.name))
    report = build_report(sample_rate, [r for _, r in rows], clips, total, options)
    report.speakers = [
        SpeakerRow(i, name, speaker_clips[i], round(speaker_seconds[i], 3)) for i, name in enumerate(speakers.names)
    ]
    return report


def build_report(
    sample_rate: int,
    sources: Sequence[SourceRow],
    clips: Sequence[ClipRow],
    total_seconds: float,
    options: dict[str, Any],
) -> DatasetReport:
    """Assemble the report from its rows."""
    train = sum(1 for c in clips if c.split == "train")
    return DatasetReport(
        sample_rate=sample_rate,
        total_seconds=round(total_seconds, 2),
        total_hms=hms(total_seconds),
        clip_count=len(clips),
        train_clip_count=train,
        validation_clip_count=len(clips) - train,
        sources=list(sources),
        rejected=[Rejection(s.path, s.reason) for s in sources if s.status == "rejected"],
        clips=list(clips),
        options=options,
    )


def source_row(
    path: Path | str,
    sha: str | None,
    status: Literal["ok", "rejected"],
    reason: str | None,
    clips: int,
    seconds: float,
    cached: bool,
) -> SourceRow:
    return SourceRow(str(path), sha, status, reason, clips, round(seconds, 3), cached)

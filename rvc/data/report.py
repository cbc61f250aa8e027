"""Assembling the prepare stage's dataset report (``rvc.experiment.dataset.DatasetReport``, whose
docstring gives the schema) from its rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from rvc.experiment.dataset import ClipRow, DatasetReport, Rejection, SourceRow


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

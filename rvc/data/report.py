"""``dataset.json``: what the prepare stage made, read by the extract stage and the web UI.

Schema (version 1)::

    {"version": 1, "sample_rate": 40000, "total_seconds": 612.3, "total_hms": "00:10:12",
     "clip_count": 204, "train_clip_count": 194, "validation_clip_count": 10,
     "sources": [{"path", "sha256" (null when unreadable), "status": "ok" | "rejected",
                  "reason" (rejected: why; ok: a note worth a look, or null), "clips", "seconds", "cached"}],
     "rejected": [{"path", "reason"}],
     "clips": [{"name", "source", "start", "end", "seconds", "split": "train" | "validation"}],
     "options": {...}}

``total_seconds`` counts each second of source audio once, although
overlapping chunks hold some of it twice; ``clips`` lists every clip of the
dataset (``clip_count`` = train + validation).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPORT_VERSION = 1


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
    sources: Sequence[dict[str, Any]],
    clips: Sequence[dict[str, Any]],
    total_seconds: float,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the report from its rows (see the module docstring for their fields)."""
    train = sum(1 for c in clips if c["split"] == "train")
    return {
        "version": REPORT_VERSION,
        "sample_rate": sample_rate,
        "total_seconds": round(total_seconds, 2),
        "total_hms": hms(total_seconds),
        "clip_count": len(clips),
        "train_clip_count": train,
        "validation_clip_count": len(clips) - train,
        "sources": list(sources),
        "rejected": [{"path": s["path"], "reason": s["reason"]} for s in sources if s["status"] == "rejected"],
        "clips": list(clips),
        "options": options,
    }


def source_row(
    path: Path | str, sha: str | None, status: str, reason: str | None, clips: int, seconds: float, cached: bool
) -> dict[str, Any]:
    return {
        "path": str(path),
        "sha256": sha,
        "status": status,
        "reason": reason,
        "clips": clips,
        "seconds": round(seconds, 3),
        "cached": cached,
    }

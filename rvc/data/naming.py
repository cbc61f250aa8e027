"""Clip names: what a source's clips are called, from its file name and content hash."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path


def safe_stem(stem: str, limit: int = 60) -> str:
    """Return ``stem`` as a clip-name part: ASCII letters, digits, '-', '_', '.', not starting with '.'."""
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem).lstrip(".")[:limit].strip("_.")
    return cleaned or "clip"


def clip_prefixes(sources: Mapping[str, Path]) -> dict[str, str]:
    """Return ``<safe stem>-<first 8 hex of sha256>`` per source; longer hashes where two would collide."""
    prefixes = {sha: f"{safe_stem(path.stem)}-{sha[:8]}" for sha, path in sources.items()}
    seen: dict[str, int] = {}
    for prefix in prefixes.values():
        seen[prefix] = seen.get(prefix, 0) + 1
    return {sha: p if seen[p] == 1 else f"{safe_stem(sources[sha].stem)}-{sha[:20]}" for sha, p in prefixes.items()}

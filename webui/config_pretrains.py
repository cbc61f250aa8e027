"""How the Generate Configuration tab shows the installed pretrains (found by ``rvc.pretrained.pairs``)."""

from __future__ import annotations

from pathlib import Path

from rvc.models.config import SAMPLE_RATE_TAGS
from rvc.pretrained.pairs import PretrainListing, PretrainPair


def shown(path: Path, root: Path) -> str:
    """Return ``path`` as the dropdowns show it: relative to ``root`` when it lies inside."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def pairs_for_rate(listing: PretrainListing, sample_rate: int) -> list[PretrainPair]:
    """Return the pairs trained at ``sample_rate``, in path order (as the files lie in the folder)."""
    return [pair for pair in listing.pairs if pair.sample_rate == sample_rate]


def listing_note(listing: PretrainListing, sample_rate: int, pretrained_dir: Path) -> str:
    """Return one line on what the dropdowns show and what they leave out."""
    offered = pairs_for_rate(listing, sample_rate)
    tag = SAMPLE_RATE_TAGS.get(sample_rate, str(sample_rate))
    other = len(listing.pairs) - len(offered)
    parts = [f"{len(offered)} {tag} pair(s) under {pretrained_dir}"]
    if other:
        parts.append(f"{other} pair(s) of other sample rates hidden")
    if listing.unknown_rate:
        parts.append(f"{len(listing.unknown_rate)} pair(s) of unknown rate hidden (put 32k/40k/48k in the file name)")
    if listing.unpaired:
        parts.append(f"{len(listing.unpaired)} file(s) without a G/D partner")
    if not offered:
        parts.append("download pretrains in the Download Pretrained tab, or train from scratch")
    return "; ".join(parts)

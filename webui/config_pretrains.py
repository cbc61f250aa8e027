"""How the Generate Configuration tab offers the installed pretrains (found by ``rvc.pretrained.pairs``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.models.config import SAMPLE_RATE_TAGS
from rvc.pretrained.pairs import PretrainListing, PretrainPair, find_pretrain_pairs

NO_PRETRAIN = "none"  # the dropdown value for "train from scratch" (a real choice is an absolute path)


def shown(path: Path, root: Path) -> str:
    """Return ``path`` as the dropdowns show it: relative to ``root`` when it lies inside."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def preset_rate(value: Any) -> int:
    """Return the 'Sample rate' choice as a preset's rate; UserError for anything else (none chosen, a stale value)."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = math.nan
    if rate in SAMPLE_RATE_TAGS and not isinstance(value, bool):
        return int(rate)
    raise UserError(f"'Sample rate': choose one of {', '.join(SAMPLE_RATE_TAGS.values())}")


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


@dataclass(frozen=True)
class PretrainChoices:
    """What the G and D dropdowns offer for one sample rate, and what they hold."""

    generators: list[tuple[str, str]]  # (label, absolute path); the first is "train from scratch"
    discriminators: list[tuple[str, str]]
    generator: str  # the value to show: a path or NO_PRETRAIN
    discriminator: str
    note: str


def pretrain_choices(
    workspace: Workspace, sample_rate: Any, current_g: str | None, current_d: str | None
) -> PretrainChoices:
    """List the G/D pairs under assets for ``sample_rate``; keep the current choice unless it is of another rate.

    A current path that is no listed pretrain at all (a checkpoint of another
    experiment, say) is kept as it is; Validate checks that it fits.
    """
    root = workspace.assets.pretrained_dir
    listing = find_pretrain_pairs(root)
    try:
        rate: int | None = preset_rate(sample_rate)
    except UserError as error:  # none chosen (a stale page): nothing to list until one is
        rate, unset = None, str(error)
    pairs = pairs_for_rate(listing, rate) if rate else []
    scratch = ("none: train from scratch", NO_PRETRAIN)
    generators = [scratch] + [(_label(pair, pair.g, root), str(pair.g)) for pair in pairs]
    discriminators = [scratch] + [(_label(pair, pair.d, root), str(pair.d)) for pair in pairs]
    listed = {str(path) for pair in listing.every_pair() for path in pair}
    offered = {value for _, value in generators + discriminators}

    def keep(current: str | None) -> str:
        if not current or current == NO_PRETRAIN:
            return NO_PRETRAIN
        if current in offered:
            return current
        return NO_PRETRAIN if current in listed else current  # a pretrain of another rate is dropped

    note = listing_note(listing, rate, root) if rate else f"{unset} to list its pretrains"
    return PretrainChoices(generators, discriminators, keep(current_g), keep(current_d), note)


def _label(pair: PretrainPair, path: Path, root: Path) -> str:
    """Return how a dropdown names one file of a pair: custom pairs (uploaded, or made with ``export
    --pretrain``) under "custom:" and their name, the others by their path."""
    return f"custom: {pair.name} ({shown(path, root)})" if pair.origin == "custom" else shown(path, root)


def partner_of(workspace: Workspace, generator: str | None) -> str | None:
    """Return the D file paired with a listed G file, or None when the G is not a listed pretrain."""
    if not generator or generator == NO_PRETRAIN:
        return NO_PRETRAIN
    listing = find_pretrain_pairs(workspace.assets.pretrained_dir)
    for g, d in listing.every_pair():
        if str(g) == generator:
            return str(d)
    return None

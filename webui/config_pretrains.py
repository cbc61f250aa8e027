"""Find the pretrained G/D pairs under the assets folder and tell their sample rate, cheaply.

A pair is two ``.pth`` files whose paths differ only in one ``G`` / ``D`` letter
(``f0G40k.pth`` / ``f0D40k.pth``, ``G_Snowie_40k.pth`` / ``D_Snowie_40k.pth``,
``TITAN/40k/G.pth`` / ``TITAN/40k/D.pth``). The sample rate is read from a tag
in the file or folder names (``32k``, ``40k``, ``48k``, also ``f040k``); only for
a pair without a tag is the generator loaded and its decoder's upsampling kernels
compared with the v2 presets. Whether the weights really fit is checked by
Validate (``rvc.config.validate``), which loads them against the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rvc.errors import UserError
from rvc.models.config import SAMPLE_RATE_TAGS, ModelConfig

_RATE_TAG = re.compile(r"(?:(?<![0-9])|(?<=f0))(32|40|48)k(?![0-9a-z])", re.IGNORECASE)
_SWAPS = (("G", "D"), ("g", "d"))


@dataclass(frozen=True)
class PretrainPair:
    """A generator and its discriminator, and the sample rate they were trained at (None: unknown)."""

    generator: Path
    discriminator: Path
    sample_rate: int | None
    rate_from: str  # "name" (a tag in the path) or "weights" (the decoder's shapes) or "unknown"


def shown(path: Path, root: Path) -> str:
    """Return ``path`` as the dropdowns show it: relative to ``root`` when it lies inside."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class PretrainListing:
    pairs: list[PretrainPair]  # every pair found, in path order
    unpaired: list[Path]  # .pth files without a partner


def rate_from_name(path: Path, root: Path) -> int | None:
    """Return the sample rate a tag in the file name, else in its folders below ``root``, names."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    for part in reversed(parts):  # the file name first, then the innermost folder
        match = _RATE_TAG.search(part)
        if match:
            return int(match.group(1)) * 1000
    return None


def _tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Return the shapes of a G/D file's tensors, reading as little as possible; {} for an unreadable file.

    A memory-mapped load reads only the archive's index (milliseconds for a 200 MB
    file); files in torch's legacy format cannot be mapped and are read in full.
    Both load with ``weights_only=True``.
    """
    import torch

    from rvc.models.weights import read_state_dict

    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        for wrapper in ("model", "weight"):  # RVC's checkpoint and exported-model layouts, as read_state_dict
            if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
                data = data[wrapper]
                break
    except Exception:  # legacy format (no mmap) or a damaged file: let the safe reader decide
        try:
            data = read_state_dict(path)
        except UserError:
            return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): tuple(v.shape) for k, v in data.items() if isinstance(v, torch.Tensor)}


def rate_from_weights(path: Path) -> int | None:
    """Return the v2 preset whose decoder upsampling kernels the generator has; None if none matches."""
    shapes = _tensor_shapes(path)
    kernels: list[int] = []
    while True:
        layer = f"dec.ups.{len(kernels)}"
        names = (f"{layer}.weight_v", f"{layer}.parametrizations.weight.original1", f"{layer}.weight")
        shape = next((shapes[name] for name in names if name in shapes), None)
        if shape is None:
            break
        kernels.append(int(shape[-1]))
    for rate in SAMPLE_RATE_TAGS:
        if tuple(kernels) == ModelConfig.for_sample_rate(rate).upsample_kernel_sizes:
            return rate
    return None


def _partner(path: Path, files: set[Path], root: Path) -> Path | None:
    """Return the D file that pairs with ``path`` when ``path`` is a G file (one letter swapped)."""
    relative = str(path.relative_to(root))
    for g, d in _SWAPS:
        for i, char in enumerate(relative):
            if char == g and (candidate := root / (relative[:i] + d + relative[i + 1 :])) in files:
                return candidate
    return None


def find_pretrains(pretrained_dir: Path) -> PretrainListing:
    """Return the G/D pairs (and lone files) under ``pretrained_dir``, searched recursively."""
    if not pretrained_dir.is_dir():
        return PretrainListing([], [])
    pretrained_dir = pretrained_dir.resolve()
    files = {p for p in pretrained_dir.rglob("*.pth") if p.is_file()}
    pairs: list[PretrainPair] = []
    paired: set[Path] = set()
    for path in sorted(files):
        partner = _partner(path, files, pretrained_dir)
        if partner is None or path in paired:
            continue
        rate, source = rate_from_name(path, pretrained_dir), "name"
        if rate is None:
            rate, source = rate_from_weights(path), "weights"
        pairs.append(PretrainPair(path, partner, rate, source if rate else "unknown"))
        paired.update((path, partner))
    return PretrainListing(pairs, sorted(files - paired))


def pairs_for_rate(listing: PretrainListing, sample_rate: int) -> list[PretrainPair]:
    """Return the pairs trained at ``sample_rate``."""
    return [pair for pair in listing.pairs if pair.sample_rate == sample_rate]


def listing_note(listing: PretrainListing, sample_rate: int, pretrained_dir: Path) -> str:
    """Return one line on what the dropdowns show and what they leave out."""
    shown = pairs_for_rate(listing, sample_rate)
    tag = SAMPLE_RATE_TAGS.get(sample_rate, str(sample_rate))
    other = sum(1 for p in listing.pairs if p.sample_rate not in (None, sample_rate))
    unknown = sum(1 for p in listing.pairs if p.sample_rate is None)
    parts = [f"{len(shown)} {tag} pair(s) under {pretrained_dir}"]
    if other:
        parts.append(f"{other} pair(s) of other sample rates hidden")
    if unknown:
        parts.append(f"{unknown} pair(s) of unknown rate hidden (put 32k/40k/48k in the file name)")
    if listing.unpaired:
        parts.append(f"{len(listing.unpaired)} file(s) without a G/D partner")
    if not shown:
        parts.append("download pretrains in the Download Pretrained tab, or train from scratch")
    return "; ".join(parts)

"""The G/D pairs installed under ``assets/pretrained_v2``, and the sample rate of each.

One listing for every place that offers pretrains (the Generate Configuration and Download
Pretrained tabs, ``python -m rvc pretrained list``), so they always agree. A pair is two
``.pth`` files whose paths differ only in one ``G`` / ``D`` letter:

- ``<id>/<32k|40k|48k>/G.pth`` and ``D.pth``: a catalogue download or a custom pair, named by
  the ``source.json`` beside them;
- ``f0G40k.pth`` / ``f0D40k.pth``, ``TITAN/32k/G-f032k-TITAN.pth`` / ``D-f032k-TITAN.pth``:
  files a user copied in by hand, RVC-style, at any depth.

The sample rate comes from a tag in the file name, else in its folders (``32k``, ``40k``,
``48k``, also ``f040k``); only for a pair without one is the generator's index read (a
memory-mapped load) and its decoder's upsampling kernels compared with the v2 presets.
Whether the weights really fit is checked by Validate (``rvc.config.validate``).
Hidden folders (a download or upload in progress) are not looked into.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.experiment.names import sample_rate_tag
from rvc.fileio import read_json
from rvc.models.config import SAMPLE_RATE_TAGS, ModelConfig

SOURCE_FILE = "source.json"
_RATE_TAG = re.compile(r"(?:(?<![0-9])|(?<=f0))(32|40|48)k(?![0-9a-z])", re.IGNORECASE)
_SWAPS = (("G", "D"), ("g", "d"))


@dataclass(frozen=True)
class PretrainPair:
    """An installed G/D pair, ready for the config's pretrained_g / pretrained_d."""

    name: str  # what the user sees: the catalogue name, the custom name, a folder or the file stem
    sample_rate: int
    g: Path
    d: Path
    origin: Literal["catalogue", "custom", "folder"]
    rate_from: Literal["name", "weights"] = "name"  # a tag in the path, or the decoder's shapes

    @property
    def label(self) -> str:
        """Return a one-line label for dropdowns: ``"TITAN (40k, catalogue)"``."""
        return f"{self.name} ({sample_rate_tag(self.sample_rate)}, {self.origin})"


@dataclass(frozen=True)
class PretrainListing:
    pairs: list[PretrainPair]  # pairs of a known sample rate, in path order
    unknown_rate: list[tuple[Path, Path]]  # (G, D) whose rate neither the names nor the weights tell
    unpaired: list[Path]  # .pth files without a partner

    def every_pair(self) -> list[tuple[Path, Path]]:
        """(G, D) of every pair found, of a known rate or not."""
        return [(p.g, p.d) for p in self.pairs] + self.unknown_rate


def list_pretrain_pairs(assets: AssetDir, sample_rate: int | None = None) -> list[PretrainPair]:
    """Return the installed pairs of a known rate (optionally only ``sample_rate``), catalogue ones first.

    Cheap enough to call whenever a dropdown is shown (a directory walk and small JSON files,
    and an index read only for untagged pairs), so new downloads and uploads appear at once.
    """
    pairs = find_pretrain_pairs(assets.pretrained_dir).pairs
    if sample_rate is not None:
        pairs = [p for p in pairs if p.sample_rate == sample_rate]
    return sorted(pairs, key=lambda p: (p.sample_rate, p.origin != "catalogue", p.name.lower()))


def find_pretrain_pairs(pretrained_dir: Path) -> PretrainListing:
    """Return the G/D pairs (and lone files) under ``pretrained_dir``, searched recursively."""
    if not pretrained_dir.is_dir():
        return PretrainListing([], [], [])
    root = pretrained_dir.resolve()
    files = {
        p
        for p in root.rglob("*.pth")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }
    pairs: list[PretrainPair] = []
    unknown: list[tuple[Path, Path]] = []
    paired: set[Path] = set()
    for path in sorted(files):
        partner = _partner(path, files, root)
        if partner is None or path in paired:
            continue
        paired.update((path, partner))
        rate, rate_from = rate_from_name(path, root), "name"
        if rate is None:
            rate, rate_from = rate_from_weights(path), "weights"
        if rate is None:
            unknown.append((path, partner))
            continue
        source = _read_source(path.parent / SOURCE_FILE)
        origin = source.get("origin")
        pairs.append(
            PretrainPair(
                name=str(source.get("name") or _default_name(path, root)),
                sample_rate=rate,
                g=path,
                d=partner,
                origin=origin if origin in ("catalogue", "custom") else "folder",
                rate_from="name" if rate_from == "name" else "weights",
            )
        )
    return PretrainListing(pairs, unknown, sorted(files - paired))


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


def _partner(path: Path, files: set[Path], root: Path) -> Path | None:
    """Return the D file that pairs with ``path`` when ``path`` is a G file (one letter swapped)."""
    relative = str(path.relative_to(root))
    for g, d in _SWAPS:
        for i, char in enumerate(relative):
            if char == g and (candidate := root / (relative[:i] + d + relative[i + 1 :])) in files:
                return candidate
    return None


def _default_name(g: Path, root: Path) -> str:
    """A pair without a source.json: ``TITAN/40k/G.pth`` is "TITAN", ``f0G40k.pth`` is "f0G40k"."""
    if g.stem.upper() != "G":
        return g.stem
    folders = [part for part in g.parent.relative_to(root).parts if not _RATE_TAG.fullmatch(part)]
    return folders[-1] if folders else g.stem


def _read_source(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path, default={})
    except (OSError, ValueError):
        return {}  # a damaged source.json only loses the display name
    return data if isinstance(data, dict) else {}

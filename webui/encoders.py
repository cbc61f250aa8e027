"""The content encoders a dropdown offers: the known ones, and every usable one found in the assets folder.

A known encoder (``rvc.features.embedder.EMBEDDERS``) is offered by name: installed under
``<assets>/embedders/<name>/``, or downloaded there on first use. Any other folder of
``<assets>/embedders/`` that holds a Hugging Face model (``config.json`` and its weights) or a
single fairseq ``.pt``, and any ``.pt`` lying in that folder itself, is offered by its path, as
Applio lists its custom embedders.
"""

from __future__ import annotations

from pathlib import Path

from rvc.experiment import AssetDir

HF_CONFIG = "config.json"
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def usable(path: Path) -> bool:
    """Return whether ``path`` looks like a content encoder: an HF model folder, a folder of one .pt, or a .pt."""
    if path.is_file():
        return path.suffix == ".pt"
    if not path.is_dir():
        return False
    if (path / HF_CONFIG).is_file() and any((path / name).is_file() for name in HF_WEIGHTS):
        return True
    return len(list(path.glob("*.pt"))) == 1


def found_encoders(assets: AssetDir) -> list[Path]:
    """Return the usable encoders under ``<assets>/embedders/`` that are not known by name, sorted."""
    from rvc.features.embedder import EMBEDDERS

    folder = assets.embedders_dir
    if not folder.is_dir():
        return []
    return [
        path
        for path in sorted(folder.iterdir())
        if not path.name.startswith(".") and path.name not in EMBEDDERS and usable(path)
    ]


def encoder_choices(assets: AssetDir) -> list[tuple[str, str]]:
    """Return (label, value) of every encoder to offer: the known names, then those found in the assets folder."""
    from rvc.features.embedder import EMBEDDERS

    known = [
        (f"{name} (installed)" if usable(assets.embedder_dir(name)) else f"{name} (downloads on first use)", name)
        for name in EMBEDDERS
    ]
    return known + [(f"{path.name} (in {assets.embedders_dir})", str(path)) for path in found_encoders(assets)]


def where_to_put(assets: AssetDir) -> str:
    """Say where a custom encoder goes to be offered here."""
    return (
        f"another encoder: put its Hugging Face folder (config.json and weights) or its fairseq .pt "
        f"in {assets.embedders_dir}/ and it is listed here"
    )

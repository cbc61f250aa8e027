"""The content encoders a dropdown offers: the known ones, and every usable one found in the assets folder.

A known encoder (``rvc.features.embedder.EMBEDDERS``) is offered by name: installed under
``<assets>/embedders/<name>/``, or downloaded there on first use. Any other folder of
``<assets>/embedders/`` that holds a Hugging Face model (``config.json`` and its weights) or a
single fairseq ``.pt``, and any ``.pt`` lying in that folder itself, is offered by its path, as
Applio lists its custom embedders.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rvc.experiment import AssetDir
from rvc.features.embedder_weights import loadable

if TYPE_CHECKING:
    from webui.paths_guard import PathGuard

LABEL = "Content encoder"  # the field's label wherever a tab asks for one


def found_encoders(assets: AssetDir) -> list[Path]:
    """Return the usable encoders under ``<assets>/embedders/`` that are not known by name, sorted."""
    from rvc.features.embedder import EMBEDDERS

    folder = assets.embedders_dir
    if not folder.is_dir():
        return []
    return [
        path
        for path in sorted(folder.iterdir())
        if not path.name.startswith(".") and path.name not in EMBEDDERS and loadable(path)
    ]


def encoder_choices(assets: AssetDir) -> list[tuple[str, str]]:
    """Return (label, value) of every encoder to offer: the known names, then those found in the assets folder."""
    from rvc.features.embedder import EMBEDDERS

    known = [
        (f"{name} (installed)" if loadable(assets.embedder_dir(name)) else f"{name} (downloads on first use)", name)
        for name in EMBEDDERS
    ]
    return known + [(f"{path.name} (in {assets.embedders_dir})", str(path)) for path in found_encoders(assets)]


def where_to_put(assets: AssetDir) -> str:
    """Say where a custom encoder goes to be offered here."""
    return (
        f"another encoder: put its Hugging Face folder (its config and weights) or its fairseq .pt "
        f"in {assets.embedders_dir}/ and it is listed here"
    )


def chosen_encoder(paths: PathGuard, value: str | None) -> str | None:
    """Return the encoder the field names: a known name, or a path inside the app's folders; None when empty.

    The field takes typed text: a path goes through the path guard like every other path field, and an
    emptied dropdown (None) is empty, not a word to look up.
    """
    from rvc.features.embedder import EMBEDDERS

    text = (value or "").strip()
    if not text or text in EMBEDDERS:
        return text or None
    return str(paths.resolve(text, f"'{LABEL}'", must_exist=True))

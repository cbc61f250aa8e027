"""Custom G/D pairs: files a user uploads, checked against the v2 model and copied into place."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.experiment.names import sample_rate_tag
from rvc.fileio import atomic_write_json, make_folder, sha256_file, why_not_a_file
from rvc.pretrained.catalogue import D_FILE, G_FILE, SAMPLE_RATES, Kind, pair_dir
from rvc.pretrained.pairs import SOURCE_FILE, PretrainPair

if TYPE_CHECKING:
    from rvc.models.config import ModelConfig

_PAIR_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


def validate_pretrain_file(path: Path, kind: Kind, sample_rate: int, model: ModelConfig | None = None) -> None:
    """Check that ``path`` is a safe G or D state dict whose shapes fit the model at ``sample_rate``.

    Loads with ``weights_only=True`` (a pickle with other objects is refused unexecuted) and
    compares every tensor's shape with the v2 model built on the meta device (no memory, no
    weights). Raises UserError, or PretrainMismatchError naming the tensors and a likely cause
    (another sample rate, v1, no pitch, a G given as D). ``model`` replaces the v2 preset
    (tests use tiny models). The discriminator is the same at every sample rate, so a D file
    can only be checked for being a v2 discriminator.
    """
    from rvc.models.config import ModelConfig
    from rvc.models.weights import check_pretrain_file

    config = model or ModelConfig.for_sample_rate(sample_rate)
    if config.sample_rate != sample_rate:
        raise ValueError(f"model config is {config.sample_rate} Hz, asked to check {sample_rate} Hz")
    check_pretrain_file(path, kind == "G", config, source=f"{kind} file {path.name}")


def detect_sample_rate(g_path: Path, model: ModelConfig | None = None) -> int:
    """Return the sample rate whose v2 generator ``g_path`` fits; raise the 40k mismatch when none does.

    With ``model`` given, only that configuration's rate is tried.
    """
    from rvc.models.weights import PretrainMismatchError

    if model is not None:
        validate_pretrain_file(g_path, "G", model.sample_rate, model)
        return model.sample_rate
    first: PretrainMismatchError | None = None
    for rate in (40000, 32000, 48000):
        try:
            validate_pretrain_file(g_path, "G", rate)
            return rate
        except PretrainMismatchError as error:
            first = first or error
    assert first is not None
    raise first


def validate_pair_name(name: str) -> str:
    """Return ``name`` if it can name a pretrain folder, else raise UserError."""
    if not _PAIR_NAME.fullmatch(name or ""):
        raise UserError(
            f"invalid pretrain name {name!r}: use letters, digits, '-', '_' and '.' only "
            "(not starting with '.', at most 64 characters), e.g. 'my-pretrain_v2'"
        )
    return name


def _refuse_existing(assets: AssetDir, name: str, sample_rate: int, overwrite: bool) -> None:
    folder = pair_dir(assets, name, sample_rate)
    if (folder / G_FILE).exists() and not overwrite:
        raise UserError(
            f"a {sample_rate_tag(sample_rate)} pretrain named {name!r} already exists in {folder}; "
            "choose another name, or delete that folder first"
        )


def add_custom_pair(
    assets: AssetDir,
    name: str,
    g_path: Path,
    d_path: Path,
    sample_rate: int | None = None,
    model: ModelConfig | None = None,
    overwrite: bool = False,
) -> PretrainPair:
    """Validate a G and a D file and copy them into ``pretrained_v2/<name>/<rate>/``; return the pair.

    ``sample_rate`` None: detected from the G file. Nothing is copied unless both files pass
    :func:`validate_pretrain_file`. An existing pair of that name and rate is kept unless
    ``overwrite``.
    """
    validate_pair_name(name)
    g_path, d_path = Path(g_path), Path(d_path)
    for label, path in (("G", g_path), ("D", d_path)):
        if not path.is_file():
            raise UserError(f"{label} file {path} {why_not_a_file(path)}")
    if sample_rate is not None and sample_rate not in SAMPLE_RATES:
        raise UserError(f"sample rate {sample_rate} is not one of 32000, 40000, 48000")
    if sample_rate is not None:
        _refuse_existing(assets, name, sample_rate, overwrite)
        validate_pretrain_file(g_path, "G", sample_rate, model)
    else:
        sample_rate = detect_sample_rate(g_path, model)
        _refuse_existing(assets, name, sample_rate, overwrite)
    validate_pretrain_file(d_path, "D", sample_rate, model)
    folder = pair_dir(assets, name, sample_rate)
    make_folder(folder)
    for source, target in ((d_path, folder / D_FILE), (g_path, folder / G_FILE)):  # G last, as in _install
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    atomic_write_json(
        folder / SOURCE_FILE,
        {
            "origin": "custom",
            "name": name,
            "sample_rate": sample_rate,
            "files": {
                "G": {"from": g_path.name, "sha256": sha256_file(folder / G_FILE)},
                "D": {"from": d_path.name, "sha256": sha256_file(folder / D_FILE)},
            },
        },
    )
    return PretrainPair(name, sample_rate, folder / G_FILE, folder / D_FILE, "custom")

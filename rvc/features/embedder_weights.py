"""Where a content encoder's weights come from: the assets folder (downloaded there when missing), or a path.

A known name (:data:`~rvc.features.embedder_sources.EMBEDDERS`) is looked up in
``assets/embedders/<name>/`` in Hugging Face format (or a fairseq ``.pt`` a user dropped
there) and downloaded when missing; a path is a Hugging Face folder or a fairseq ``.pt``.
Every failure is a UserError that says which file is missing, from where and where to put it.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.features.embedder_sources import EMBEDDERS, EmbedderSource
from rvc.fileio import sha256_file

if TYPE_CHECKING:
    from transformers import HubertModel

log = logging.getLogger(__name__)

_CONFIG_FILE = "config.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _weights_file(folder: Path) -> Path | None:
    """Return the weights file of a Hugging Face-format folder, or None if it is not one."""
    if not (folder / _CONFIG_FILE).is_file():
        return None
    return next((folder / name for name in _WEIGHT_FILES if (folder / name).is_file()), None)


def _fairseq_file(folder: Path) -> Path | None:
    """Return the only ``.pt`` file in ``folder`` (a user may drop RVC's hubert_base.pt there), else None."""
    found = sorted(folder.glob("*.pt")) if folder.is_dir() else []
    return found[0] if len(found) == 1 else None


def loadable(path: Path) -> bool:
    """Whether ``path`` is a content encoder ``load_path`` reads: a Hugging Face-format folder, a
    folder of one fairseq ``.pt``, or a ``.pt`` file."""
    if path.is_file():
        return path.suffix == ".pt"
    return path.is_dir() and (_weights_file(path) is not None or _fairseq_file(path) is not None)


def _load_hf_folder(folder: Path) -> HubertModel:
    import torch
    from safetensors import SafetensorError
    from transformers import HubertModel

    try:
        model_type = json.loads((folder / _CONFIG_FILE).read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as error:
        raise UserError(f"cannot read {folder / _CONFIG_FILE}: {error}") from None
    if model_type != "hubert":
        raise UserError(
            f"{folder} holds a {model_type!r} model; a content encoder must be a HuBERT/ContentVec model "
            "(model_type 'hubert' in config.json)"
        )
    try:
        # with output_loading_info it returns (model, info); its annotation says only the model
        loaded: Any = HubertModel.from_pretrained(
            folder, dtype=torch.float32, local_files_only=True, output_loading_info=True
        )
        model, info = loaded
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError, SafetensorError) as error:
        raise UserError(_unloadable(folder, error)) from None
    # transformers fills missing weights with random values: refuse that rather than make garbage features
    missing = sorted(name for name in info["missing_keys"] if name != "masked_spec_embed")
    if missing or info.get("mismatched_keys"):
        raise UserError(
            f"the weights in {folder} do not match its config.json (missing {missing[:5]}, "
            f"wrong shapes {sorted(info.get('mismatched_keys') or [])[:5]}); the download may be damaged: "
            "delete the folder and run again"
        )
    return model.eval()


def _unloadable(folder: Path, error: Exception) -> str:
    """Say why the weights in ``folder`` did not load, without the library's advice to load them unsafely."""
    weights = _weights_file(folder) or folder
    if isinstance(error, pickle.UnpicklingError):
        why = "it holds objects other than tensors, which are not loaded (they could run code)"
    else:
        why = str(error).splitlines()[0] if str(error) else type(error).__name__
    return (
        f"cannot load the content encoder's weights {weights}: {why}; the file is damaged or not a model: "
        "replace it with a good copy (a known encoder whose folder is removed is downloaded again)"
    )


def _hub_offline() -> bool:
    """Tell whether Hub downloads are switched off (huggingface_hub reads the variable only at import)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or flag.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _missing_message(name: str, source: EmbedderSource, folder: Path, reason: str) -> str:
    files = ", ".join(f for f in source.files if not (folder / f).is_file()) or ", ".join(source.files)
    where = f"{source.repo_id}, folder {source.subfolder}" if source.subfolder else source.repo_id
    return (
        f"content encoder {name!r} is missing: {folder} has no {files} ({reason}). "
        f"Download {files} from the Hugging Face repo {where} ({source.url}) into {folder}, "
        f"or give --embedder the path of a fairseq .pt of the same model"
        + (" (RVC's hubert_base.pt is contentvec)" if name == "contentvec" else "")
    )


def _download(name: str, source: EmbedderSource, folder: Path, staging: Path) -> None:
    """Fetch ``source.files`` into ``staging`` (resumable), check them, then move them into ``folder``.

    While the Hub cannot be reached it is asked again a few times, each wait logged ("retrying
    (attempt 2 of 4) in 1 s: ..."): the extract job's log says why its content part has not begun.
    """
    from huggingface_hub import hf_hub_download

    from rvc.pretrained.catalogue import RemoteFile
    from rvc.pretrained.download import hub_endpoint, hub_metadata
    from rvc.pretrained.hub_errors import first_line

    if _hub_offline():
        raise UserError(_missing_message(name, source, folder, "HF_HUB_OFFLINE is set, so nothing was downloaded"))
    fetched: list[tuple[str, Path]] = []
    for filename in source.files:
        path_in_repo = f"{source.subfolder}/{filename}" if source.subfolder else filename
        try:
            hub_metadata(RemoteFile(source.repo_id, path_in_repo, source.revision), hub_endpoint(), log=log.warning)
        except Exception as error:  # unreachable after the retries, or not on the Hub
            raise UserError(_missing_message(name, source, folder, f"download failed: {first_line(error)}")) from None
        log.info("downloading %s from %s", filename, source.url)
        try:
            local = hf_hub_download(
                source.repo_id,
                filename,
                subfolder=source.subfolder or None,
                revision=source.revision,
                local_dir=staging,
            )
        except Exception as error:  # offline, HTTP errors, disk full: all end in the same advice
            reason = f"download failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            raise UserError(_missing_message(name, source, folder, reason)) from None
        path = Path(str(local))
        expected = source.sha256.get(filename)
        if expected and sha256_file(path) != expected:
            path.unlink(missing_ok=True)
            raise UserError(
                f"{filename} downloaded from {source.url} does not have the expected sha256 {expected}; "
                "it was deleted: run again, or put a checked copy into " + str(folder)
            )
        fetched.append((filename, path))
    folder.mkdir(parents=True, exist_ok=True)
    # config.json last: a folder only counts as complete when both are there anyway
    for filename, path in sorted(fetched, key=lambda item: item[0] == _CONFIG_FILE):
        os.replace(path, folder / filename)
    shutil.rmtree(staging, ignore_errors=True)


def load_known(name: str, assets: AssetDir, allow_download: bool) -> tuple[HubertModel, Path]:
    from rvc.features.fairseq_import import load_fairseq_hubert

    source = EMBEDDERS[name]
    folder = assets.embedder_dir(name)
    if _weights_file(folder) is None and (pt := _fairseq_file(folder)) is not None:
        return load_fairseq_hubert(pt), pt
    if _weights_file(folder) is None:
        if not allow_download:
            raise UserError(_missing_message(name, source, folder, "downloads are off"))
        _download(name, source, folder, assets.cache_dir / "downloads" / "embedders" / name)
    return _load_hf_folder(folder), folder


def load_path(path: Path) -> HubertModel:
    from rvc.features.fairseq_import import load_fairseq_hubert

    if path.is_dir():
        if _weights_file(path) is not None:
            return _load_hf_folder(path)
        if (pt := _fairseq_file(path)) is not None:
            return load_fairseq_hubert(pt)
        raise UserError(
            f"{path} is not a content encoder folder: it needs config.json and model.safetensors or "
            "pytorch_model.bin (Hugging Face format), or a single fairseq .pt file"
        )
    return load_fairseq_hubert(path)

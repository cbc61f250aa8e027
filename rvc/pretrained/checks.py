"""What a downloaded weights file must be before it is installed: plain tensors, the half of the pair it is named.

A file that fails is deleted from the staging folder, so a later download fetches it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rvc.errors import UserError
from rvc.pretrained.catalogue import Kind, RemoteFile


def check_safe_load(path: Path, remote: RemoteFile) -> None:
    """Refuse a weights file that does not load with ``weights_only=True`` (deleting it)."""
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, or any way torch fails on a file not its own (KeyError, ...)
        path.unlink(missing_ok=True)
        raise UserError(
            f"{remote.filename} from {remote.repo_id} does not load as plain tensors (weights_only=True), so it was "
            f"deleted and not installed: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None


def check_pair_half(path: Path, kind: Kind, remote: RemoteFile) -> None:
    """Refuse a downloaded G/D that is not a safe state dict of the right half (deleting it)."""
    from rvc.models.weights import read_state_dict

    try:
        state = read_state_dict(path)
    except UserError as error:
        path.unlink(missing_ok=True)
        raise UserError(f"{remote.filename} from {remote.repo_id} was deleted and not installed: {error}") from None
    if not _looks_like(state, kind):
        path.unlink(missing_ok=True)
        other = "D" if kind == "G" else "G"
        raise UserError(
            f"{remote.filename} from {remote.repo_id} is listed as the {kind} file but holds a {other} "
            "(or no RVC) state dict; it was deleted. Fix the catalogue entry"
        )


def _looks_like(state: Mapping[str, Any], kind: Kind) -> bool:
    prefixes = ("enc_p.", "dec.", "module.enc_p.") if kind == "G" else ("discriminators.", "module.discriminators.")
    return any(key.startswith(prefixes) for key in state)

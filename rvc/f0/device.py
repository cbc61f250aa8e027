"""Torch device and mixed-precision choices shared by the neural f0 methods."""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

from rvc.errors import UserError

Precision = Literal["fp32", "fp16", "bf16"]


def resolve_device(device: str) -> torch.device:
    """Return the torch device for ``device`` ("cpu", "cuda", "cuda:N" or "auto").

    Raises UserError when CUDA is asked for but this machine has none.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from exc
    if resolved.type not in ("cpu", "cuda"):
        raise UserError(f"unsupported device {device!r}: use cpu, cuda, cuda:N or auto")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {device!r} was asked for but no CUDA GPU is available: use --device cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise UserError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    return resolved


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[object]:
    """Return the autocast context for ``precision`` on ``device`` (a no-op on CPU or for fp32)."""
    if device.type != "cuda" or precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type="cuda", dtype=dtype)

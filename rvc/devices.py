"""Choosing where the maths runs."""

from __future__ import annotations

from rvc.errors import UserError

DEVICE_CHOICES = ("auto", "cuda", "cpu")


def resolve_device(device: str) -> str:
    """Return 'cuda', 'cuda:N' or 'cpu' for a user's choice ('auto' picks CUDA when present)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device} was asked for, but PyTorch sees no CUDA GPU; use --device cpu")
        return device
    if device == "cpu":
        return device
    raise UserError(f"unknown device {device!r}: use auto, cuda, cuda:N or cpu")

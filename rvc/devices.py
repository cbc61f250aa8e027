"""Choosing where the maths runs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rvc.errors import UserError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cuda", "cpu")
_DEVICE_NAME = re.compile(r"auto|cpu|cuda(:[0-9]+)?")  # ASCII: torch.device refuses other digits


def is_device_name(text: str) -> bool:
    """Whether ``text`` names a device the way a user may: auto, cpu, cuda or cuda:N.

    Only the spelling: whether that GPU exists is asked where the stage starts (resolve_device), so
    a typo is refused before any work and a missing GPU where it is known.
    """
    return _DEVICE_NAME.fullmatch(text) is not None


def resolve_device(device: str) -> str:
    """Return 'cuda', 'cuda:N' or 'cpu' for a user's choice ('auto' picks CUDA when present)."""
    import torch

    if not is_device_name(device):
        raise UserError(f"unknown device {device!r}: use auto, cuda, cuda:N or cpu")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device} was asked for, but PyTorch sees no CUDA GPU; use --device cpu")
        return device
    return device  # cpu


def cuda_device_count() -> int:
    """Return how many CUDA GPUs PyTorch sees on this machine (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


# Run as if the GPU had this many GiB (a float): the benchmarks and GPU tests use it to try the
# 6-24 GB cards our users have on a large one. Unset, the whole card is used.
MEMORY_CAP_VARIABLE = "RVC_GPU_MEMORY_GIB"


def gpu_memory_cap_gib() -> float | None:
    """Return the GiB that ``RVC_GPU_MEMORY_GIB`` caps this process's GPU memory at, or None."""
    import os

    text = os.environ.get(MEMORY_CAP_VARIABLE, "").strip()
    if not text:
        return None
    try:
        cap = float(text)
    except ValueError:
        cap = 0.0
    if cap <= 0:
        raise UserError(f"{MEMORY_CAP_VARIABLE}={text!r} is not a positive number of GiB: unset it for the whole GPU")
    return cap


def gpu_memory_gib(index: int = 0) -> float | None:
    """Return the GPU memory this process may use (the card's, or less under the cap), or None without CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    total = torch.cuda.get_device_properties(index).total_memory / 2**30
    cap = gpu_memory_cap_gib()
    return total if cap is None else min(cap, total)


def apply_gpu_memory_cap(device: torch.device) -> float | None:
    """Hold this process to ``RVC_GPU_MEMORY_GIB`` on ``device``; return the cap, or None when unset.

    The caching allocator then refuses what would pass the cap with the out-of-memory error a
    smaller card gives. cuDNN's workspace comes from the same allocator, so its autotuning is
    bounded too: PyTorch skips a convolution plan whose workspace cannot be allocated.
    """
    import torch

    cap = gpu_memory_cap_gib()
    if cap is None or device.type != "cuda":
        return None
    total = torch.cuda.get_device_properties(device).total_memory / 2**30
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total), device)
    return cap

"""Read the CUDA libraries from disk while the trainer starts, before the first step needs them.

On a freshly started H100 machine, preparing the graphed step took 44 s; on one that had trained
before, 15 s (benchmarks/README.md). cuDNN, cuBLAS, cuFFT and PyTorch's own CUDA library hold
gigabytes of kernels that are loaded lazily, page by page, the first time a kernel is used, and
on a machine whose page cache is cold each of those pages is a random read from disk in the
middle of the warm-up. A thread that reads the same files sequentially while Python imports,
loads the clips and builds the models turns them into one streaming read done in the background;
on a warm machine it costs a read from memory. The read releases the GIL, so the training
thread does not wait for it.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable
from pathlib import Path

# What a training step loads: cuDNN (convolutions), cuBLAS (matmuls), cuFFT (the mel STFT),
# NVRTC and nvJitLink (cuDNN's runtime-compiled engines), and PyTorch's CUDA kernels.
LIBRARY_PATTERNS = (
    "cudnn/lib/libcudnn*.so*",
    "*/lib/libcublas*.so*",
    "*/lib/libcufft.so*",
    "*/lib/libnvrtc*.so*",
    "*/lib/libnvJitLink.so*",
)
TORCH_PATTERNS = ("lib/libtorch_cuda.so", "lib/libtorch_cuda_linalg.so")
CHUNK = 8 << 20


def _package_dirs(name: str) -> list[Path]:
    spec = importlib.util.find_spec(name)  # finds the package without importing it
    return [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []


def cuda_library_files() -> list[Path]:
    """The CUDA libraries of this environment's PyTorch wheels that training loads, largest first."""
    found: set[Path] = set()
    for root in _package_dirs("nvidia"):
        for pattern in LIBRARY_PATTERNS:
            found.update(p for p in root.glob(pattern) if p.is_file())
    for root in _package_dirs("torch"):
        for pattern in TORCH_PATTERNS:
            found.update(p for p in root.glob(pattern) if p.is_file())
    # Not used by training: the RNN/attention engines and NVRTC's alternative builds.
    found = {p for p in found if ".alt." not in p.name and not p.name.startswith("libcudnn_adv")}
    return sorted(found, key=lambda p: -p.stat().st_size)


def read_through(files: list[Path]) -> int:
    """Read every file once, sequentially, discarding the bytes; return how many were read."""
    total = 0
    buffer = bytearray(CHUNK)
    for path in files:
        try:
            with path.open("rb", buffering=0) as handle:
                while count := handle.readinto(buffer):
                    total += count
        except OSError:
            continue  # a library that cannot be read now will be read (or fail) when it is used
    return total


def start_warming(log: Callable[[str], None]) -> threading.Thread:
    """Read the CUDA libraries on a daemon thread; log how much and how long when done."""

    def warm() -> None:
        started = time.monotonic()
        files = cuda_library_files()
        total = read_through(files)
        log(f"read {total / 1e9:.2f} GB of CUDA libraries ({len(files)} files) in {time.monotonic() - started:.1f} s")

    thread = threading.Thread(target=warm, name="warm-cuda-libraries", daemon=True)
    thread.start()
    return thread

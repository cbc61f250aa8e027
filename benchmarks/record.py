"""What every benchmark result says about where it was measured: the machine, the commit, the command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def machine_name() -> str:
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        for short in ("H100", "H200", "A100", "L4", "T4", "4090", "3090"):
            if short in name:
                return short
        return name.replace(" ", "_")
    return f"cpu-{os.cpu_count()}core"


def commit() -> str:
    if os.environ.get("RVC_COMMIT"):  # the device machine's copy of the tree has no .git
        return os.environ["RVC_COMMIT"]
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return result.stdout.strip() + ("-dirty" if dirty else "") if result.returncode == 0 else "unknown"


def header(benchmark: str) -> dict[str, str]:
    """The first fields of ``benchmarks/<benchmark>.py``'s result: run it again with ``command``."""
    return {
        "benchmark": benchmark,
        "machine": machine_name(),
        "commit": commit(),
        "command": " ".join(["python", f"benchmarks/{benchmark}.py", *sys.argv[1:]]),
    }

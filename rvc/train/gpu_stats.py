"""GPU utilisation, memory, temperature and power through NVML, where nvidia-ml-py sees a GPU."""

from __future__ import annotations

from typing import Any


def _physical_index(index: int) -> int:
    """Map a CUDA device index to NVML's, which ignores CUDA_VISIBLE_DEVICES."""
    import os

    visible = [part.strip() for part in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
    if index < len(visible) and visible[index].isdigit():
        return int(visible[index])
    return index


class GpuStats:
    """Read NVML counters of one GPU; every method returns {} when NVML is not available."""

    def __init__(self, index: int) -> None:
        self.handle: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(_physical_index(index))
            self.nvml = pynvml
        except Exception:  # no nvidia-ml-py, no driver, or no such GPU: stats are optional
            self.handle = None

    def read(self) -> dict[str, float]:
        if self.handle is None:
            return {}
        nvml = self.nvml
        try:
            memory = nvml.nvmlDeviceGetMemoryInfo(self.handle)
            return {
                "gpu/util_percent": float(nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu),
                "gpu/memory_used_gib": memory.used / 2**30,
                "gpu/memory_total_gib": memory.total / 2**30,
                "gpu/temperature_c": float(nvml.nvmlDeviceGetTemperature(self.handle, nvml.NVML_TEMPERATURE_GPU)),
                "gpu/power_w": nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0,
            }
        except Exception:  # a counter this GPU does not expose
            return {}

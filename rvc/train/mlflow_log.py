"""Optional MLflow logging: the same scalars as TensorBoard, when mlflow is installed and asked for."""

from __future__ import annotations

import math
from typing import Any


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value


class MlflowLogger:
    """Log params once and metrics per step; a no-op (with one warning) when mlflow is missing."""

    def __init__(self, run_name: str, params: dict[str, Any], log: Any = print) -> None:
        self.mlflow: Any = None
        try:
            import mlflow
        except ImportError:
            log("mlflow logging was asked for but mlflow is not installed (pip install mlflow); continuing without it")
            return
        flat: dict[str, Any] = {}
        _flatten("", params, flat)
        try:
            mlflow.start_run(run_name=run_name)
            # MLflow caps parameter values at 6000 characters; settings are short scalars and lists.
            mlflow.log_params({key: str(value)[:500] for key, value in flat.items()})
        except Exception as error:  # a tracking server that is down must not stop training
            log(f"mlflow logging is off: {type(error).__name__}: {error}")
            return
        self.mlflow = mlflow

    def metrics(self, values: dict[str, float], step: int) -> None:
        if self.mlflow is not None:
            finite = {key.replace("/", "_"): v for key, v in values.items() if math.isfinite(v)}
            self.mlflow.log_metrics(finite, step=step)

    def close(self) -> None:
        if self.mlflow is not None:
            self.mlflow.end_run()
            self.mlflow = None

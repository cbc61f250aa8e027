"""Overtraining detection on the smoothed held-out mel loss.

Training losses of a GAN keep falling while the model memorises its clips; the
loss on clips it never trains on stops falling. We smooth that loss (it is noisy
epoch to epoch), remember the best epoch, and warn when it has not improved for
``patience`` epochs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class OvertrainDetector:
    patience: int
    smoothing: float = 0.6  # weight of the previous smoothed value (exponential moving average)
    min_improvement: float = 1e-3  # relative: smaller gains are noise, not progress
    smoothed: float | None = None
    best_value: float | None = None
    best_epoch: int = 0
    last_epoch: int = 0

    def update(self, epoch: int, value: float) -> bool:
        """Record the held-out loss of ``epoch``; return True when it is the best so far."""
        self.smoothed = (
            value if self.smoothed is None else self.smoothing * self.smoothed + (1 - self.smoothing) * value
        )
        self.last_epoch = epoch
        if self.best_value is None or self.smoothed < self.best_value * (1 - self.min_improvement):
            self.best_value = self.smoothed
            self.best_epoch = epoch
            return True
        return False

    @property
    def epochs_since_best(self) -> int:
        return self.last_epoch - self.best_epoch

    @property
    def overtraining(self) -> bool:
        return self.best_value is not None and self.epochs_since_best >= self.patience

    def summary(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "best_smoothed_val_mel": self.best_value,
            "epochs_since_best": self.epochs_since_best,
            "patience": self.patience,
            "overtraining": self.overtraining,
        }

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

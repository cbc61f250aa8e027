"""Learning-rate schedules, stepped once per epoch as RVC does."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from rvc.config.train import TrainConfig


def lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """Return epoch -> multiplier of the base learning rate for the configured scheme."""
    if config.lr_scheme == "exponential":
        return lambda epoch: config.lr_gamma**epoch
    if config.lr_scheme == "multistep":
        milestones = sorted(config.lr_milestones)
        return lambda epoch: config.lr_factor ** sum(1 for m in milestones if epoch >= m)
    if config.lr_scheme == "cosine":
        period = max(1, config.cosine_period)
        floor = config.cosine_min_lr / config.lr

        def cosine(epoch: int) -> float:
            cycle, position = divmod(epoch, period)
            peak = config.cosine_restart_decay**cycle
            return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * position / period))

        return cosine
    raise ValueError(f"unknown lr scheme {config.lr_scheme!r}")


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))

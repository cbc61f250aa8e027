"""fp16's dynamic loss scale, kept on the device so that an fp16 step runs inside a CUDA graph.

The rule is torch.amp.GradScaler's:
- gradients are taken of loss × scale and divided back before the grad norm;
- a step whose gradients are not finite is skipped, and the scale halves;
- after ``growth_interval`` finite steps in a row, the scale doubles.

GradScaler keeps its stage in Python and cannot skip a step on a device flag. Here every
decision is a tensor operation, so a graph replays it: no host sync, and the warm-up steps
that must not train (``dry``) leave the scale alone too. Its state dict uses GradScaler's keys,
so states saved before this class load.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LossScale:
    """enabled : False for fp32 and bf16, where every method is a no-op (scale 1)."""

    def __init__(
        self, device: torch.device, enabled: bool, init_scale: float = 2.0**16, growth_interval: int = 2000
    ) -> None:
        self.enabled = enabled
        self.growth_interval = growth_interval
        self.scale = torch.full((), init_scale if enabled else 1.0, device=device)
        self.good_steps = torch.zeros((), device=device)  # finite steps in a row since the last change

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return loss * self.scale if self.enabled else loss

    def unscale_(self, parameters: list[nn.Parameter]) -> None:
        """Divide the gradients by the scale, in place (non-finite ones stay non-finite)."""
        if self.enabled:
            grads = [p.grad for p in parameters if p.grad is not None]
            torch._foreach_mul_(grads, self.scale.reciprocal())

    def update(self, finite: torch.Tensor, dry: torch.Tensor) -> None:
        """After a step: halve on non-finite gradients, double after enough finite steps; not when ``dry``."""
        if not self.enabled:
            return
        good = (self.good_steps + 1.0) * finite.float()
        grow = good >= self.growth_interval
        factor = torch.where(finite, torch.where(grow, 2.0, 1.0), 0.5)
        self.scale.copy_(torch.where(dry, self.scale, self.scale * factor))
        self.good_steps.copy_(torch.where(dry, self.good_steps, torch.where(grow, 0.0, good)))

    def state_dict(self) -> dict[str, Any]:
        if not self.enabled:
            return {}
        return {"scale": float(self.scale), "_growth_tracker": int(self.good_steps)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take a saved scale (in place: a captured graph keeps reading the same tensors)."""
        if self.enabled and state:
            self.scale.fill_(float(state["scale"]))
            self.good_steps.fill_(float(state.get("_growth_tracker", 0)))

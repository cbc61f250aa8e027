"""Training on several GPUs of one host (torchrun): who this process is, and what the ranks share.

No DistributedDataParallel: its hooks cannot sit inside a captured CUDA graph. The step
all-reduces one flat gradient buffer itself (NCCL supports capture), rank 0's weights are
broadcast once at the start, and decisions that end a run are agreed on by every rank, or
the ones that go on would wait in their next all-reduce forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def any_rank(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` holds on any rank (a collective: every rank must call it; syncs)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor(float(flag), device=device)
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return bool(value.item())

    def smallest(self, value: int, device: torch.device) -> int:
        """The smallest ``value`` of any rank (a collective: every rank must call it; syncs)."""
        if self.world_size == 1:
            return value
        tensor = torch.tensor(value, device=device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MIN)
        return int(tensor.item())

    def weights_agree(self, modules: list[nn.Module], device: torch.device) -> bool | None:
        """Whether every rank holds the same weights (a collective; syncs); None with one process.

        They must, bit for bit: every rank starts from rank 0's weights and applies the same
        all-reduced gradients with the same optimizer. A difference means the ranks trained
        apart (a desynchronised step), which the loss curves alone would not show.
        """
        if self.world_size == 1:
            return None
        with torch.no_grad():
            tensors = [t for module in modules for t in (*module.parameters(), *module.buffers())]
            # One fp64 sum and sum of squares per tensor: a change anywhere moves its tensor's pair.
            mine = torch.stack([torch.stack([t.double().sum(), t.double().square().sum()]) for t in tensors])
            mine = mine.reshape(-1).to(device)
            highest, lowest = mine.clone(), mine.clone()
            torch.distributed.all_reduce(highest, op=torch.distributed.ReduceOp.MAX)
            torch.distributed.all_reduce(lowest, op=torch.distributed.ReduceOp.MIN)
        return bool(torch.equal(highest, lowest))

    def rank0_says(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's ``flag`` on every rank (a collective: every rank must call it; syncs)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor(float(flag), device=device)
        torch.distributed.broadcast(value, src=0)
        return bool(value.item())


def all_reduce_gradients(world_size: int) -> Callable[[list[nn.Parameter]], None]:
    """Average the gradients of ``parameters`` over the processes: one flat all-reduce.

    Used instead of DistributedDataParallel: DDP's hooks cannot sit inside a captured graph,
    and one all-reduce of a flat buffer can (NCCL supports capture).
    """
    import torch.distributed as dist

    def reduce(parameters: list[nn.Parameter]) -> None:
        grads = [p.grad for p in parameters if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(world_size)
        parts = flat.split([g.numel() for g in grads])
        torch._foreach_copy_(grads, [part.view_as(g) for part, g in zip(parts, grads, strict=True)])

    return reduce


def broadcast_parameters(modules: list[nn.Module]) -> None:
    """Give every process rank 0's weights (what DDP does when it wraps a model)."""
    import torch.distributed as dist

    with torch.no_grad():
        for module in modules:
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor, src=0)

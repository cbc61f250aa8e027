"""Regional compilation: ``torch.compile`` the models' repeated blocks instead of the whole step.

The compiled step (``StepFunctions.compiled``) traces the generator's forward and both
discriminator losses as three large graphs: about 200 s cold on an H100, which a 200-epoch run
does not repay (benchmarks/README.md). Most of what Inductor gains there is fusing the small
elementwise kernels between convolutions (leaky ReLU, residual adds, gates, weight norm), and
those all live inside a few block types that repeat: HiFi-GAN residual blocks, WaveNet stacks,
the period and scale discriminators, the attention encoder. Compiling each block type in
place compiles blocks of the same shapes once (Dynamo reuses a graph whose guards match) and
keeps each graph small, so the cold compile should be a fraction of the whole step's; whether
the step keeps the whole-step compile's speed is what ``benchmarks/profile_step.py --modes
regional`` measures.
"""

from __future__ import annotations

from torch import nn

from rvc.models.attentions import Encoder
from rvc.models.discriminator import DiscriminatorP, DiscriminatorS
from rvc.models.modules import WN, ResBlock1, ResBlock2

REGIONS = (ResBlock1, ResBlock2, WN, Encoder, DiscriminatorS, DiscriminatorP)

# Each block type's forward is one code object compiled once per distinct shape, grad mode and
# autocast state: 12 decoder blocks and 8 periods, each run with and without D's gradients,
# exceed Dynamo's default of 8 graphs per code object (past it, it silently runs eagerly).
RECOMPILE_LIMIT = 64


def compile_regions(*models: nn.Module, backend: str = "inductor", only: tuple[str, ...] = ()) -> int:
    """Compile every REGIONS block under ``models`` in place; return how many were marked.

    ``only``: compile just the block types of these class names (to find which regions pay).

    The modules keep their parameters and state-dict keys; a compiled module runs its
    ``forward`` (fp32 islands included) through Dynamo on its next call.
    """
    import torch._dynamo.config as dynamo_config

    for name in ("recompile_limit", "cache_size_limit"):
        if getattr(dynamo_config, name, RECOMPILE_LIMIT) < RECOMPILE_LIMIT:
            setattr(dynamo_config, name, RECOMPILE_LIMIT)
    marked = 0
    for model in models:
        for module in model.modules():
            if isinstance(module, REGIONS) and (not only or type(module).__name__ in only):
                module.compile(dynamic=False, backend=backend)
                marked += 1
    return marked

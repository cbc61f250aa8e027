"""Which parts of the step run in reduced precision.

A precision is a plan, not one dtype: the generator's waveform and mel path and the
discriminators can autocast separately, and chosen generator modules can stay in fp32 inside
an autocast generator ("fp32 islands": their inputs are cast up and autocast is off inside).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from rvc.errors import UserError
from rvc.models.generator import GeneratorNSF


def _decoder_last_stage(generator: nn.Module) -> list[str]:
    """The decoder's last upsampling stage (at the output rate) and its output conv."""
    dec = cast(GeneratorNSF, generator.get_submodule("dec"))
    last = len(dec.ups) - 1
    blocks = range(last * dec.num_kernels, (last + 1) * dec.num_kernels)
    return [f"dec.ups.{last}", f"dec.noise_convs.{last}", *(f"dec.resblocks.{i}" for i in blocks), "dec.conv_post"]


def _frame_rate_parts(generator: nn.Module) -> list[str]:
    """The encoders and the flow: frame-rate work (little of the step's time) that feeds the KL loss."""
    return ["enc_p", "enc_q", "flow"]


@dataclass(frozen=True)
class Precision:
    """name : as given on the command line
    dtype : the reduced dtype autocast uses (float32: none)
    generator, discriminator : whether each network's forward autocasts to ``dtype``
    fp32_islands : generator → names of its submodules that stay in fp32 inside an autocast generator
    """

    name: str
    dtype: torch.dtype
    generator: bool
    discriminator: bool
    fp32_islands: Callable[[nn.Module], list[str]] = field(default=lambda generator: [])

    def autocast(self, device: torch.device, enabled: bool) -> torch.autocast:
        return torch.autocast(device.type, self.dtype, enabled=enabled and self.dtype != torch.float32)

    def apply(self, generator: nn.Module, device: torch.device) -> None:
        """Make the generator's fp32 islands run in fp32 whatever autocast surrounds them."""
        if not self.generator:
            return
        for name in self.fp32_islands(generator):
            keep_in_fp32(generator.get_submodule(name), device)


PLANS = {
    "fp32": Precision("fp32", torch.float32, False, False),
    "bf16": Precision("bf16", torch.bfloat16, True, True),
    "fp16": Precision("fp16", torch.float16, True, True),
    "bf16-d": Precision("bf16-d", torch.bfloat16, False, True),
    "bf16-tail": Precision("bf16-tail", torch.bfloat16, True, True, _decoder_last_stage),
    "bf16-frame": Precision("bf16-frame", torch.bfloat16, True, True, _frame_rate_parts),
}


def keep_in_fp32(module: nn.Module, device: torch.device) -> None:
    """Run ``module`` in fp32 inside autocast: floating inputs cast up, autocast off within.

    The forward is replaced on the instance only, so state dicts and checkpoints do not change.
    """
    forward = module.forward

    def fp32_forward(*args: Any, **kwargs: Any) -> Any:
        args = tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
        with torch.autocast(device.type, enabled=False):
            return forward(*args, **kwargs)

    module.forward = fp32_forward


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """Return the plan for ``--precision``; "auto" is bf16-tail on GPUs with bf16, else fp32 (TF32).

    Why bf16-tail and not bf16 (benchmarks/quality.py on an H100: flite speech, v2 40k from
    scratch, held-out mel after 420 steps): plain bf16 ended at 1.66 against 1.42-1.45 for three
    fp32 seeds, and bf16 everywhere but the encoders (bf16-frame) at 1.61, so the loss is in the
    decoder. Keeping its last, output-rate stage in fp32 (bf16-tail) gave 1.43 and 1.50 on two
    seeds, within the noise of fp32's, at 27.8 steps/s compiled against fp32's 18.0. fp16 (1.51)
    costs more than that, so a GPU without bf16 trains in fp32 unless asked.
    """
    if precision == "auto":
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
        name = "bf16-tail" if bf16 else "fp32"
    else:
        name = precision
    if name not in PLANS:
        raise UserError(f"unknown precision {precision!r}")
    plan = PLANS[name]
    if plan.dtype == torch.float16 and device.type != "cuda":
        raise UserError("fp16 training needs a CUDA GPU; use --precision fp32 on a CPU")
    if plan.dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError("this GPU has no bf16: use --precision fp16 or fp32")
    return plan

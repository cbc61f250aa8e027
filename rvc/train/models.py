"""What a run trains: the generator and discriminator, their optimizers and schedulers, on a device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from rvc.config.experiment import ExperimentConfig
from rvc.models.discriminator import DiscriminatorS, MultiPeriodDiscriminatorV2
from rvc.models.generator import GeneratorNSF
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.train.loss_scale import LossScale
from rvc.train.precision import PLANS, Precision
from rvc.train.schedule import make_scheduler


@dataclass
class Models:
    generator: nn.Module
    discriminator: nn.Module
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer
    scheduler_g: torch.optim.lr_scheduler.LRScheduler
    scheduler_d: torch.optim.lr_scheduler.LRScheduler
    loss_scale: LossScale  # fp16 only: bf16 and fp32 need no scaling
    # listed once: the step reads them for the grad norms, and a launch-bound step has no time to spare
    g_params: list[nn.Parameter]
    d_params: list[nn.Parameter]


def build_models(
    config: ExperimentConfig,
    device: torch.device,
    precision: Precision = PLANS["fp32"],
    channels_last: bool | None = None,
) -> Models:
    """Build G (with the precision plan's fp32 islands) and D, a fused AdamW and a scheduler for each.

    ``channels_last`` (default: on CUDA) stores the convolutions' activations channels-last.
    """
    generator = SynthesizerTrnMs768NSFsid(config.model).to(device)
    precision.apply(generator, device)
    discriminator = MultiPeriodDiscriminatorV2(divisor=config.model.discriminator_divisor).to(device)
    if channels_last if channels_last is not None else device.type == "cuda":
        # cuDNN's tensor-core convolutions read and write NHWC; given NCHW they transpose the input
        # and output of every convolution (about a fifth of the step's GPU time). The period
        # discriminators are 2-D convolutions; the decoder and the scale discriminator run their
        # 1-D ones as 2-D over (N, C, 1, L) (rvc/models/commons.Conv1d).
        discriminator.to(memory_format=torch.channels_last)
        cast(GeneratorNSF, generator.get_submodule("dec")).channels_last = True
        cast(DiscriminatorS, discriminator.get_submodule("discriminators.0")).channels_last = True
    train = config.train
    fused = True  # one kernel for the whole step, and it can skip a non-finite step on the device
    optimizer_g = torch.optim.AdamW(generator.parameters(), train.lr, train.betas, train.eps, fused=fused)
    optimizer_d = torch.optim.AdamW(discriminator.parameters(), train.lr, train.betas, train.eps, fused=fused)
    return Models(
        generator,
        discriminator,
        optimizer_g,
        optimizer_d,
        make_scheduler(optimizer_g, train),
        make_scheduler(optimizer_d, train),
        LossScale(device, enabled=precision.dtype == torch.float16),
        list(generator.parameters()),
        list(discriminator.parameters()),
    )


def configure_backends(device: torch.device, tf32: bool) -> None:
    """TF32 matmuls and cuDNN autotuning on CUDA (every step has the same shapes, so tuning pays)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True

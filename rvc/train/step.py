"""One training step of D then G, written once for every way it runs.

The same ``TrainStep`` runs eagerly (CPUs, fp16, debugging), is replayed as one CUDA
graph (``graph.py``), and calls ``torch.compile``d pieces when it is given them. It never
syncs with the host: the batch is gathered on the device from the ``TrainingSet``, losses and
grad norms are added to device accumulators (``StepMetrics``), and a non-finite step is
skipped by the fused optimizer reading a flag on the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rvc.config.experiment import ExperimentConfig
from rvc.models.commons import slice_segments
from rvc.train.data import TrainingSet
from rvc.train.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss, kl_loss
from rvc.train.mel import MultiScaleMel, Spectrogram
from rvc.train.models import Models
from rvc.train.precision import PLANS, Precision

METRIC_NAMES = (
    "loss/g/total",
    "loss/d/total",
    "loss/g/mel",
    "loss/g/kl",
    "loss/g/fm",
    "loss/g/gen",
    "grad_norm_g",
    "grad_norm_d",
)


class StepMetrics:
    """Device accumulators the step adds to; read (one host sync) only when progress is printed.

    sums : per metric, the sum over the steps since the last read (non-finite values count as 0)
    steps : steps since the last read
    bad_in_a_row : non-finite steps in a row, now
    bad_total : non-finite (skipped) steps since the run started
    """

    def __init__(self, device: torch.device) -> None:
        self.sums = {name: torch.zeros((), device=device) for name in METRIC_NAMES}
        self.steps = torch.zeros((), device=device)
        self.bad_in_a_row = torch.zeros((), device=device)
        self.bad_total = torch.zeros((), device=device)

    def add(self, values: dict[str, torch.Tensor], finite: torch.Tensor) -> None:
        """Add one step's values in place (the tensors keep their storage: a CUDA graph writes to them)."""
        for name in METRIC_NAMES:
            self.sums[name].add_(torch.nan_to_num(values[name].detach().float(), nan=0.0, posinf=0.0, neginf=0.0))
        bad = 1.0 - finite.float()
        self.bad_in_a_row.add_(bad).mul_(bad)
        self.bad_total.add_(bad)
        self.steps.add_(1.0)

    def read(self) -> tuple[dict[str, float], int, int]:
        """Return (mean of each metric since the last read, non-finite steps in a row, in total) and
        restart the window. Syncs with the device."""
        steps = max(1.0, float(self.steps))
        means = {name: float(value) / steps for name, value in self.sums.items()}
        in_a_row, total = int(self.bad_in_a_row), int(self.bad_total)
        for value in self.sums.values():
            value.zero_()
        self.steps.zero_()
        return means, in_a_row, total

    def reset(self, bad_total: int = 0) -> None:
        """Forget everything accumulated (after warm-up steps that did not train)."""
        for value in (*self.sums.values(), self.steps, self.bad_in_a_row):
            value.zero_()
        self.bad_total.fill_(bad_total)


@dataclass
class StepFunctions:
    """The pieces of a step that ``torch.compile`` may replace; plain calls by default.

    generator_forward(phone, lengths, pitch, pitchf, spec, spec_lengths, sid) -> RVC's training outputs
    discriminator_loss(real, fake) -> the LSGAN loss of D (fake detached by the caller)
    adversarial_losses(real, fake) -> (LSGAN loss of G, feature-matching loss)
    """

    generator_forward: Callable[..., Any]
    discriminator_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    adversarial_losses: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

    @classmethod
    def plain(cls, generator: nn.Module, discriminator: nn.Module) -> StepFunctions:
        def d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
            real_scores, fake_scores, _, _ = discriminator(real, fake)
            return discriminator_loss(real_scores, fake_scores)

        def adversarial(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            _, fake_scores, real_maps, fake_maps = discriminator(real, fake)
            return generator_adversarial_loss(fake_scores), feature_matching_loss(real_maps, fake_maps)

        return cls(generator, d_loss, adversarial)

    def compiled(self, backend: str = "inductor") -> StepFunctions:
        """The same functions through ``torch.compile`` (static shapes: one graph each, no recompiles).

        ``backend="aot_eager"`` traces and differentiates as Inductor would but runs PyTorch's own
        kernels: the CPU tests use it, as Inductor's C++ build takes minutes on a small machine.
        """
        return StepFunctions(
            torch.compile(self.generator_forward, dynamic=False, backend=backend),
            torch.compile(self.discriminator_loss, dynamic=False, backend=backend),
            torch.compile(self.adversarial_losses, dynamic=False, backend=backend),
        )


def grad_norm(parameters: list[nn.Parameter], clip: float | None) -> torch.Tensor:
    """Total L2 norm of the gradients, on the device (no sync); clipped in place when ``clip`` is set."""
    if clip is not None:
        return torch.nn.utils.clip_grad_norm_(parameters, clip, foreach=True)
    norms = torch._foreach_norm([p.grad for p in parameters if p.grad is not None])
    return torch.linalg.vector_norm(torch.stack(norms))


class TrainStep:
    """``step(index)``: one optimizer step of D then G on the clips ``index`` of ``data``.

    index : Tensor[K x B] clip rows on the device, K micro-batches (gradient accumulation). With
    K = 1 the order is RVC's: D steps before G's loss sees it. With K > 1 both step after the
    last micro-batch, so G's losses see the D of the previous step.

    ``dry`` (a device flag) makes a step compute everything but update nothing: the warm-up
    steps that compile and capture the graph must not train twice on their batches.
    ``all_reduce`` (several GPUs without DDP) averages the gradients across processes.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        models: Models,
        spectrogram: Spectrogram,
        data: TrainingSet,
        metrics: StepMetrics,
        precision: Precision = PLANS["fp32"],
        functions: StepFunctions | None = None,
        multiscale: MultiScaleMel | None = None,
        all_reduce: Callable[[list[nn.Parameter]], None] | None = None,
    ) -> None:
        self.config = config
        self.models = models
        self.spectrogram = spectrogram
        self.data = data
        self.metrics = metrics
        self.precision = precision
        self.functions = functions or StepFunctions.plain(models.generator, models.discriminator)
        self.multiscale = multiscale
        self.all_reduce = all_reduce
        self.device = data.wav.device
        self.dry = torch.zeros((), dtype=torch.bool, device=self.device)

    def __call__(self, index: torch.Tensor) -> None:
        train, cfg = self.config.train, self.config.model
        models, fn, data = self.models, self.functions, self.data
        micro = index.size(0)
        autocast_g = self.precision.autocast(self.device, self.precision.generator)
        autocast_d = self.precision.autocast(self.device, self.precision.discriminator)
        models.optimizer_d.zero_grad(set_to_none=True)
        models.optimizer_g.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        finite_d = torch.ones((), dtype=torch.bool, device=self.device)
        losses_finite = torch.ones((), dtype=torch.bool, device=self.device)
        for m in range(micro):
            rows = index[m]
            wav, lengths, speakers = data.wav[rows], data.lengths[rows], data.speakers[rows]
            phone, pitch, pitchf = data.phone[rows].float(), data.pitch[rows], data.pitchf[rows]
            spec = self.spectrogram.linear(wav)
            with autocast_g:
                y_hat, ids_slice, _, z_mask, (_, z_p, m_p, logs_p, _, logs_q) = fn.generator_forward(
                    phone, lengths, pitch, pitchf, spec, lengths, speakers
                )
            real = slice_segments(wav, ids_slice * cfg.hop_length, cfg.segment_size).unsqueeze(1)

            # Discriminator: real towards 1, generated (detached) towards 0.
            with autocast_d:
                loss_d = fn.discriminator_loss(real, y_hat.detach())
            models.loss_scale.scale_loss(loss_d / micro).backward()
            if m == micro - 1:
                if self.all_reduce is not None:
                    self.all_reduce(models.d_params)
                models.loss_scale.unscale_(models.d_params)
                grad_norm_d = grad_norm(models.d_params, train.grad_clip)
                finite_d = torch.isfinite(grad_norm_d)
                if micro == 1:
                    self._step_if_finite(models.optimizer_d, finite_d)

            # Generator: fool D, match its features, and match the real mel.
            models.discriminator.requires_grad_(False)  # no D weight grads in the G backward: less work
            with autocast_d:
                loss_gen, loss_fm = fn.adversarial_losses(real, y_hat)
            mels = self.spectrogram.mel(torch.cat([real.squeeze(1), y_hat.squeeze(1).float()]))
            real_mel, fake_mel = mels.chunk(2)
            loss_mel = nn.functional.l1_loss(fake_mel, real_mel)
            if self.multiscale is not None:
                loss_mel = 0.5 * (loss_mel + self.multiscale.loss(real.squeeze(1), y_hat.squeeze(1).float()))
            loss_mel = loss_mel * train.c_mel
            loss_kl = kl_loss(z_p, logs_q, m_p, logs_p, z_mask) * train.c_kl
            loss_g = loss_gen + loss_fm + loss_mel + loss_kl
            models.loss_scale.scale_loss(loss_g / micro).backward()
            models.discriminator.requires_grad_(True)
            losses_finite = losses_finite & torch.isfinite(loss_d) & torch.isfinite(loss_g)
            for name, value in (
                ("loss/g/total", loss_g),
                ("loss/d/total", loss_d),
                ("loss/g/mel", loss_mel),
                ("loss/g/kl", loss_kl),
                ("loss/g/fm", loss_fm),
                ("loss/g/gen", loss_gen),
            ):
                sums[name] = sums.get(name, 0) + value.detach() / micro
        if micro > 1:
            self._step_if_finite(models.optimizer_d, finite_d)
        if self.all_reduce is not None:
            self.all_reduce(models.g_params)
        models.loss_scale.unscale_(models.g_params)
        grad_norm_g = grad_norm(models.g_params, train.grad_clip)
        finite_g = torch.isfinite(grad_norm_g)
        self._step_if_finite(models.optimizer_g, finite_g)
        models.loss_scale.update(finite_d & finite_g, self.dry)
        # A skipped step is one whose losses or gradients are not finite. With fp16 the loss scale
        # also skips steps whose scaled gradients overflow while it calibrates: that is routine,
        # not divergence, so only the losses count there.
        finite = losses_finite if models.loss_scale.enabled else losses_finite & finite_d & finite_g
        self.metrics.add(sums | {"grad_norm_g": grad_norm_g, "grad_norm_d": grad_norm_d}, finite)

    def _step_if_finite(self, optimizer: torch.optim.Optimizer, finite: torch.Tensor) -> None:
        """Take the optimizer step unless the loss or gradients are not finite, without a host sync.

        Fused AdamW reads ``found_inf`` on the device and skips the whole update (moments and
        step count included) when it is 1: an fp16 overflow, a diverging step, or a dry one.
        """
        optimizer.found_inf = (~finite | self.dry).to(torch.float32)  # type: ignore[attr-defined]
        optimizer.step()

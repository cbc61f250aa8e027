"""RVC's training objective as pure functions: LSGAN, feature matching, KL (the L1 mel is inline)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def discriminator_loss(real_scores: Sequence[torch.Tensor], fake_scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN loss of the discriminator: real towards 1, generated towards 0."""
    total = real_scores[0].new_zeros((), dtype=torch.float32)
    for real, fake in zip(real_scores, fake_scores, strict=True):
        total = total + torch.mean((1 - real.float()) ** 2) + torch.mean(fake.float() ** 2)
    return total


def generator_adversarial_loss(fake_scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN loss of the generator: generated scores towards 1."""
    total = fake_scores[0].new_zeros((), dtype=torch.float32)
    for fake in fake_scores:
        total = total + torch.mean((1 - fake.float()) ** 2)
    return total


def feature_matching_loss(
    real_maps: Sequence[Sequence[torch.Tensor]], fake_maps: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """L1 between the discriminators' feature maps of real and generated audio, times 2 as RVC."""
    total = real_maps[0][0].new_zeros((), dtype=torch.float32)
    for reals, fakes in zip(real_maps, fake_maps, strict=True):
        for real, fake in zip(reals, fakes, strict=True):
            total = total + torch.mean(torch.abs(real.detach().float() - fake.float()))
    return total * 2


def kl_loss(
    z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor, z_mask: torch.Tensor
) -> torch.Tensor:
    """KL between the posterior sample pushed through the flow and the prior, averaged over valid frames.

    z_p, logs_q : Tensor[B x C x T] (posterior side); m_p, logs_p : Tensor[B x C x T] (prior);
    z_mask : Tensor[B x 1 x T]
    """
    z_p, logs_q, m_p, logs_p, z_mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, z_mask))
    kl = logs_p - logs_q - 0.5 + 0.5 * ((z_p - m_p) ** 2) * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * z_mask) / torch.sum(z_mask)

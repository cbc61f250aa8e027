"""The NSF-HiFiGAN decoder: a sine excitation from f0, mixed into HiFi-GAN's upsampling stack.

Names (`m_source.l_linear`, `noise_convs`, `conv_pre`, `ups`, `resblocks`, `conv_post`, `cond`)
and registration order follow RVC's GeneratorNSF, so `dec.*` keys and their order match.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rvc.models.commons import (
    LRELU_SLOPE,
    Conv1d,
    ConvTranspose1d,
    from_channels_last_1d,
    to_channels_last_1d,
    weight_norm,
)
from rvc.models.modules import ResBlock1, ResBlock2


class SineGen(nn.Module):
    """Turn frame-rate f0 into a sample-rate sine excitation (plus noise), as NSF does.

    f0 : Tensor[B x T] in Hz (0 = unvoiced), upp : samples per frame
    noise : Tensor[B x T*upp x H+1] standard normal, or None to draw it here (an ONNX export
        draws it in the graph and passes it in, so a test can feed PyTorch the same noise)
    returns : (sine Tensor[B x T*upp x H+1], uv Tensor[B x T*upp x 1])

    Voiced samples carry `sine_amp`-high sines at f0 and its harmonics plus faint noise;
    unvoiced samples carry noise only. No gradient flows through the source.
    """

    def __init__(
        self,
        sample_rate: int,
        harmonic_num: int = 0,
        sine_amp: float = 0.1,
        noise_std: float = 0.003,
        voiced_threshold: float = 0.0,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.dim = harmonic_num + 1
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.voiced_threshold = voiced_threshold

    def forward(
        self, f0: torch.Tensor, upp: int, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            b, t = f0.shape
            f0 = f0.float()
            harmonics = torch.arange(1, self.dim + 1, device=f0.device, dtype=torch.float32)
            step = f0.unsqueeze(-1) * harmonics / self.sample_rate  # cycles per sample, [B, T, H]
            # Phase at each frame start: the sum of earlier frames' whole advance, kept in [0, 1).
            # Summed in float64 so phase stays exact over minutes of audio (MPS has no float64).
            acc_dtype = torch.float32 if f0.device.type == "mps" else torch.float64
            advance = torch.remainder(step.to(acc_dtype) * upp, 1.0)
            start = torch.remainder(torch.cumsum(advance, dim=1) - advance, 1.0).to(torch.float32)
            if self.dim > 1:
                # Harmonics above the fundamental start at a random phase, as in RVC.
                offset = torch.rand(b, 1, self.dim, device=f0.device)
                start = start + offset * (harmonics > 1)
            within = torch.arange(1, upp + 1, device=f0.device, dtype=torch.float32)  # samples into the frame
            phase = start.unsqueeze(2) + step.unsqueeze(2) * within.view(1, 1, upp, 1)  # [B, T, upp, H]
            sine = torch.sin(2 * math.pi * torch.remainder(phase, 1.0)).reshape(b, t * upp, self.dim)
            sine = sine * self.sine_amp

            uv = (f0 > self.voiced_threshold).float()
            uv = uv.unsqueeze(-1).expand(b, t, upp).reshape(b, t * upp, 1)
            noise_amp = uv * self.noise_std + (1 - uv) * (self.sine_amp / 3)
            sine = sine * uv + noise_amp * (torch.randn_like(sine) if noise is None else noise)
        return sine, uv


class SourceModuleHnNSF(nn.Module):
    """Merge the sine harmonics into one excitation channel with a learned linear mix and tanh.

    f0 : Tensor[B x T] -> Tensor[B x T*upp x 1]; noise : SineGen's (None: drawn there)
    """

    def __init__(self, sample_rate: int, harmonic_num: int = 0) -> None:
        super().__init__()
        self.l_sin_gen = SineGen(sample_rate, harmonic_num)
        self.l_linear = nn.Linear(harmonic_num + 1, 1)

    def forward(self, f0: torch.Tensor, upp: int, noise: torch.Tensor | None = None) -> torch.Tensor:
        sine, _ = self.l_sin_gen(f0, upp, noise)
        return torch.tanh(self.l_linear(sine.to(self.l_linear.weight.dtype)))


class GeneratorNSF(nn.Module):
    """HiFi-GAN upsampler driven by latent frames and an f0 sine source.

    x : Tensor[B x C_in x T], f0 : Tensor[B x T] Hz, g : Tensor[B x G x 1] or None
    noise : Tensor[B x T*upp x 1] the source's standard-normal noise, or None to draw it
    returns : Tensor[B x 1 x T*prod(upsample_rates)] in [-1, 1]

    ``channels_last`` (the trainer sets it on CUDA) runs the whole stack on (B, C, 1, T)
    channels-last activations, which cuDNN convolves without transposing each layer's input
    and output; the same weights, the same result.
    """

    channels_last = False

    def __init__(
        self,
        initial_channel: int,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        gin_channels: int,
        sample_rate: int,
    ) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.upp = math.prod(upsample_rates)
        self.m_source = SourceModuleHnNSF(sample_rate, harmonic_num=0)
        self.noise_convs = nn.ModuleList()
        self.conv_pre = Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        block = ResBlock1 if resblock == "1" else ResBlock2
        channels = upsample_initial_channel
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            channels = upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(
                weight_norm(ConvTranspose1d(channels * 2, channels, kernel, rate, padding=(kernel - rate) // 2))
            )
            # The source enters every stage: a strided conv brings it down to that stage's rate.
            stride = math.prod(upsample_rates[i + 1 :])
            if stride > 1:
                conv = Conv1d(1, channels, kernel_size=stride * 2, stride=stride, padding=stride // 2)
            else:
                conv = Conv1d(1, channels, kernel_size=1)
            self.noise_convs.append(conv)
        self.resblocks = nn.ModuleList(
            block(upsample_initial_channel // 2 ** (i + 1), k, tuple(d))
            for i in range(len(self.ups))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True)
        )
        self.conv_post = Conv1d(channels, 1, 7, 1, padding=3, bias=False)
        self.cond = Conv1d(gin_channels, upsample_initial_channel, 1) if gin_channels else None

    def forward(
        self, x: torch.Tensor, f0: torch.Tensor, g: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        source = self.m_source(f0, self.upp, noise).transpose(1, 2)  # [B, 1, T*upp]
        if self.channels_last:
            x, source = to_channels_last_1d(x), to_channels_last_1d(source)
            g = to_channels_last_1d(g) if g is not None else None
        x = self.conv_pre(x)
        if self.cond is not None and g is not None:
            x = x + self.cond(g)
        for i, (up, noise_conv) in enumerate(zip(self.ups, self.noise_convs, strict=True)):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = x + noise_conv(source)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            total = blocks[0](x)
            for block in blocks[1:]:
                total = total + block(x)
            x = total / self.num_kernels
        # RVC's last activation uses the default slope (0.01), not LRELU_SLOPE.
        x = self.conv_post(F.leaky_relu(x))
        if self.channels_last:
            x = from_channels_last_1d(x)
        return torch.tanh(x)

"""Stationary noise reduction by spectral gating, in torch (on the GPU when there is one).

The method of ``noisereduce``'s stationary mode: a per-frequency threshold
(mean + ``n_std`` standard deviations of the noise, in dB) is learnt from the
quietest frames of the recording itself; time-frequency bins below it are
attenuated through a mask smoothed over 50 ms, so isolated noise bins that
cross the threshold do not survive as "musical noise". The mask is smoothed
over only ~50 Hz in frequency: noisereduce's 500 Hz averages each harmonic of a
low voice with the gated bins between harmonics and takes ~6 dB off the voice.
Long recordings are processed in blocks with enough context that the result
equals processing them whole.

Imported only when ``--denoise`` is on, so torch at the top is fine.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from rvc.data.slicer import frame_rms

NOISE_FRACTION = 0.1  # the quietest 10% of frames stand for the noise (pauses between phrases)
FREQ_SMOOTH_HZ = 50.0
TIME_SMOOTH_S = 0.050
BLOCK_SECONDS = 30.0  # bounds memory: a block's STFT, not the whole file's, is held at once


def spectral_gate(
    audio: np.ndarray, sample_rate: int, device: str = "cpu", strength: float = 1.0, n_std: float = 1.5
) -> np.ndarray:
    """Return ``audio`` with its stationary background noise attenuated.

    audio : float32 ndarray[T] (mono); returns float32 ndarray[T].
    strength : 1.0 removes gated bins fully, 0.0 leaves the audio unchanged.
    """
    if len(audio) == 0 or strength <= 0:
        return np.asarray(audio, dtype=np.float32)
    n_fft = 2 ** round(math.log2(sample_rate * 0.064))  # ~64 ms: 2048 at 32-48 kHz, 1024 at 16 kHz
    hop = n_fft // 4
    target = torch.device(device)
    with torch.inference_mode():
        threshold = _noise_threshold(audio, n_fft, hop, n_std, target)  # (F,)
        kernel = _smoothing_kernel(sample_rate, n_fft, hop, target)
        context = n_fft + hop * kernel.shape[-1]
        block = max(int(BLOCK_SECONDS * sample_rate), 4 * context)
        window = torch.hann_window(n_fft, device=target)
        out = np.empty(len(audio), dtype=np.float32)
        for start in range(0, len(audio), block):
            end = min(len(audio), start + block)
            lo, hi = max(0, start - context), min(len(audio), end + context)
            piece = torch.from_numpy(np.ascontiguousarray(audio[lo:hi], dtype=np.float32)).to(target)
            gated = _gate(piece, threshold, kernel, window, n_fft, hop, strength)
            out[start:end] = gated[start - lo : end - lo].cpu().numpy()
    return out


def _noise_threshold(audio: np.ndarray, n_fft: int, hop: int, n_std: float, device: torch.device) -> torch.Tensor:
    """Return the per-bin gate threshold in dB, ``(n_fft // 2 + 1,)``, from the quietest frames."""
    rms = frame_rms(audio, n_fft, hop)
    count = max(1, int(len(rms) * NOISE_FRACTION))
    quiet = np.sort(np.argsort(rms, kind="stable")[:count])
    padded = np.pad(np.asarray(audio, dtype=np.float32), (n_fft // 2, n_fft // 2))
    frames = np.stack([padded[i * hop : i * hop + n_fft] for i in quiet])
    if frames.shape[1] < n_fft:  # a recording shorter than one frame
        frames = np.pad(frames, ((0, 0), (0, n_fft - frames.shape[1])))
    spectra = torch.fft.rfft(torch.from_numpy(frames).to(device) * torch.hann_window(n_fft, device=device), dim=-1)
    level = 20 * torch.log10(spectra.abs() + 1e-10)
    std = level.std(dim=0, unbiased=False) if count > 1 else torch.zeros_like(level[0])
    return level.mean(dim=0) + n_std * std


def _smoothing_kernel(sample_rate: int, n_fft: int, hop: int, device: torch.device) -> torch.Tensor:
    """Return a normalised triangular kernel ``(1, 1, 2 * nf + 1, 2 * nt + 1)`` over frequency and time."""
    n_freq = max(1, int(FREQ_SMOOTH_HZ / (sample_rate / n_fft)))
    n_time = max(1, int(TIME_SMOOTH_S * sample_rate / hop))

    def triangle(n: int) -> torch.Tensor:
        return 1.0 - torch.arange(-n, n + 1, device=device).abs() / (n + 1)

    kernel = torch.outer(triangle(n_freq), triangle(n_time))
    return (kernel / kernel.sum())[None, None]


def _gate(
    audio: torch.Tensor,
    threshold: torch.Tensor,
    kernel: torch.Tensor,
    window: torch.Tensor,
    n_fft: int,
    hop: int,
    strength: float,
) -> torch.Tensor:
    """Gate one block: audio ``(T,)`` -> ``(T,)``."""
    length = audio.shape[0]
    if length < n_fft:  # torch.stft's reflect padding needs more than half a window
        audio = F.pad(audio, (0, n_fft - length))
    spec = torch.stft(audio, n_fft, hop, window=window, return_complex=True)  # (F, N)
    level = 20 * torch.log10(spec.abs() + 1e-10)
    mask = (level > threshold[:, None]).float()
    pad = (kernel.shape[-1] // 2, kernel.shape[-1] // 2, kernel.shape[-2] // 2, kernel.shape[-2] // 2)
    smooth = F.conv2d(F.pad(mask[None, None], pad, mode="replicate"), kernel)[0, 0]
    gain = 1.0 - strength * (1.0 - smooth)
    return torch.istft(spec * gain, n_fft, hop, window=window, length=audio.shape[0])[:length]

"""RMVPE pitch estimation: weights from ``assets/rmvpe/rmvpe.pt``, batched on the GPU.

Decoding follows RVC: the local weighted average of the cents around the
strongest bin, unvoiced where the peak salience is at most 0.03. The peak is
searched within the f0 range only (bins outside ``f0_min..f0_max`` are ignored).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.f0.device import Precision, autocast, resolve_device
from rvc.f0.frames import as_clip, length_batches
from rvc.f0.rmvpe_net import FRAME_MULTIPLE, HOP, LogMel, RmvpeNet, pad_frames
from rvc.f0.salience import allowed_bins, local_average_f0

HUB_REPO = "lj1995/VoiceConversionWebUI"
HUB_FILENAME = "rmvpe.pt"
VOICING_THRESHOLD = 0.03  # RVC's ``thred`` for RMVPE

# Frames (10 ms) of padded audio per forward pass: bounds memory while keeping
# the GPU busy (32768 frames under fp16 peaked at 1.5 GiB on an H100); on CPU, smaller.
_CUDA_BATCH_FRAMES = 32768
_CPU_BATCH_FRAMES = 2048


def ensure_rmvpe_weights(assets: AssetDir) -> Path:
    """Return ``assets.rmvpe_weights``, downloading it from the Hub when it is missing.

    Raises UserError naming the file, the Hub repo and where to put it when the
    download is impossible (offline, Hub unreachable).
    """
    target = assets.rmvpe_weights
    if target.is_file():
        return target
    try:
        from huggingface_hub import hf_hub_download

        downloaded = Path(hf_hub_download(repo_id=HUB_REPO, filename=HUB_FILENAME, local_dir=assets.rmvpe_dir))
    except Exception as exc:  # any failure (offline, HTTP, disk) gets the same advice
        raise UserError(
            f"the RMVPE weights {HUB_FILENAME} are missing and could not be downloaded from the Hugging Face "
            f"repo {HUB_REPO} ({type(exc).__name__}: {exc}). Download "
            f"https://huggingface.co/{HUB_REPO}/resolve/main/{HUB_FILENAME} and put it at {target}"
        ) from exc
    if downloaded.resolve() != target.resolve():
        raise UserError(f"the RMVPE weights were downloaded to {downloaded}, expected {target}: move the file there")
    return target


def load_rmvpe(path: Path, device: torch.device) -> RmvpeNet:
    """Load ``rmvpe.pt`` (a plain state dict, RVC's format) strictly into an eval-mode RmvpeNet on ``device``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"cannot read the RMVPE weights {path} ({type(exc).__name__}: {exc}): delete the file and run again "
            f"to download it from {HUB_REPO}"
        ) from exc
    if not isinstance(state, dict):
        raise UserError(
            f"{path} is not an RMVPE state dict (found {type(state).__name__}): replace it with "
            f"{HUB_FILENAME} from the Hugging Face repo {HUB_REPO}"
        )
    # Built on the meta device: the loaded tensors replace the parameters, so no time goes into a random init.
    with torch.device("meta"):
        model = RmvpeNet()
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise UserError(
            f"{path} does not hold RMVPE weights ({str(exc).splitlines()[0]}): replace it with "
            f"{HUB_FILENAME} from the Hugging Face repo {HUB_REPO}"
        ) from exc
    # rmvpe.pt stores fp16 tensors; compute in fp32 (autocast lowers it on CUDA).
    return model.float().to(device).eval()


class RmvpeEstimator:
    """RMVPE f0 estimator (see the module docstring); batches clips of any lengths."""

    name = "rmvpe"

    def __init__(
        self,
        model: RmvpeNet,
        device: torch.device,
        f0_min: float = 50.0,
        f0_max: float = 1100.0,
        precision: Precision = "fp16",
        batch_frames: int | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.uses_gpu = device.type == "cuda"
        self.precision = precision  # fp16 as RVC's is_half; applies on CUDA only
        self.batch_frames = batch_frames or (_CUDA_BATCH_FRAMES if self.uses_gpu else _CPU_BATCH_FRAMES)
        self.log_mel = LogMel().to(device)
        self.allowed = allowed_bins(f0_min, f0_max, device)

    @classmethod
    def from_assets(
        cls, assets: AssetDir, device: str = "cpu", f0_min: float = 50.0, f0_max: float = 1100.0
    ) -> RmvpeEstimator:
        """Load the weights from ``assets`` (downloading them when missing) onto ``device``."""
        torch_device = resolve_device(device)
        model = load_rmvpe(ensure_rmvpe_weights(assets), torch_device)
        return cls(model, torch_device, f0_min=f0_min, f0_max=f0_max)

    def estimate(self, audio: np.ndarray) -> np.ndarray:
        """Return f0 in Hz: float32 (N,) at 16 kHz -> float32 (N // 160 + 1,), 0 = unvoiced."""
        return self.estimate_batch([audio])[0]

    def estimate_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Return the f0 of each clip, running clips of similar length together as padded batches."""
        clips = [as_clip(a) for a in audios]
        results: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(clips)
        frames = [len(c) // HOP + 1 for c in clips]
        padded_frames = [-(-f // FRAME_MULTIPLE) * FRAME_MULTIPLE for f in frames]
        for batch in length_batches(padded_frames, self.batch_frames):
            for index, f0 in zip(batch, self._run([clips[i] for i in batch]), strict=True):
                results[index] = f0
        return results

    @torch.inference_mode()
    def _run(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Estimate one padded batch: clips -> f0 arrays in the same order."""
        n_samples = torch.tensor([len(c) for c in clips], dtype=torch.int64)
        audio = np.zeros((len(clips), max(1, int(n_samples.max()))), dtype=np.float32)
        for row, clip in enumerate(clips):
            audio[row, : len(clip)] = clip
        wave = torch.from_numpy(audio).to(self.device, non_blocking=True)
        frames = n_samples // HOP + 1
        mel = pad_frames(self.log_mel(wave, n_samples), frames)
        padded = (frames + FRAME_MULTIPLE - 1) // FRAME_MULTIPLE * FRAME_MULTIPLE
        # Masks and packing cost time; they are only needed when clips differ in padded length.
        valid = None if bool((padded == mel.shape[-1]).all()) else padded
        with autocast(self.device, self.precision):
            salience = self.model(mel, valid)
        f0, _ = local_average_f0(salience, VOICING_THRESHOLD, self.allowed)
        f0_host = f0.cpu().numpy().astype(np.float32)
        return [f0_host[row, : int(count)].copy() for row, count in enumerate(frames)]

"""Content encoders (HuBERT / ContentVec): 16 kHz audio -> 768-d features at 50 frames/s.

RVC v2 trains on the output of the encoder's last (12th) transformer layer,
without ``final_proj`` (the 256-d projection only v1 used). We run every
encoder as a transformers ``HubertModel``, loaded from

1. a known name (:data:`~rvc.features.embedder_sources.EMBEDDERS`): ``assets/embedders/<name>/``
   in Hugging Face format, downloaded there from the Hub when missing;
2. a local Hugging Face-format folder (``config.json`` + weights);
3. a fairseq ``.pt`` (RVC's ``hubert_base.pt``, ContentVec), converted by
   :mod:`rvc.features.fairseq_import` without importing fairseq or running
   code from the pickle.

Here: the encoder and its batching (:class:`ContentEmbedder`) and :func:`load_embedder`; where
the weights come from is :mod:`rvc.features.embedder_weights`. Importing this module is cheap
(no torch).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.features.embedder_sources import EMBEDDERS
from rvc.features.embedder_weights import load_known, load_path

if TYPE_CHECKING:
    import torch
    from transformers import HubertModel

log = logging.getLogger(__name__)

FEATURE_DIM = 768  # hidden size of every base-size HuBERT / ContentVec
FRAMES_PER_SECOND = 50  # 16 kHz / 320 samples per frame
SAMPLE_RATE = 16000

# HuBERT's feature encoder as (kernel, stride) per convolution; the strides multiply to 320.
_HUBERT_CONV: tuple[tuple[int, int], ...] = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))


def _frames(n_samples: int, conv: tuple[tuple[int, int], ...]) -> int:
    for kernel, stride in conv:
        if n_samples < kernel:
            return 0
        n_samples = (n_samples - kernel) // stride + 1
    return n_samples


def _receptive_field(conv: tuple[tuple[int, int], ...]) -> int:
    """Return the fewest samples that give one frame (400 for HuBERT: 25 ms)."""
    samples = 1
    for kernel, stride in reversed(conv):
        samples = (samples - 1) * stride + kernel
    return samples


def content_frames(n_samples_16k: int) -> int:
    """Return how many frames HuBERT's conv stack yields for ``n_samples_16k`` samples at 16 kHz.

    ``floor((n - 400) / 320) + 1`` for n >= 400, else 0: e.g. 49 for 1 s, 149 for 3 s.
    """
    return _frames(int(n_samples_16k), _HUBERT_CONV)


class ContentEmbedder:
    """A loaded content encoder that turns 16 kHz mono audio into per-frame content features.

    ``name`` is the known name or the file/folder name of a custom model,
    ``source`` the weights file or folder it was loaded from. Features are the
    last transformer layer's output, ``(frames, hidden_size)`` float32 on the CPU;
    clips need at least ``min_samples`` samples (400 = 25 ms for HuBERT) for one frame.
    """

    def __init__(self, name: str, model: HubertModel, device: torch.device, dtype: torch.dtype, source: Path) -> None:
        import torch

        self.name = name
        self.device = device
        self.dtype = dtype
        self.source = source
        self.model = model
        torch.nn.Module.to(model, device=device, dtype=dtype).eval()
        config = model.config
        self.feature_dim: int = int(config.hidden_size)
        self._conv = tuple((int(k), int(s)) for k, s in zip(config.conv_kernel, config.conv_stride, strict=True))
        self.min_samples = _receptive_field(self._conv)
        # "group" (HuBERT base, ContentVec): the first conv's GroupNorm normalises over the whole clip,
        # so plain zero padding would change every frame; _masked_features computes that norm over each
        # clip's own frames, so any lengths can share a batch. "layer": per-frame norms, padding is safe.
        self.pads_safely: bool = config.feat_extract_norm == "layer"

    def frames(self, n_samples: int) -> int:
        """Return the number of feature frames this model yields for ``n_samples`` samples."""
        return _frames(n_samples, self._conv)

    def _checked(self, audio: np.ndarray) -> np.ndarray:
        if not isinstance(audio, np.ndarray) or audio.ndim != 1:
            shape = getattr(audio, "shape", type(audio).__name__)
            raise ValueError(f"expected mono audio as a 1-D numpy array, got {shape}")
        if not np.issubdtype(audio.dtype, np.floating):
            raise ValueError(f"expected float audio in [-1, 1], got {audio.dtype}")
        if audio.shape[0] < self.min_samples:
            raise ValueError(
                f"clip of {audio.shape[0]} samples is too short: the content encoder needs at least "
                f"{self.min_samples} samples ({1000 * self.min_samples / SAMPLE_RATE:.0f} ms at 16 kHz)"
            )
        if not np.isfinite(audio).all():
            raise ValueError("audio contains NaN or infinite samples")
        return np.ascontiguousarray(audio, dtype=np.float32)

    def _forward(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Run one batch: (B, T) zero-padded audio (+ mask if lengths differ) -> per-clip (frames, hidden)."""
        import torch

        lengths = [clip.shape[0] for clip in clips]
        longest = max(lengths)
        batch = np.zeros((len(clips), longest), dtype=np.float32)
        for row, clip in enumerate(clips):
            batch[row, : clip.shape[0]] = clip
        inputs = torch.from_numpy(batch).to(self.device, self.dtype)
        mask = None
        if min(lengths) != longest:
            positions = torch.arange(longest, device=self.device)
            mask = (positions[None, :] < torch.tensor(lengths, device=self.device)[:, None]).long()
        with torch.inference_mode():
            if mask is not None and not self.pads_safely:
                hidden = self._masked_forward(inputs, torch.tensor(lengths, device=self.device))
            else:
                hidden = self.model(inputs, attention_mask=mask).last_hidden_state
        # one device -> host copy for the whole batch
        features = hidden.float().cpu().numpy()
        return [np.ascontiguousarray(features[row, : self.frames(n)]) for row, n in enumerate(lengths)]

    def _masked_forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Run a zero-padded batch through a group-norm model as if each clip ran alone.

        inputs : Tensor[B x T] audio; lengths : Tensor[B] valid samples
        returns : Tensor[B x T' x hidden]; frames past each clip's own count are padding

        The first conv layer's GroupNorm takes its statistics over the valid frames only; the
        later (unnormalised, unpadded) convolutions give the valid frames from valid samples
        alone, and the encoder masks the padded frames out of attention.
        """
        import torch

        encoder: Any = self.model.feature_extractor
        first: Any = encoder.conv_layers[0]
        hidden = first.conv(inputs[:, None, :])
        (kernel, stride) = self._conv[0]
        valid = (lengths - kernel) // stride + 1
        mask = (torch.arange(hidden.size(-1), device=hidden.device)[None, :] < valid[:, None]).to(hidden.dtype)
        norm: torch.nn.GroupNorm = first.layer_norm
        batch, channels, frames = hidden.shape
        grouped = hidden.float().reshape(batch, norm.num_groups, -1, frames)
        weights = mask[:, None, None, :].float()
        count = weights.sum(dim=(2, 3), keepdim=True) * grouped.size(2)
        mean = (grouped * weights).sum(dim=(2, 3), keepdim=True) / count
        var = ((grouped - mean).square() * weights).sum(dim=(2, 3), keepdim=True) / count
        normed = ((grouped - mean) * torch.rsqrt(var + norm.eps)).reshape(batch, channels, frames)
        hidden = (normed * norm.weight[None, :, None].float() + norm.bias[None, :, None].float()).to(hidden.dtype)
        hidden = first.activation(hidden)
        for layer in encoder.conv_layers[1:]:
            hidden = layer(hidden)
        features = hidden.transpose(1, 2)
        frame_counts = torch.tensor([self.frames(int(n)) for n in lengths.tolist()], device=features.device)
        frame_mask = torch.arange(features.size(1), device=features.device)[None, :] < frame_counts[:, None]
        projected = self.model.feature_projection(features)
        return self.model.encoder(projected, attention_mask=frame_mask).last_hidden_state

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """Return the content features of one clip.

        audio : float32 ``(N,)`` mono at 16 kHz, N >= ``min_samples`` (400)
        returns : float32 ``(content_frames(N), hidden_size)``, 50 frames/s
        Raises ValueError for audio that is not 1-D float, too short, or not finite.
        """
        return self._forward([self._checked(audio)])[0]

    def embed_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Return :meth:`embed` of every clip, batching clips on the device.

        Clips are zero-padded to the longest; layer-norm models get an attention
        mask, group-norm models (HuBERT base, ContentVec) also take their first
        norm's statistics per clip (see ``_masked_forward``). The caller chooses
        the batch by the list it passes (sorting by length wastes least padding). Every clip is validated first,
        so a bad clip raises ValueError before any work is done.
        """
        clips = [self._checked(audio) for audio in audios]
        return self._forward(clips) if clips else []


# --- loading -----------------------------------------------------------------


def _resolve_device(device: str) -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but no CUDA GPU is available here: use --device cpu")
    if resolved.type not in ("cpu", "cuda"):
        raise UserError(f"device {device!r} is not supported: use auto, cpu, cuda or cuda:N")
    return resolved


def _resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    import torch

    names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in names:
        raise UserError(f"unknown dtype {dtype!r}: use auto, float32, float16 or bfloat16")
    if names[dtype] != torch.float32 and device.type != "cuda":
        raise UserError(f"dtype {dtype} runs only on a CUDA GPU; on {device} use float32")
    return names[dtype]


def load_embedder(
    name_or_path: str,
    assets: AssetDir,
    device: str = "cpu",
    dtype: str = "float32",
    allow_download: bool = True,
    feature_dim: int | None = None,
) -> ContentEmbedder:
    """Load a content encoder by known name (see :data:`EMBEDDERS`) or from a path.

    name_or_path : a key of EMBEDDERS (looked up in ``assets.embedder_dir(name)``,
        downloaded there when missing and ``allow_download``), a Hugging Face-format
        folder, or a fairseq ``.pt`` checkpoint.
    device : "cpu", "cuda", "cuda:N" or "auto".
    dtype : "float32", or "float16" / "bfloat16" on CUDA only; "auto" is float16 on CUDA, else float32.
    feature_dim : the width the features must have (768 for what v2 trains on); None: any.
    Raises UserError naming what is missing and where to put it.
    """
    torch_device = _resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, torch_device)
    if name_or_path in EMBEDDERS:
        model, source = load_known(name_or_path, assets, allow_download)
        name = name_or_path
    else:
        path = Path(name_or_path).expanduser()
        if not path.exists():
            raise UserError(
                f"unknown content encoder {name_or_path!r}: choose one of {', '.join(EMBEDDERS)}, "
                "or give the path of a Hugging Face model folder or a fairseq .pt file"
            )
        model, source, name = load_path(path), path.resolve(), path.name
    log.info("content encoder %s loaded from %s on %s (%s)", name, source, torch_device, torch_dtype)
    embedder = ContentEmbedder(name, model, torch_device, torch_dtype, source)
    if feature_dim is not None and embedder.feature_dim != feature_dim:
        raise UserError(
            f"the content encoder {source} gives {embedder.feature_dim}-d features, but RVC v2 trains on "
            f"{feature_dim}-d ones (a base-size HuBERT or ContentVec, such as {', '.join(EMBEDDERS)})",
            field="embedder",
        )
    return embedder

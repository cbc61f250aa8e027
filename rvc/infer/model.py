"""Load an exported voice model for conversion, and tell which content encoder it was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.errors import UserError

if TYPE_CHECKING:
    import torch

    from rvc.export import ExportedModel
    from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid

# RVC's files record no encoder: they were all trained on RVC's hubert_base.pt, which is ContentVec.
DEFAULT_EMBEDDER = "contentvec"
EMBEDDER_FLAG = "--embedder PATH"  # how the messages below say to give the encoder (the web UI says its field)
# The generator's frames run at the 100 frames/s of the f0 track (160 samples at 16 kHz).
FRAMES_PER_SECOND = 100


@dataclass(frozen=True)
class VoiceModel:
    """An exported model with its generator built on a device, ready for ``infer()``."""

    exported: ExportedModel
    generator: SynthesizerTrnMs768NSFsid  # fp32 weights, weight norm folded, eval mode
    device: torch.device

    @property
    def path(self) -> Path:
        return self.exported.path

    @property
    def sample_rate(self) -> int:
        """Return the output rate in Hz (the config list's last value, as RVC and Applio use)."""
        return self.exported.sample_rate

    @property
    def hop_length(self) -> int:
        """Return the output samples per frame (sample_rate / 100)."""
        return self.exported.config.hop_length

    @property
    def feature_dim(self) -> int:
        """Return the content-feature width the generator takes (768 for v2)."""
        return self.exported.config.phone_channels

    @property
    def name(self) -> str:
        recorded = self.exported.metadata.get("model_name")
        return recorded if isinstance(recorded, str) and recorded else self.path.stem


def recorded_embedder(exported: ExportedModel) -> str:
    """Return the content encoder the model was trained on: a name of ``EMBEDDERS`` or a path.

    Our files record it under "embedder" (a known name or the path of a custom encoder), Applio's
    under "embedder_model" with dashes ("chinese-hubert-base") or "custom"; RVC's record nothing and
    mean ContentVec. Raises UserError for Applio's "custom", whose encoder the file does not name, and
    for a path that is not on this machine (a custom encoder, recorded where the model was trained).
    """
    from rvc.features.embedder_sources import EMBEDDERS

    for key in ("embedder", "embedder_model"):
        value = exported.metadata.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        value = value.strip()
        known = value.replace("-", "_")
        if known in EMBEDDERS:
            return known
        if value.lower() == "custom":
            raise UserError(
                f"{exported.path}: the model was trained with a custom content encoder that the file does "
                f"not name; pass the same encoder with {EMBEDDER_FLAG} (a Hugging Face folder or a fairseq .pt)"
            )
        if not Path(value).expanduser().exists():  # a custom encoder's path on the machine that trained it
            raise UserError(
                f"{exported.path}: the model records its content encoder as {value!r}, which is neither a known "
                f"encoder ({', '.join(EMBEDDERS)}) nor a path on this machine; pass the encoder it was trained "
                f"with: {EMBEDDER_FLAG} (a Hugging Face folder or a fairseq .pt)"
            )
        return value
    return DEFAULT_EMBEDDER


def check_frame_rate(exported: ExportedModel) -> None:
    """Refuse a model whose decoder does not render 100 frames per second (RVC's v2 framing)."""
    config = exported.config
    if config.sample_rate <= 0 or config.hop_length * FRAMES_PER_SECOND != config.sample_rate:
        raise UserError(
            f"{exported.path}: its config says {config.sample_rate} Hz with {config.hop_length} samples per frame; "
            f"RVC v2 models render {FRAMES_PER_SECOND} frames per second (e.g. 40000 Hz, hop 400), "
            "so this file cannot convert with its pitch and content features; re-export it"
        )


def _other_vocoder(path: Path) -> str | None:
    """Return Applio's "vocoder" of a file when it is not HiFi-GAN (MRF HiFi-GAN, RefineGAN), else None."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # read_exported has already read it once; say nothing more than it did
        return None
    vocoder = data.get("vocoder") if isinstance(data, dict) else None
    return vocoder if isinstance(vocoder, str) and vocoder not in ("", "HiFi-GAN") else None


def load_voice_model(path: str | Path, device: str = "cpu") -> VoiceModel:
    """Read an exported model safely (``weights_only=True``) and build its generator on ``device``.

    device : "cpu", "cuda", "cuda:N" or "auto".
    Raises UserError naming the file for anything that is not a usable RVC v2 model with pitch:
    a file holding Python objects (not unpickled), a training checkpoint, v1 or no-f0 models,
    a malformed or inconsistent ``config``, weights that do not fit it.
    """
    from rvc.export import build_generator, read_exported
    from rvc.f0.device import resolve_device
    from rvc.models.weights import PretrainMismatchError

    torch_device = resolve_device(device)
    try:
        exported = read_exported(path)
    except PretrainMismatchError as exc:
        vocoder = _other_vocoder(Path(path))
        if vocoder is None:
            raise
        raise UserError(
            f"{path}: made with Applio's {vocoder!r} vocoder, whose decoder differs from RVC's NSF HiFi-GAN; "
            "RVC Studio (like the RVC WebUI and most voice changers) converts with HiFi-GAN models only"
        ) from exc
    check_frame_rate(exported)
    generator = build_generator(exported, torch_device)
    generator.remove_weight_norm()  # folded weights: the same output with fewer kernels
    return VoiceModel(exported=exported, generator=generator, device=torch_device)

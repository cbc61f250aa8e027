"""Every file location of RVC Studio, derived from explicit roots.

Nothing here looks at the working directory: callers pass the logs and assets
folders in (the CLI takes them from ``--logs-dir`` / ``--assets-dir``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.errors import UserError

if TYPE_CHECKING:
    from rvc.experiment.checkpoints import Checkpoints

_EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_CLIP_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def validate_experiment_name(name: str) -> str:
    """Return ``name`` if it is a safe experiment name, else raise UserError.

    Allowed: letters, digits, ``-``, ``_`` and ``.``, not starting with a dot,
    at most 128 characters. This keeps every experiment a plain folder directly
    inside the logs dir (no ``..``, no separators, no hidden folders).
    """
    if not _EXPERIMENT_NAME.fullmatch(name):
        raise UserError(
            f"invalid experiment name {name!r}: use letters, digits, '-', '_' and '.' only "
            "(not starting with '.', at most 128 characters), e.g. 'my-voice_v2'"
        )
    return name


def validate_clip_name(name: str) -> str:
    """Return ``name`` if it can be a file stem inside an experiment folder."""
    if not _CLIP_NAME.fullmatch(name):
        raise ValueError(f"unsafe clip name {name!r}")
    return name


def sample_rate_tag(sample_rate: int) -> str:
    """Return RVC's short name of a sample rate: 40000 -> '40k'."""
    if sample_rate % 1000:
        raise ValueError(f"sample rate {sample_rate} is not a whole number of kHz")
    return f"{sample_rate // 1000}k"


@dataclass(frozen=True)
class ExperimentDir:
    """All paths inside ``<logs_dir>/<name>/``; the only place that names them."""

    logs_dir: Path
    name: str

    def __post_init__(self) -> None:
        validate_experiment_name(self.name)
        object.__setattr__(self, "logs_dir", Path(self.logs_dir).resolve())

    @property
    def root(self) -> Path:
        return self.logs_dir / self.name

    def ensure(self) -> Path:
        """Create the experiment folder (and the logs dir) and return it."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    # --- prepare stage -------------------------------------------------
    def audio_dir(self, sample_rate: int) -> Path:
        """Slices at the training sample rate, e.g. ``audio_40k/``."""
        return self.root / f"audio_{sample_rate_tag(sample_rate)}"

    @property
    def audio_16k_dir(self) -> Path:
        """The same slices at 16 kHz, the input of pitch and content extraction."""
        return self.root / "audio_16k"

    def clip_audio(self, clip: str, sample_rate: int) -> Path:
        return self.audio_dir(sample_rate) / f"{validate_clip_name(clip)}.wav"

    def clip_audio_16k(self, clip: str) -> Path:
        return self.audio_16k_dir / f"{validate_clip_name(clip)}.wav"

    @property
    def downloads_dir(self) -> Path:
        """Media fetched from ``--url`` before it is prepared like any other file."""
        return self.root / "downloads"

    @property
    def dataset_report(self) -> Path:
        return self.root / "dataset.json"

    def exported_model(self, best: bool = False) -> Path:
        """``NAME.pth``, the finished model in RVC's exported format, or ``NAME_best.pth`` for the best epoch."""
        return self.root / (f"{self.name}_best.pth" if best else f"{self.name}.pth")

    @property
    def checkpoints(self) -> Checkpoints:
        """The run's saved states: which are complete, the latest, the best, whether it can resume."""
        from rvc.experiment.checkpoints import Checkpoints  # torch: not for every user of paths

        return Checkpoints(self.root / "checkpoints", self.name)

    @property
    def prepare_manifest(self) -> Path:
        return self.root / "prepare_manifest.json"

    @property
    def train_clips(self) -> Path:
        """Clip names used for training, one per line."""
        return self.root / "clips_train.txt"

    @property
    def validation_clips(self) -> Path:
        """Held-out clip names (validation losses, overtraining detection), one per line."""
        return self.root / "clips_validation.txt"

    # --- whisper -------------------------------------------------------
    @property
    def whisper_json(self) -> Path:
        return self.root / "whisper.json"

    @property
    def transcript_train(self) -> Path:
        """LJSpeech-style ``path|text`` lines of the training clips."""
        return self.root / "train.txt"

    @property
    def transcript_validation(self) -> Path:
        return self.root / "validation.txt"

    # --- extract stage -------------------------------------------------
    @property
    def f0_dir(self) -> Path:
        """f0 in Hz at 100 frames/s (0 = unvoiced), float32 ``.npy`` per clip."""
        return self.root / "f0_hz"

    @property
    def f0_coarse_dir(self) -> Path:
        """Coarse f0 in 1..255, int64 ``.npy`` per clip."""
        return self.root / "f0_coarse"

    @property
    def features_dir(self) -> Path:
        """Content features, float32 ``(T, 768)`` at 50 frames/s, ``.npy`` per clip."""
        return self.root / "content_768"

    def clip_f0(self, clip: str) -> Path:
        return self.f0_dir / f"{validate_clip_name(clip)}.npy"

    def clip_f0_coarse(self, clip: str) -> Path:
        return self.f0_coarse_dir / f"{validate_clip_name(clip)}.npy"

    def clip_features(self, clip: str) -> Path:
        return self.features_dir / f"{validate_clip_name(clip)}.npy"

    @property
    def extract_manifest(self) -> Path:
        return self.root / "extract_manifest.json"

    @property
    def extract_report(self) -> Path:
        return self.root / "features.json"

    # --- training ------------------------------------------------------
    @property
    def config_json(self) -> Path:
        return self.root / "config.json"

    @property
    def progress_jsonl(self) -> Path:
        return self.root / "progress.jsonl"


@dataclass(frozen=True)
class AssetDir:
    """All paths inside the assets folder (downloaded weights and catalogues)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def embedders_dir(self) -> Path:
        return self.root / "embedders"

    def embedder_dir(self, name: str) -> Path:
        """A Hugging Face-format content encoder folder, e.g. ``embedders/contentvec``."""
        return self.embedders_dir / validate_clip_name(name)

    @property
    def rmvpe_dir(self) -> Path:
        return self.root / "rmvpe"

    @property
    def rmvpe_weights(self) -> Path:
        return self.rmvpe_dir / "rmvpe.pt"

    @property
    def pretrained_dir(self) -> Path:
        return self.root / "pretrained_v2"

    @property
    def pretrains_catalogue(self) -> Path:
        return self.root / "pretrains.json"

    @property
    def whisper_dir(self) -> Path:
        """openai-whisper checkpoints (``<model>.pt``)."""
        return self.root / "whisper"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def compile_cache_dir(self) -> Path:
        """torch.compile's kernels (Inductor and Triton): a warm cache turns minutes of compiling into seconds."""
        return self.cache_dir / "torch-compile"


@dataclass(frozen=True)
class Workspace:
    """The two roots every command works from."""

    logs_dir: Path
    assets_dir: Path

    def experiment(self, name: str) -> ExperimentDir:
        return ExperimentDir(self.logs_dir, name)

    @property
    def assets(self) -> AssetDir:
        return AssetDir(self.assets_dir)

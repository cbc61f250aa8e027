"""``AssetDir``: every location inside the assets folder (downloaded weights, catalogues, caches)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rvc.experiment import names as n
from rvc.experiment.jobs_dir import JobsDir
from rvc.experiment.names import validate_clip_name


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

    @property
    def jobs(self) -> JobsDir:
        """The jobs that belong to no experiment (downloads of pretrains and weights): ``jobs/``."""
        return JobsDir(self.root / n.JOBS_DIR, "")

"""``Experiment``: every location inside ``<logs_dir>/<name>/``, derived from an explicit root.

Nothing here looks at the working directory or creates anything but on ``ensure()``. The
artefacts' contents are read and written by their records (``dataset``, ``features``,
``config_file``, ``checkpoints``); this class only says where they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.experiment import names as n
from rvc.experiment.jobs_dir import JobsDir
from rvc.experiment.names import sample_rate_tag, validate_clip_name, validate_experiment_name
from rvc.fileio import make_folder

if TYPE_CHECKING:
    from rvc.experiment.checkpoints import Checkpoints


@dataclass(frozen=True)
class Experiment:
    """All paths inside ``<logs_dir>/<name>/``; the only place that names them."""

    logs_dir: Path
    name: str

    def __post_init__(self) -> None:
        validate_experiment_name(self.name)
        object.__setattr__(self, "logs_dir", Path(self.logs_dir).resolve())

    @property
    def root(self) -> Path:
        return self.logs_dir / self.name

    def gone(self) -> str | None:
        """Say that the folder is not there (deleted since a page or a command listed it), or None when it is.

        A stage that only reads an experiment must say so instead of making an empty one.
        """
        if self.root.is_dir():
            return None
        return f"experiment '{self.name}' does not exist ({self.root} is not there: deleted?); choose another one"

    def not_recordings(self, folder: Path) -> str | None:
        """Say why ``folder`` (resolved) is no folder of recordings for this experiment, or None when it may be.

        The logs folder and everything inside an experiment's folder hold clips and features, not recordings,
        this experiment's own included; each experiment's downloads folder is the exception (links and
        uploads). A folder that holds the logs folder is fine: the scan leaves the logs folder out.
        """
        logs = self.logs_dir
        if folder == logs:
            return f"{folder} is the experiments folder: its clips are not recordings"
        if logs not in folder.parents:
            return None
        owner = folder.relative_to(logs).parts[0]
        downloads = logs / owner / n.DOWNLOADS_DIR
        if folder == downloads or downloads in folder.parents:
            return None
        whose = "its own" if owner == self.name else f"experiment '{owner}''s"
        return f"{folder} is inside {whose} folder ({logs / owner}): its clips are not recordings"

    def ensure(self) -> Path:
        """Create the experiment folder (and the logs dir) and return it; UserError when a file is in the way."""
        return make_folder(self.root)

    # --- prepare stage -------------------------------------------------
    def audio_dir(self, sample_rate: int) -> Path:
        """Slices at the training sample rate, e.g. ``audio_40k/``."""
        return self.root / f"audio_{sample_rate_tag(sample_rate)}"

    @property
    def audio_16k_dir(self) -> Path:
        """The same slices at 16 kHz, the input of pitch and content extraction."""
        return self.root / n.AUDIO_16K_DIR

    def clip_audio(self, clip: str, sample_rate: int) -> Path:
        return self.audio_dir(sample_rate) / f"{validate_clip_name(clip)}.wav"

    def clip_audio_16k(self, clip: str) -> Path:
        return self.audio_16k_dir / f"{validate_clip_name(clip)}.wav"

    @property
    def downloads_dir(self) -> Path:
        """Media fetched from ``--url`` before it is prepared like any other file."""
        return self.root / n.DOWNLOADS_DIR

    @property
    def dataset_report(self) -> Path:
        """What prepare made: read and write it as ``rvc.experiment.dataset.DatasetReport``."""
        return self.root / n.DATASET_REPORT

    @property
    def prepare_manifest(self) -> Path:
        return self.root / n.PREPARE_MANIFEST

    @property
    def train_clips(self) -> Path:
        """Clip names used for training, one per line."""
        return self.root / n.TRAIN_CLIPS

    @property
    def validation_clips(self) -> Path:
        """Held-out clip names (validation losses, overtraining detection), one per line."""
        return self.root / n.VALIDATION_CLIPS

    # --- whisper -------------------------------------------------------
    @property
    def whisper_json(self) -> Path:
        return self.root / n.WHISPER_JSON

    @property
    def transcript_train(self) -> Path:
        """LJSpeech-style ``path|text`` lines of the training clips."""
        return self.root / n.TRANSCRIPT_TRAIN

    @property
    def transcript_validation(self) -> Path:
        return self.root / n.TRANSCRIPT_VALIDATION

    # --- extract stage -------------------------------------------------
    @property
    def f0_dir(self) -> Path:
        """f0 in Hz at 100 frames/s (0 = unvoiced), float32 ``.npy`` per clip."""
        return self.root / n.F0_DIR

    @property
    def f0_coarse_dir(self) -> Path:
        """Coarse f0 in 1..255, int64 ``.npy`` per clip."""
        return self.root / n.F0_COARSE_DIR

    @property
    def features_dir(self) -> Path:
        """Content features, float32 ``(T, 768)`` at 50 frames/s, ``.npy`` per clip."""
        return self.root / n.FEATURES_DIR

    def clip_f0(self, clip: str) -> Path:
        return self.f0_dir / f"{validate_clip_name(clip)}.npy"

    def clip_f0_coarse(self, clip: str) -> Path:
        return self.f0_coarse_dir / f"{validate_clip_name(clip)}.npy"

    def clip_features(self, clip: str) -> Path:
        return self.features_dir / f"{validate_clip_name(clip)}.npy"

    @property
    def extract_manifest(self) -> Path:
        return self.root / n.EXTRACT_MANIFEST

    @property
    def extract_report(self) -> Path:
        """What extract did: read and write it as ``rvc.experiment.features.FeaturesReport``."""
        return self.root / n.FEATURES_REPORT

    # --- training ------------------------------------------------------
    @property
    def config_json(self) -> Path:
        """The settings: read and write them with ``rvc.experiment.config_file``."""
        return self.root / n.CONFIG

    @property
    def progress_jsonl(self) -> Path:
        """The trainer's events (``rvc.train.progress`` writes and reads them)."""
        return self.root / n.PROGRESS

    @property
    def train_log(self) -> Path:
        """The trainer's stdout and stderr."""
        return self.root / n.TRAIN_LOG

    @property
    def train_lock(self) -> Path:
        """Held (flock) by the running trainer; holds its pid."""
        return self.root / n.TRAIN_LOCK

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / n.TENSORBOARD_DIR

    @property
    def checkpoints(self) -> Checkpoints:
        """The run's saved states: which are complete, the latest, the best, whether it can resume."""
        from rvc.experiment.checkpoints import Checkpoints  # torch: not for every user of the folder

        return Checkpoints(self.root / n.CHECKPOINTS_DIR, self.name)

    # --- stage jobs ----------------------------------------------------
    @property
    def jobs(self) -> JobsDir:
        """The stage jobs' events files and logs (``rvc.jobs.launcher`` writes and finds them)."""
        return JobsDir(self.root / n.JOBS_DIR, self.name)

    # --- results -------------------------------------------------------
    def exported_model(self, best: bool = False) -> Path:
        """``NAME.pth``, the finished model in RVC's exported format, or ``NAME_best.pth`` for the best epoch."""
        return self.root / f"{self.name}{n.BEST_SUFFIX if best else ''}{n.MODEL_SUFFIX}"

    def exported_models(self) -> list[Path]:
        """The exported models that exist: ``NAME.pth`` then ``NAME_best.pth``."""
        return [path for path in (self.exported_model(), self.exported_model(best=True)) if path.is_file()]

    @property
    def onnx_model(self) -> Path:
        """``NAME.onnx``: the exported model's inference generator as ONNX (``python -m rvc export --onnx``)."""
        return self.root / f"{self.name}{n.ONNX_SUFFIX}"

    @property
    def publish_dir(self) -> Path:
        """``publish/``: the folder the last publish uploaded (model files linked in, the card written)."""
        return self.root / n.PUBLISH_DIR

    @property
    def index_file(self) -> Path:
        """``NAME.index``, the FAISS retrieval index built from the training clips' content features."""
        return self.root / f"{self.name}{n.INDEX_SUFFIX}"

    def index_files(self) -> list[Path]:
        """Every FAISS index in the folder (ours and RVC's ``added_*.index``), by name."""
        return sorted(self.root.glob(f"*{n.INDEX_SUFFIX}")) if self.root.is_dir() else []


def is_index_file(path: Path) -> bool:
    """Whether ``path`` is named like a FAISS index."""
    return path.suffix == n.INDEX_SUFFIX


def best_and_latest(model: Path) -> tuple[Path, Path]:
    """Return the best and latest exports beside an exported model (``NAME_best.pth``, ``NAME.pth``)."""
    stem = model.stem.removesuffix(n.BEST_SUFFIX)
    return model.with_name(f"{stem}{n.BEST_SUFFIX}{n.MODEL_SUFFIX}"), model.with_name(f"{stem}{n.MODEL_SUFFIX}")

"""The names of things in the logs folder: which experiment and clip names are safe, and every file name
of an experiment folder (``logs/<name>/``). Only ``rvc.experiment`` spells these; everyone else asks
``Experiment`` for a path.
"""

from __future__ import annotations

import re

from rvc.errors import UserError

# Not beginning with '-' either: the name is a value on every stage's command line (--experiment -x is a flag).
_EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_CLIP_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")

# --- the files of logs/<name>/ (folders end in _DIR) -------------------------------------
DATASET_REPORT = "dataset.json"  # what prepare made (rvc.experiment.dataset)
PREPARE_MANIFEST = "prepare_manifest.json"  # prepare's per-source cache
TRAIN_CLIPS = "clips_train.txt"
VALIDATION_CLIPS = "clips_validation.txt"
DOWNLOADS_DIR = "downloads"
WHISPER_JSON = "whisper.json"
TRANSCRIPT_TRAIN = "train.txt"
TRANSCRIPT_VALIDATION = "validation.txt"
AUDIO_16K_DIR = "audio_16k"
F0_DIR = "f0_hz"
F0_COARSE_DIR = "f0_coarse"
FEATURES_DIR = "content_768"
EXTRACT_MANIFEST = "extract_manifest.json"  # extract's per-clip cache
FEATURES_REPORT = "features.json"  # what extract did (rvc.experiment.features)
CONFIG = "config.json"  # the experiment's settings (rvc.experiment.config_file)
PROGRESS = "progress.jsonl"  # the trainer's events, one JSON object a line
TRAIN_LOG = "train.log"  # the trainer's stdout and stderr
TRAIN_LOCK = "train.lock"  # flocked by the running trainer, holding its pid
TENSORBOARD_DIR = "tensorboard"
JOBS_DIR = "jobs"  # one events file and one log per stage job: jobs/<stage>-<time>.jsonl / .log (rvc.jobs)
JOB_EVENTS_SUFFIX = ".jsonl"
JOB_LOG_SUFFIX = ".log"
JOB_LAUNCH_LOCK = ".launch.lock"  # flocked while a job is checked for collisions and started
CHECKPOINTS_DIR = "checkpoints"  # the training states (rvc.experiment.checkpoints)
MODEL_SUFFIX = ".pth"  # exported models: NAME.pth, NAME_best.pth
BEST_SUFFIX = "_best"
INDEX_SUFFIX = ".index"  # FAISS: NAME.index (ours), added_*.index (RVC's)
ONNX_SUFFIX = ".onnx"  # NAME.onnx: the inference generator for ONNX Runtime and real-time voice changers
PUBLISH_DIR = "publish"  # what the last publish uploaded: the model files (links) and the model card
MODEL_CARD = "README.md"  # the Hub's model card, with its YAML metadata header
LOSS_PLOT = "loss.png"
VOICE_SAMPLE = "sample.wav"  # only when the user asks for one

# --- RVC's training-state files (inside CHECKPOINTS_DIR, and pretrains elsewhere) ----------
GENERATOR_PATTERN = "G_*.pth"  # G_<step>.pth, G_best.pth
DISCRIMINATOR_PATTERN = "D_*.pth"


def generator_file(tag: str | int) -> str:
    return f"G_{tag}.pth"


def discriminator_file(tag: str | int) -> str:
    return f"D_{tag}.pth"


def state_file(tag: str | int) -> str:
    """Our file of what RVC does not keep (schedulers, counters, RNG); a state is complete once it exists."""
    return f"state_{tag}.pt"


def job_file(stage: str, stamp: str, suffix: str) -> str:
    """``<stage>-<stamp><suffix>``: a stage job's events file or log; sorts by time within a stage."""
    return f"{stage}-{stamp}{suffix}"


JOB_NAME = re.compile(r"([a-z][a-z0-9_]*)-(\d{8}-\d{6}-\d{3})")  # a job's stem: its stage and when it started
GENERATOR_NAME = re.compile(r"G_(\d+)\.pth")
STATE_NAME = re.compile(r"state_(\d+)\.pt")


def validate_experiment_name(name: str) -> str:
    """Return ``name`` if it is a safe experiment name, else raise UserError.

    Allowed: letters, digits, ``-``, ``_`` and ``.``, not starting with a dot or
    a dash, at most 128 characters. This keeps every experiment a plain folder directly
    inside the logs dir (no ``..``, no separators, no hidden folders).
    """
    if not _EXPERIMENT_NAME.fullmatch(name):
        raise UserError(
            f"invalid experiment name {name!r}: use letters, digits, '-', '_' and '.' only "
            "(not starting with '.' or '-', at most 128 characters), e.g. 'my-voice_v2'"
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

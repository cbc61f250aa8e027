"""The training set in memory: every clip padded to one frame count, ready to live on the GPU.

A typical dataset (minutes to an hour of audio) is small next to a GPU's
memory: 10 minutes at 40 kHz is 96 MB of audio and 92 MB of fp16 content
features. Holding it all as a few dense tensors lets a training step gather its
batch with one index operation and keeps every shape static (one CUDA graph).

Alignment follows RVC: content features (50 frames/s) are repeated twice to the
pitch rate (100 frames/s), and audio, features and pitch are cut to the shortest
of the three, counted in frames of ``hop_length`` samples at the target rate.

Hours of data (a pretrain's) take about 1.1 GiB per hour in this form; such a set stays in
host memory and streams to the GPU a batch at a time (``batches.StreamedBatches``). Loading
reads each clip once, straight into its row: the host never holds the set twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rvc.errors import UserError
from rvc.experiment import Experiment
from rvc.experiment.dataset import DatasetReport, read_clip_list, read_split_lists
from rvc.experiment.features import FeaturesReport
from rvc.models.config import ModelConfig


@dataclass
class TrainingSet:
    """Dense, padded tensors of a split; row i is clip ``names[i]``.

    wav : Tensor[N x S] float32, audio at the target rate, zero-padded
    phone : Tensor[N x F x 768] content features at 100 frames/s (float16 or float32)
    pitch : Tensor[N x F] int64, coarse f0 in 1..255 (1 in the padding)
    pitchf : Tensor[N x F] float32, f0 in Hz (0 in the padding)
    lengths : Tensor[N] int64, valid frames per clip (S = F * hop_length)
    speakers : Tensor[N] int64, each clip's speaker id (RVC's sid: the generator's speaker row)
    """

    names: list[str]
    wav: torch.Tensor
    phone: torch.Tensor
    pitch: torch.Tensor
    pitchf: torch.Tensor
    lengths: torch.Tensor
    hop_length: int
    sample_rate: int
    speakers: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))

    def __post_init__(self) -> None:
        if len(self.speakers) != len(self.names):  # a one-voice set: every clip is speaker 0
            self.speakers = torch.zeros(len(self.names), dtype=torch.int64, device=self.lengths.device)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def max_frames(self) -> int:
        return int(self.phone.shape[1])

    @property
    def seconds(self) -> float:
        return float(self.lengths.sum()) * self.hop_length / self.sample_rate

    def to(self, device: torch.device | str) -> TrainingSet:
        """Return a copy of the tensors on ``device``."""
        return TrainingSet(
            self.names,
            self.wav.to(device),
            self.phone.to(device),
            self.pitch.to(device),
            self.pitchf.to(device),
            self.lengths.to(device),
            self.hop_length,
            self.sample_rate,
            self.speakers.to(device),
        )

    def head(self, count: int) -> TrainingSet:
        """Return the first ``count`` clips (views of the same tensors)."""
        return TrainingSet(
            self.names[:count],
            self.wav[:count],
            self.phone[:count],
            self.pitch[:count],
            self.pitchf[:count],
            self.lengths[:count],
            self.hop_length,
            self.sample_rate,
            self.speakers[:count],
        )

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """Every per-clip tensor (row i of each is clip i)."""
        return self.wav, self.phone, self.pitch, self.pitchf, self.lengths, self.speakers

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors())


def _failed_clips(experiment: Experiment) -> set[str]:
    report = FeaturesReport.find(experiment)
    return report.failed_clips() if report is not None else set()


def load_splits(experiment: Experiment, model: ModelConfig) -> tuple[TrainingSet, TrainingSet]:
    """Load the training and validation clips for ``model`` (every training clip padded to hold a slice)."""
    read_split_lists(experiment.train_clips, experiment.validation_clips)  # refuses a clip listed in both
    train = load_training_set(
        experiment,
        "train",
        model.sample_rate,
        model.hop_length,
        min_frames=model.segment_frames,
        feature_dim=model.phone_channels,
        speaker_slots=model.spk_embed_dim,
    )
    validation = load_training_set(
        experiment,
        "validation",
        model.sample_rate,
        model.hop_length,
        feature_dim=model.phone_channels,
        speaker_slots=model.spk_embed_dim,
    )
    return train, validation


def load_training_set(
    experiment: Experiment,
    split: str,
    sample_rate: int,
    hop_length: int,
    min_frames: int = 0,
    feature_dtype: torch.dtype = torch.float16,
    feature_dim: int | None = None,
    speaker_slots: int | None = None,
) -> TrainingSet:
    """Load the ``split`` ("train" or "validation") clips of an extracted experiment.

    Every clip is padded to the longest clip's frame count, or to ``min_frames`` when that is
    more (a training slice must fit in every clip). Clips whose extraction failed are left out.
    A damaged file (not an array, the wrong shape or width, nothing but NaN) is refused by name; a
    file with some NaN is named in a warning.
    feature_dim : the content width the model takes (768 for v2); None: whatever the clips share.
    speaker_slots : the rows of the model's speaker table; a clip of a speaker beyond it is refused.
    """
    list_path = experiment.train_clips if split == "train" else experiment.validation_clips
    failed = _failed_clips(experiment)
    names = [name for name in read_clip_list(list_path) if name not in failed]
    if split == "train" and not names:
        raise UserError(
            f"no training clips in {list_path}: run `python -m rvc prepare` and `python -m rvc extract` "
            f"for experiment {experiment.name!r} first"
        )
    speakers = _speakers(experiment, names, speaker_slots)
    # First the frame count of every clip (headers and .npy shapes only), then each clip straight into its row.
    frames = [_clip_frames(experiment, name, sample_rate, hop_length, list_path) for name in names]
    frames_total = max(max(frames, default=1), min_frames)
    dim = feature_dim if feature_dim is not None else _feature_width(experiment, names)
    n = len(names)
    data = TrainingSet(
        names,
        torch.zeros(n, frames_total * hop_length, dtype=torch.float32),
        torch.zeros(n, frames_total, dim, dtype=feature_dtype),
        torch.ones(n, frames_total, dtype=torch.int64),
        torch.zeros(n, frames_total, dtype=torch.float32),
        torch.zeros(n, dtype=torch.int64),
        hop_length,
        sample_rate,
        speakers,
    )
    for i, name in enumerate(names):
        _fill_row(data, i, experiment, name, dim)
    return data


def _clip_paths(
    experiment: Experiment, name: str, sample_rate: int, listed_in: Path | None = None
) -> tuple[Path, Path, Path, Path]:
    """The audio, content features, coarse f0 and f0 in Hz of a clip; refused by name when one is missing.

    listed_in : the clip list that names the clip, named when the clip has none of its files.
    """
    paths = (
        experiment.clip_audio(name, sample_rate),
        experiment.clip_features(name),
        experiment.clip_f0_coarse(name),
        experiment.clip_f0(name),
    )
    missing = [str(p) for p in paths if not p.is_file()]
    if listed_in is not None and len(missing) == len(paths):
        # Not a clip whose extraction failed (extract would compute it again) but a name that prepare never
        # made, or whose clip was deleted: a hand-edited list. Extracting again would not help.
        raise UserError(
            f"{listed_in} names clip {name!r}, but the experiment has no audio or features of that name (no "
            f"{paths[0]}): remove the line, or prepare the dataset again (`python -m rvc prepare --experiment "
            f"{experiment.name} --input <folder>`)"
        )
    if missing:
        raise UserError(
            f"clip {name} is missing {', '.join(missing)}: run `python -m rvc extract --experiment "
            f"{experiment.name}` (and prepare at {sample_rate} Hz) again"
        )
    return paths


def _clip_frames(experiment: Experiment, name: str, sample_rate: int, hop_length: int, listed_in: Path) -> int:
    """The frames a clip trains on: the shortest of its audio (in hops), its features (x2) and its f0."""
    import soundfile as sf

    audio, content, coarse, f0 = _clip_paths(experiment, name, sample_rate, listed_in)
    try:
        samples = sf.info(str(audio)).frames
    except (RuntimeError, OSError) as error:  # soundfile's LibsndfileError is a RuntimeError
        raise UserError(
            f"{audio} is not readable audio ({error}): run `python -m rvc prepare` for experiment "
            f"{experiment.name!r} again"
        ) from None
    lengths = [_array_shape(experiment, path)[0] for path in (content, coarse, f0)]
    return min(2 * lengths[0], lengths[1], lengths[2], samples // hop_length)


def _array_shape(experiment: Experiment, path: Path) -> tuple[int, ...]:
    """The shape of an .npy file, read from its header (the data stays on disk)."""
    try:
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape) or (0,)
    except (OSError, ValueError, EOFError) as error:  # not an .npy, truncated, or a pickle
        raise _damaged(experiment, path, f"is not a readable array ({error})") from None


def _feature_width(experiment: Experiment, names: list[str]) -> int:
    """The content width the clips share (the first clip's; each clip is checked against it as it loads)."""
    if not names:
        return 768
    shape = _array_shape(experiment, experiment.clip_features(names[0]))
    return shape[1] if len(shape) == 2 else 768


def _fill_row(data: TrainingSet, i: int, experiment: Experiment, name: str, width: int) -> None:
    """Read clip ``name`` into row ``i`` of ``data`` (its frames up to the set's padded length)."""
    hop = data.hop_length
    audio, content_path, coarse, f0 = _clip_paths(experiment, name, data.sample_rate)
    wav = _read_clip(experiment, audio, data.sample_rate)
    content = _load_array(experiment, content_path, ndim=2)
    if content.shape[1] != width:
        raise _damaged(
            experiment,
            content_path,
            f"holds {content.shape[1]}-d content features but the model takes {width}-d "
            "(extracted with another content encoder?)",
        )
    phone = np.repeat(content, 2, axis=0)
    pitch, pitchf = _load_array(experiment, coarse, ndim=1), _load_array(experiment, f0, ndim=1)
    if pitch.size and not ((pitch >= 1) & (pitch <= 255)).all():  # each indexes the model's pitch table
        low, high = np.nanmin(pitch) if not np.isnan(pitch).all() else "NaN", np.nanmax(pitch)
        raise _damaged(experiment, coarse, f"holds coarse pitch values outside 1..255 (from {low} to {high})")
    _check_lengths(experiment, audio, len(wav) // hop, {content_path: len(phone), coarse: len(pitch), f0: len(pitchf)})
    frames = min(len(phone), len(pitch), len(pitchf), len(wav) // hop, data.max_frames)
    data.wav[i, : frames * hop] = torch.from_numpy(wav[: frames * hop])
    data.phone[i, :frames] = torch.from_numpy(phone[:frames]).to(data.phone.dtype)
    data.pitch[i, :frames] = torch.from_numpy(pitch[:frames].astype(np.int64))
    data.pitchf[i, :frames] = torch.from_numpy(pitchf[:frames].astype(np.float32))
    data.lengths[i] = frames


_FRAME_SLACK = 5  # frames (50 ms) by which a clip's files may differ from its audio


def _check_lengths(experiment: Experiment, audio: Path, audio_frames: int, features: dict[Path, int]) -> None:
    """Refuse a clip whose feature files do not cover its audio (frames at 100 frames/s; content counted x2).

    Extract's files differ from the audio by a frame or two (HuBERT's 400-sample window, f0's N // 160 + 1);
    a file cut short, empty, or another clip's (a sync tool's copy) differs by more. Training would take the
    shortest, which is padding and a slice of the wrong clip, or a held-out clip too short for its mel
    (a crash at the first validation).
    """
    slack = max(_FRAME_SLACK, audio_frames // 20)
    wrong = {path: frames for path, frames in features.items() if abs(frames - audio_frames) > slack}
    if not wrong:
        return
    counts = set(features.values())
    if len(wrong) == len(features) and max(counts) - min(counts) <= slack:  # the features agree: the audio is odd
        raise UserError(
            f"{audio} lasts {audio_frames / 100:.2f} s but its features cover {min(counts) / 100:.2f} s: the clip "
            f"was changed after extraction; delete it, then prepare the dataset again (`python -m rvc prepare "
            f"--experiment {experiment.name} --input <folder>`: it makes the missing clips) and extract again"
        )
    files = " and ".join(f"{path} covers {frames / 100:.2f} s" for path, frames in wrong.items())
    them = "them" if len(wrong) > 1 else "it"
    raise UserError(
        f"{files}, but its clip {audio} lasts {audio_frames / 100:.2f} s (cut short, or another clip's file): "
        f"delete {them} and run `python -m rvc extract --experiment {experiment.name}` again (it computes the "
        "missing files)"
    )


def _speakers(experiment: Experiment, names: list[str], slots: int | None) -> torch.Tensor:
    """Each clip's speaker id, as the dataset report records it (0 where it records none)."""
    report = DatasetReport.find(experiment)
    ids = report.speaker_ids() if report is not None else {}
    speakers = torch.tensor([ids.get(name, 0) for name in names], dtype=torch.int64)
    if slots is not None and len(speakers) and int(speakers.max()) >= slots:
        raise UserError(
            f"the dataset of {experiment.name!r} has {int(speakers.max()) + 1} speakers but the model's speaker "
            f"table has {slots} rows: raise spk_embed_dim in the model settings to {int(speakers.max()) + 1} or "
            "more (a pretrain of 109 rows then no longer loads), or prepare fewer speaker folders"
        )
    return speakers


def _damaged(experiment: Experiment, path: Path, why: str) -> UserError:
    return UserError(
        f"{path} {why}: delete it and run `python -m rvc extract --experiment {experiment.name}` again "
        "(it computes the missing files)"
    )


def _load_array(experiment: Experiment, path: Path, ndim: int) -> np.ndarray:
    """Return the numeric array in ``path`` (an .npy of ``ndim`` dimensions, every value finite)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # not an .npy, truncated, or a pickle
        raise _damaged(experiment, path, f"is not a readable array ({error})") from None
    if not isinstance(array, np.ndarray) or array.ndim != ndim or not np.issubdtype(array.dtype, np.number):
        shape = getattr(array, "shape", "?")
        raise _damaged(
            experiment, path, f"holds a {getattr(array, 'dtype', '?')} array of shape {shape}, not {ndim}-d numbers"
        )
    if array.size and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad == array.size:
            raise _damaged(experiment, path, f"holds only NaN or infinite values ({bad})")
        # A few bad frames: the step skips a batch whose loss is not finite; say which file.
        print(
            f"warning: {path} holds {bad} NaN or infinite values of {array.size}: the batches that meet them are "
            f"skipped; delete it and run `python -m rvc extract --experiment {experiment.name}` to compute it again",
            flush=True,
        )
    return array


def _read_clip(experiment: Experiment, path: Path, sample_rate: int) -> np.ndarray:
    """Return a prepared clip's audio at ``sample_rate``; a damaged clip is refused by name."""
    import soundfile as sf

    try:
        wav, file_rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, OSError) as error:  # soundfile's LibsndfileError is a RuntimeError
        raise UserError(
            f"{path} is not readable audio ({error}): run `python -m rvc prepare` for experiment "
            f"{experiment.name!r} again"
        ) from None
    if file_rate != sample_rate:
        raise UserError(f"{path} is {file_rate} Hz but training runs at {sample_rate} Hz: prepare again")
    if wav.ndim != 1 or not np.isfinite(wav).all():
        raise UserError(f"{path} is not a mono clip of finite samples: run `python -m rvc prepare` again")
    return wav

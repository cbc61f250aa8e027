"""``dataset.json``: what the prepare stage made, read by extract, config, export and the web UI.

Schema (version 1)::

    {"version": 1, "sample_rate": 40000, "total_seconds": 612.3, "total_hms": "00:10:12",
     "clip_count": 204, "train_clip_count": 194, "validation_clip_count": 10,
     "sources": [{"path", "sha256" (null when unreadable), "status": "ok" | "rejected",
                  "reason" (rejected: why; ok: a note worth a look, or null), "clips", "seconds", "cached"}],
     "rejected": [{"path", "reason"}],
     "clips": [{"name", "source", "start", "end", "seconds", "split": "train" | "validation", "speaker"}],
     "speakers": [{"id", "name", "clips", "seconds"}],
     "options": {...}}

``total_seconds`` counts each second of source audio once, although overlapping chunks hold
some of it twice; ``clips`` lists every clip of the dataset (``clip_count`` = train +
validation). ``speaker`` is the clip's speaker id (the training batches' ``sid``, 0 for a
one-voice dataset); ``speakers`` names each id and sums its listed clips, and is empty unless
prepare took speakers from sub-folders (``--speakers-from folders``): a report without it (or
written before it existed) is one speaker. ``options`` are prepare's options as run, plus
``input`` (the folders read), ``url``, ``transcribe`` and ``slice_by_whisper``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rvc.choices import SAMPLE_RATES
from rvc.errors import UserError
from rvc.experiment import records
from rvc.experiment.folder import Experiment
from rvc.experiment.names import validate_clip_name

REPORT_VERSION = 1


@dataclass
class SourceRow:
    """One input recording and what became of it."""

    path: str
    sha256: str | None  # None when the file could not be read
    status: Literal["ok", "rejected"]
    reason: str | None  # rejected: why; ok: a note worth a look, or None
    clips: int
    seconds: float
    cached: bool  # its clips came from the previous run's cache


@dataclass
class Rejection:
    path: str
    reason: str | None


@dataclass
class ClipRow:
    """One clip of the dataset: where in its source it was cut, and which split it is in."""

    name: str
    source: str
    start: float  # seconds into the source
    end: float
    seconds: float
    split: Literal["train", "validation"]
    speaker: int = 0  # the speaker id the model learns this clip as (RVC's sid)


@dataclass
class SpeakerRow:
    """One speaker of a many-voice dataset: its id (the model's speaker row), its folder's name, its clips."""

    id: int
    name: str
    clips: int
    seconds: float  # of its listed clips (overlapping chunks counted once)


@dataclass
class DatasetReport:
    sample_rate: int
    total_seconds: float = 0.0
    total_hms: str = ""
    clip_count: int = 0
    train_clip_count: int = 0
    validation_clip_count: int = 0
    sources: list[SourceRow] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    clips: list[ClipRow] = field(default_factory=list)
    speakers: list[SpeakerRow] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    version: int = REPORT_VERSION

    @classmethod
    def load(cls, experiment: Experiment) -> DatasetReport:
        """Read the experiment's report; UserError naming the file when it is missing or damaged."""
        path = experiment.dataset_report
        report = records.load(cls, path, _prepare_first(experiment), _REMEDY, REPORT_VERSION)
        report._check(path)
        return report

    def _check(self, path: Path) -> None:
        """Refuse what the fields' types let through but the stages cannot use: a clip name that is a path, a
        negative speaker id (each indexes files and the model's speaker table), a rate no preset trains at."""
        if self.sample_rate not in SAMPLE_RATES:
            rates = ", ".join(map(str, SAMPLE_RATES))
            raise records.damaged(path, f"sample_rate {self.sample_rate} is none of {rates}", _REMEDY)
        for number, clip in enumerate(self.clips, 1):
            try:
                validate_clip_name(clip.name)
            except ValueError:
                raise records.damaged(
                    path, f"clips[{number - 1}].name {clip.name!r} is not a clip name", _REMEDY
                ) from None
            if clip.speaker < 0:
                raise records.damaged(path, f"clips[{number - 1}].speaker is {clip.speaker}, below 0", _REMEDY)

    @classmethod
    def find(cls, experiment: Experiment) -> DatasetReport | None:
        """The report, or None when the dataset was never prepared (a damaged report still raises)."""
        return cls.load(experiment) if experiment.dataset_report.is_file() else None

    def save(self, experiment: Experiment) -> None:
        records.write(experiment.dataset_report, self)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def clip_names(self) -> list[str]:
        return [clip.name for clip in self.clips]

    def speaker_ids(self) -> dict[str, int]:
        """Return each clip's speaker id, by clip name."""
        return {clip.name: clip.speaker for clip in self.clips}

    @property
    def speaker_count(self) -> int:
        """How many speaker rows a model needs for this dataset (ids run from 0)."""
        return max((clip.speaker for clip in self.clips), default=0) + 1

    @property
    def inputs(self) -> list[Path]:
        """The folders the run read (its ``--input``)."""
        return [Path(str(p)) for p in self.options.get("input", [])]

    @property
    def sliced_by_whisper(self) -> bool:
        """Whether the run cut at Whisper's segments instead of at silences."""
        return bool(self.options.get("slice_by_whisper", False))


_REMEDY = "prepare the dataset again"


def _prepare_first(experiment: Experiment) -> str:
    return (
        f"no prepared dataset in {experiment.root}: run `python -m rvc prepare --experiment "
        f"{experiment.name} --input <folder>` (or Prepare Dataset in the web UI) first"
    )


def read_clip_list(path: Path) -> list[str]:
    """Return the clip names of a split list (``clips_train.txt``, ``clips_validation.txt``); [] when there is none.

    Prepare writes these; one it did not write (bytes that are not UTF-8, a name that is no clip's,
    such as ``../x``, a name listed twice) is a UserError naming the file, not a crash in the stage
    that reads it. Blank lines, spaces and Windows line ends are what an editor leaves: ignored.
    """
    try:
        # utf-8-sig: Windows editors (Notepad) begin a saved file with a byte-order mark, which
        # would otherwise stick to the first name and make it "no clip name".
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        raise records.damaged(path, f"cannot be read: {error}", _REMEDY) from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    first_seen: dict[str, int] = {}
    for number, name in enumerate(names, 1):
        try:
            validate_clip_name(name)
        except ValueError:
            raise UserError(f"{path} is damaged (clip {number}, {name!r}, is not a clip name): {_REMEDY}") from None
        if name in first_seen:  # a merge or a sync tool's copy: the clip would train twice as often as the rest
            raise UserError(
                f"{path} lists clip {name!r} twice (clips {first_seen[name]} and {number}): remove the "
                f"repeated line, or {_REMEDY}"
            )
        first_seen[name] = number
    return names


def read_split_lists(train: Path, validation: Path) -> tuple[list[str], list[str]]:
    """Return the clip names of the training and the held-out list; a clip in both is a UserError naming both.

    A held-out clip that is also trained on is no longer held out: its validation loss falls with the
    training loss, and the best epoch and the overtraining warning it decides would mean nothing.
    """
    train_names, validation_names = read_clip_list(train), read_clip_list(validation)
    both = sorted(set(train_names) & set(validation_names))
    if both:
        shown = ", ".join(both[:3]) + (f" and {len(both) - 3} more" if len(both) > 3 else "")
        raise UserError(
            f"{train} and {validation} both list {shown}: a held-out clip must not be trained on (its "
            f"validation loss would say nothing); remove each from one of the two files, or {_REMEDY}"
        )
    return train_names, validation_names

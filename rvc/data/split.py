"""Choose the validation clips: whole recordings where there are several, else the end of the one recording.

Neighbouring chunks of one recording share a room, a microphone, a take, and
(with overlap) even samples, so a validation clip next to a training clip
measures memory, not generalisation. Hence whole source files go to
validation; only when no whole file fits (one recording, or every recording
larger than the request) is a final stretch of one recording taken, and the
training chunk that overlaps that stretch is held back from training.

Also mrq's rule: clips shorter than ``min_seconds`` go to validation (they are
too short to train on well but still measure something).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rvc.data.options import Validation
from rvc.errors import UserError

AUTO_FRACTION = 0.05
AUTO_MIN_CLIPS = 10


@dataclass(frozen=True)
class SplitClip:
    """A clip as the split sees it: times in seconds of its source recording."""

    name: str
    start: float
    end: float
    seconds: float


@dataclass(frozen=True)
class Split:
    train: tuple[str, ...]
    validation: tuple[str, ...]
    held_back: tuple[str, ...]  # training clips overlapping a validation stretch of the same recording


def validation_count(total: int, validation: Validation) -> int:
    """Return how many clips to hold out of ``total``.

    auto: 5% (at least 1) once there are 10 clips or more, else none: below 10
    clips every clip held out is a large share of the training data, and a
    validation loss over one or two clips is too noisy to detect overtraining.
    """
    if validation == "auto":
        return max(1, round(AUTO_FRACTION * total)) if total >= AUTO_MIN_CLIPS else 0
    if isinstance(validation, float):
        return max(1, round(validation * total)) if validation > 0 and total > 1 else 0
    return int(validation)


def split_dataset(
    sources: Mapping[str, Sequence[SplitClip]], validation: Validation, min_seconds: float = 0.0
) -> Split:
    """Split the clips of ``sources`` (key -> its clips) into train and validation.

    The order of the keys (sha256 of each file: arbitrary but stable) decides
    which recordings are taken, so the split is the same on every run.
    """
    total = sum(len(clips) for clips in sources.values())
    short = {c.name for clips in sources.values() for c in clips if min_seconds > 0 and c.seconds < min_seconds}
    eligible = {key: [c for c in sources[key] if c.name not in short] for key in sorted(sources)}
    eligible = {key: clips for key, clips in eligible.items() if clips}
    trainable = total - len(short)
    if trainable == 0:
        raise UserError(
            f"every clip is shorter than --validation-min-seconds ({min_seconds} s): nothing is left to train on"
        )
    wanted = validation_count(total, validation)
    need = max(0, wanted - len(short))
    if need >= trainable:
        raise UserError(
            f"--validation {validation} asks for {wanted} validation clips but the dataset has {total}: "
            "nothing would be left to train on; ask for fewer"
        )
    chosen: set[str] = set(short)
    taken: set[str] = set()
    if need and len(eligible) > 1:
        for key, clips in eligible.items():
            # A whole recording may overshoot what is left by half: whole files beat an exact count.
            if len(clips) <= need + need // 2 and len(taken) < len(eligible) - 1:
                chosen.update(c.name for c in clips)
                taken.add(key)
                need = max(0, need - len(clips))
            if need == 0:
                break
    held: set[str] = set()
    if need:
        # No whole recording fits what is left: the final stretch of the largest one still in training.
        key = max((k for k in eligible if k not in taken), key=lambda k: (len(eligible[k]), k))
        ordered = sorted(eligible[key], key=lambda c: (c.start, c.end))
        stretch = ordered[-need:]
        chosen.update(c.name for c in stretch)
        stretch_start = min(c.start for c in stretch)
        held = {c.name for c in ordered[:-need] if c.end > stretch_start}
    all_names = [c.name for key in sorted(sources) for c in sorted(sources[key], key=lambda c: (c.start, c.name))]
    train = [n for n in all_names if n not in chosen and n not in held]
    if not train:  # holding back would leave nothing: accept the small leak instead
        train, held = [n for n in all_names if n not in chosen], set()
    return Split(
        train=tuple(train),
        validation=tuple(n for n in all_names if n in chosen),
        held_back=tuple(n for n in all_names if n in held),
    )

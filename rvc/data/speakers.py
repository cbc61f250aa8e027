"""Speakers of a many-voice dataset (``--speakers-from folders``): one sub-folder of an input folder per speaker.

A pretrain is trained on many voices, and RVC's generator learns one row of its speaker table
(``emb_g``, 109 rows) per voice: each training clip carries its speaker's id (``sid``). The
speaker of a recording is the first folder below the input folder that holds it
(``voices/alice/take1.wav`` and ``voices/alice/2023/take2.wav`` are both ``alice``); the same
folder name under two input folders is one speaker. Ids follow the speakers' names in sorted
order, so the same folders give the same ids on every run. A recording directly in an input
folder has no speaker and is listed as rejected, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rvc.data.options import SpeakersFrom
from rvc.errors import UserError
from rvc.models.config import ModelConfig

# Rows of the v2 generator's speaker table: RVC's pretrains and exported models keep 109.
SPEAKER_SLOTS = ModelConfig().spk_embed_dim
NO_SPEAKER_FOLDER = (
    "not in a speaker's folder: with --speakers-from folders each speaker's recordings go in a sub-folder "
    "of the input folder, named after the speaker"
)


@dataclass(frozen=True)
class Speakers:
    """Who speaks in each recording."""

    names: tuple[str, ...]  # by id: names[i] is speaker i
    of_source: dict[str, int]  # sha256 of a recording -> its speaker id

    def speaker(self, sha: str) -> int:
        return self.of_source.get(sha, 0)


def one_voice(sources: Mapping[str, Path]) -> Speakers:
    """Every recording is speaker 0 (``--speakers-from none``)."""
    return Speakers((), dict.fromkeys(sources, 0))


def speaker_folder(path: Path, roots: Sequence[Path]) -> str | None:
    """Return the name of the folder right below the (deepest) input folder holding ``path``; None when the
    file lies in the input folder itself or outside every one."""
    holding = [root for root in roots if path.is_relative_to(root)]
    if not holding:
        return None
    parts = path.relative_to(max(holding, key=lambda root: len(root.parts))).parts
    return parts[0] if len(parts) > 1 else None


def assign_speakers(
    mode: SpeakersFrom, sources: Mapping[str, Path], roots: Sequence[Path], slots: int = SPEAKER_SLOTS
) -> tuple[Speakers, dict[str, str]]:
    """Return the speakers of ``sources`` (sha256 -> path) and the recordings that have none (sha256 -> why).

    Raises UserError when there are more speakers than the model has rows for (``slots``).
    """
    if mode == "none":
        return one_voice(sources), {}
    folder_of = {sha: speaker_folder(path, roots) for sha, path in sources.items()}
    names = tuple(sorted({name for name in folder_of.values() if name is not None}))
    if len(names) > slots:
        shown = ", ".join(str(root) for root in roots)
        raise UserError(
            f"{len(names)} speaker folders under {shown}, but the v2 model has {slots} speaker rows "
            f"(RVC's pretrains and exported models keep {SPEAKER_SLOTS}): merge voices into at most {slots} "
            "folders, or prepare them as separate datasets"
        )
    ids = {name: i for i, name in enumerate(names)}
    of_source = {sha: ids[name] for sha, name in folder_of.items() if name is not None}
    without = {sha: NO_SPEAKER_FOLDER for sha, name in folder_of.items() if name is None}
    return Speakers(names, of_source), without

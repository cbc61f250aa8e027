"""The dataset report of the Prepare Dataset tab: totals, speakers, rejected files, and the pitch distribution.

Everything is read from the experiment's files (its dataset and features reports and
per-clip f0), so the report is the same after a reload or a restart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rvc.data.report import hms
from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace
from rvc.experiment.dataset import DatasetReport as DatasetRecord
from rvc.experiment.dataset import SpeakerRow
from rvc.experiment.features import FeaturesReport
from rvc.experiment.names import validate_clip_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The histogram spans RVC's coarse-pitch range (50-1100 Hz) in semitone-wide bins.
PITCH_MIN_HZ = 50.0
PITCH_MAX_HZ = 1100.0
_NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

REJECTED_HEADERS = ["File", "Status", "Reason"]


@dataclass(frozen=True)
class PitchHistogram:
    """Voiced f0 frames of the dataset's clips, counted in semitone bins."""

    edges_hz: np.ndarray  # float64 [B + 1], log-spaced bin edges
    counts: np.ndarray  # int64 [B], voiced frames per bin
    voiced_frames: int
    clips: int  # clips whose f0 file was read
    missing: int  # clips the dataset lists without an f0 file
    median_hz: float | None
    low_hz: float | None  # 5th percentile
    high_hz: float | None  # 95th percentile


@dataclass(frozen=True)
class DatasetReport:
    """What the prepare and extract stages recorded for one experiment."""

    experiment: str
    sample_rate: int
    total_seconds: float
    total_hms: str
    clip_count: int
    train_clip_count: int
    validation_clip_count: int
    source_count: int  # recordings that gave clips
    speakers: list[SpeakerRow]  # a many-voice dataset's speakers (prepared with speakers from folders); else empty
    rejected: list[list[str]]  # rows of REJECTED_HEADERS
    features: FeaturesReport | None  # when the extract stage ran
    pitch: PitchHistogram | None


def note_name(hz: float) -> str:
    """Return the nearest equal-tempered note of a frequency: 440.0 -> 'A4'."""
    midi = round(69 + 12 * math.log2(hz / 440.0))
    return f"{_NOTES[midi % 12]}{midi // 12 - 1}"


def pitch_histogram(experiment: Experiment, clips: list[str]) -> PitchHistogram | None:
    """Count the voiced f0 frames (``f0_hz/<clip>.npy``, 0 = unvoiced) of ``clips``; None when none was extracted."""
    semitones = math.ceil(12 * math.log2(PITCH_MAX_HZ / PITCH_MIN_HZ))
    edges = PITCH_MIN_HZ * 2.0 ** (np.arange(semitones + 1) / 12)
    counts = np.zeros(semitones, dtype=np.int64)
    voiced: list[np.ndarray] = []
    read = missing = 0
    for clip in clips:
        try:
            f0 = np.load(experiment.clip_f0(validate_clip_name(clip)))
        except (OSError, ValueError):  # not extracted yet, or a damaged file: counted as missing
            missing += 1
            continue
        read += 1
        every_frame = np.asarray(f0, dtype=np.float64).ravel()
        frames = every_frame[np.isfinite(every_frame) & (every_frame > 0)]
        voiced.append(frames)
        counts += np.histogram(np.clip(frames, edges[0], edges[-1]), bins=edges)[0]
    if not read:
        return None
    every = np.concatenate(voiced) if voiced else np.zeros(0)
    low, median, high = (float(v) for v in np.percentile(every, [5, 50, 95])) if every.size else (None,) * 3
    return PitchHistogram(edges, counts, int(every.size), read, missing, median, low, high)


def _display_path(path: str, roots: list[str]) -> str:
    """Return ``path`` relative to the input folder it came from (shorter in the table), else as it is."""
    for root in roots:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            continue
    return path


def _rejected_rows(dataset: DatasetRecord, features: FeaturesReport | None) -> list[list[str]]:
    roots = [str(r) for r in dataset.inputs]
    rows = []
    for source in dataset.sources:
        shown = _display_path(source.path, roots)
        if source.status == "rejected":
            rows.append([shown, "rejected", source.reason or ""])
        elif source.reason:
            rows.append([shown, "kept, with a note", source.reason])
    for failure in features.failed if features is not None else []:
        rows.append([failure.clip, "features failed", failure.reason])
    return rows


def load_dataset_report(experiment: Experiment) -> DatasetReport | None:
    """Return the experiment's report, or None when it has no prepared dataset."""
    dataset = DatasetRecord.find(experiment)
    if dataset is None:
        return None
    features = FeaturesReport.find(experiment)
    return DatasetReport(
        experiment=experiment.name,
        sample_rate=dataset.sample_rate,
        total_seconds=dataset.total_seconds,
        total_hms=dataset.total_hms,
        clip_count=dataset.clip_count,
        train_clip_count=dataset.train_clip_count,
        validation_clip_count=dataset.validation_clip_count,
        source_count=sum(1 for s in dataset.sources if s.status == "ok"),
        speakers=dataset.speakers,
        rejected=_rejected_rows(dataset, features),
        features=features,
        pitch=pitch_histogram(experiment, dataset.clip_names()) if experiment.f0_dir.is_dir() else None,
    )


def summary_markdown(report: DatasetReport | None) -> str:
    """Return the report's totals as Markdown (a hint when there is nothing yet)."""
    if report is None:
        return "No prepared dataset yet: choose the recordings and press **Prepare dataset**."
    minutes = report.total_seconds / 60
    lines = [
        f"**{report.experiment}**: {report.total_hms} of audio ({minutes:.1f} min) at {report.sample_rate} Hz "
        f"from {report.source_count} recording(s)",
        f"- clips: **{report.clip_count}** ({report.train_clip_count} train, "
        f"{report.validation_clip_count} validation)",
    ]
    rejected = sum(1 for row in report.rejected if row[1] == "rejected")
    notes = sum(1 for row in report.rejected if row[1] == "kept, with a note")
    if rejected or notes:
        lines.append(f"- files rejected: **{rejected}**, kept with a note: {notes} (see the table)")
    else:
        lines.append("- files rejected: none")
    if report.features:
        f = report.features
        failed = len(f.failed)
        lines.append(
            f"- features: {f.f0_method} pitch, {Path(f.embedder).name} content on "
            f"{f.device}: {f.ready_clips} of {f.clip_count} clips ready" + (f", {failed} failed" if failed else "")
        )
    else:
        lines.append("- features: not extracted yet (press **Extract features**)")
    pitch = report.pitch
    if pitch is not None and pitch.median_hz is not None and pitch.low_hz is not None and pitch.high_hz is not None:
        lines.append(
            f"- pitch: median {pitch.median_hz:.0f} Hz ({note_name(pitch.median_hz)}), 90% of voiced frames "
            f"between {pitch.low_hz:.0f} and {pitch.high_hz:.0f} Hz "
            f"({note_name(pitch.low_hz)}-{note_name(pitch.high_hz)})"
        )
    if report.clip_count and minutes < 10:
        lines.append(
            f"- {minutes:.1f} minutes is little: 10 minutes or more of clean speech usually gives a better voice"
        )
    lines += _speaker_lines(report.speakers)  # last: a table ends the list
    return "\n".join(lines)


def _speaker_lines(speakers: list[SpeakerRow]) -> list[str]:
    """Return the speakers as a list line and a table of each one's id, clips and duration (none: one voice)."""
    if not speakers:
        return []
    empty = sum(1 for speaker in speakers if not speaker.clips)
    lines = [
        f"- speakers: **{len(speakers)}**, one per sub-folder; each clip trains its speaker's row of the model"
        + (f" ({empty} without clips: every recording of theirs was rejected)" if empty else ""),
        "",
        "| id | speaker | clips | duration |",
        "|---:|---|---:|---:|",
    ]
    for speaker in speakers:
        name = speaker.name.replace("|", "\\|")
        lines.append(f"| {speaker.id} | {name} | {speaker.clips} | {hms(speaker.seconds)} |")
    return lines


def pitch_figure(histogram: PitchHistogram | None) -> Figure | None:
    """Return a bar chart of the pitch histogram on a log-frequency axis with note names; None without data."""
    if histogram is None or histogram.voiced_frames == 0:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 2.8), layout="constrained")
    axes = figure.add_subplot()
    edges = histogram.edges_hz
    seconds = histogram.counts / 100.0  # f0 frames are 10 ms
    axes.bar(edges[:-1], seconds, width=np.diff(edges), align="edge", color="#f97316", edgecolor="white", linewidth=0.3)
    axes.set_xscale("log")
    axes.set_xlim(edges[0], edges[-1])
    ticks = [65.41, 130.81, 261.63, 523.25, 1046.5]  # C2 .. C6
    axes.set_xticks(ticks, [f"{note_name(t)}\n{t:.0f} Hz" for t in ticks])
    axes.minorticks_off()
    axes.set_ylabel("voiced seconds")
    axes.set_title(
        f"Pitch distribution: {histogram.voiced_frames / 100:.0f} s voiced in {histogram.clips} clips", fontsize=10
    )
    if histogram.median_hz is not None:
        axes.axvline(histogram.median_hz, color="#1f2937", linestyle="--", linewidth=1)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def report_view(workspace: Workspace, name: str | None) -> tuple[str, Figure | None, list[list[str]]]:
    """Return what the tab shows for experiment ``name``: summary Markdown, pitch figure, rejected rows."""
    name = (name or "").strip()
    if not name:
        return summary_markdown(None), None, []
    try:
        report = load_dataset_report(workspace.experiment(name))
    except UserError as error:  # a bad name, or a damaged report: say which file
        return f"Error: {error}", None, []
    if report is None:
        return f"'{name}' has no prepared dataset yet. {summary_markdown(None)}", None, []
    return summary_markdown(report), pitch_figure(report.pitch), report.rejected

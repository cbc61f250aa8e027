"""Optional Whisper stage of Prepare Dataset: transcripts, Whisper-timestamp slicing, LJSpeech lists.

``transcribe_sources`` runs openai-whisper on whole source recordings (16 kHz
mono float32) and caches the result in ``whisper.json``, keyed by each
source's sha256, so a re-run transcribes only new sources. ``slice_spans`` and
``text_for_span`` turn the segments into cut points and per-clip text, and
``write_transcripts`` writes the ``path|text`` lists next to the clips.

This module is imported only when the prepare stage runs with ``--transcribe``,
so importing torch and whisper at the top is fine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import whisper
from tqdm import tqdm
from whisper.model import ModelDimensions, Whisper

from rvc.audio import AudioReadError, load_audio
from rvc.data.whisper_options import WhisperOptions
from rvc.devices import resolve_device
from rvc.errors import UserError
from rvc.experiment import AssetDir, Experiment
from rvc.fileio import atomic_write_json, atomic_write_text, read_json

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # whisper's input rate; sources must already be at it

WHISPER_JSON_VERSION = 1

# At most this many tokens are decoded per 30 s window. Real speech needs far
# fewer between two timestamps, and whisper resumes the next window at the last
# complete segment, so a lower cap only costs an extra window now and then; it
# bounds the work of a model stuck repeating one token (224 is whisper's own limit).
MAX_TOKENS_PER_WINDOW = 128


@dataclass(frozen=True)
class Segment:
    """One Whisper segment of a source recording, in seconds from its start."""

    start: float
    end: float
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Segment:
        return cls(float(obj["start"]), float(obj["end"]), str(obj["text"]))


# --- model ---------------------------------------------------------------


def load_whisper_model(name_or_path: str, assets: AssetDir, device: str = "auto") -> Whisper:
    """Return a Whisper model in eval mode on ``device``.

    ``name_or_path`` is one of ``whisper.available_models()`` (downloaded once
    into ``assets.whisper_dir``) or a path to a checkpoint in whisper's own
    format ``{"dims": {...}, "model_state_dict": {...}}``.
    """
    target = torch.device(resolve_device(device))
    if name_or_path in whisper.available_models():
        model = _load_named(name_or_path, assets, target)
    else:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise UserError(
                f"Whisper model {name_or_path!r} is neither a known model name "
                f"({', '.join(whisper.available_models())}) nor an existing .pt file"
            )
        model = _load_checkpoint(path).to(target)
    return model.eval()


def _load_named(name: str, assets: AssetDir, device: torch.device) -> Whisper:
    """Load an official model through whisper, which checks its sha256 and downloads it if needed."""
    url = whisper._MODELS[name]
    file_name = url.rsplit("/", 1)[-1]
    folder = assets.whisper_dir
    where = "is damaged or incomplete" if (folder / file_name).exists() else "is not there"
    try:
        return whisper.load_model(name, device=device, download_root=str(folder))
    except OSError as error:  # urllib's URLError when offline
        raise UserError(
            f"Whisper model {name!r}: {folder / file_name} {where} and could not be downloaded from {url} "
            f"({error}). Download {file_name} from that address and put it in {folder}, "
            "or pick a model that is already there."
        ) from error
    except RuntimeError as error:  # whisper's checksum mismatch after a download
        raise UserError(
            f"Whisper model {name!r}: {folder / file_name} is damaged ({error}). "
            f"Delete it and download it again from {url}."
        ) from error


def _load_checkpoint(path: Path) -> Whisper:
    """Build a Whisper model from a user's checkpoint file, never unpickling arbitrary objects."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a bad or foreign file
        raise UserError(f"cannot read Whisper checkpoint {path}: {error}") from error
    if not isinstance(checkpoint, dict) or not {"dims", "model_state_dict"} <= checkpoint.keys():
        raise UserError(
            f"{path} is not a Whisper checkpoint: expected a dict with 'dims' and 'model_state_dict' "
            "(the format of openai-whisper's .pt files)"
        )
    try:
        model = Whisper(ModelDimensions(**checkpoint["dims"]))
        model.load_state_dict(checkpoint["model_state_dict"])
    except (TypeError, RuntimeError) as error:
        raise UserError(f"Whisper checkpoint {path} does not match its own 'dims': {error}") from error
    return model


# --- transcription -------------------------------------------------------


def transcribe_sources(
    sources: Mapping[str, tuple[Path, np.ndarray]],
    experiment: Experiment,
    options: WhisperOptions,
    model: Whisper | None = None,
    assets: AssetDir | None = None,
    on_error: Callable[[str, Path, str], None] | None = None,
) -> dict[str, list[Segment]]:
    """Return the Whisper segments of every source, transcribing only those not cached in whisper.json.

    sources : sha256 of the source file -> (its path, its audio: float32 ndarray[T] at 16 kHz).
    model : an already loaded model; when None, ``options.model`` is loaded from ``assets``,
        and only if some source needs transcribing.
    on_error : called with (sha256, path, reason) for a source whisper failed on; that
        source gets no segments and stays out of whisper.json, so the next run retries it.

    whisper.json is rewritten atomically after each transcribed source, so an
    interrupted run keeps what it has done.
    """
    cache = _read_cache(experiment.whisper_json)
    results: dict[str, list[Segment]] = {
        sha: [Segment.from_json(s) for s in cache[sha]["segments"]]
        for sha in sources
        if sha in cache and not options.retranscribe
    }
    todo = [sha for sha in sources if sha not in results]
    if todo and model is None:
        if assets is None:
            raise ValueError("transcribe_sources needs `assets` to load the Whisper model when `model` is None")
        model = load_whisper_model(options.model, assets, options.device)
    for sha in tqdm(todo, desc="whisper", unit="file", disable=not todo):
        assert model is not None  # loaded above whenever todo is not empty
        path, audio = sources[sha]
        try:
            segments, language = _transcribe_one(model, audio, options.language)
        except (RuntimeError, ValueError) as error:
            reason = f"Whisper failed on {path}: {error}"
            log.warning(reason)
            if on_error is not None:
                on_error(sha, path, reason)
            results[sha] = []
            continue
        results[sha] = segments
        cache[sha] = {
            "path": str(path),
            "language": language,
            "model": options.model,
            "segments": [s.to_json() for s in segments],
        }
        atomic_write_json(experiment.whisper_json, {"version": WHISPER_JSON_VERSION, "sources": cache})
    return {sha: results[sha] for sha in sources}


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """Return the valid entries of whisper.json; a damaged file or entry is only a cache miss."""
    try:
        data = read_json(path, default={})
    except (OSError, ValueError) as error:
        log.warning("ignoring unreadable %s (%s): its sources will be transcribed again", path, error)
        return {}
    entries = data.get("sources", {}) if isinstance(data, dict) else {}
    if not isinstance(entries, dict):
        return {}
    cache: dict[str, dict[str, Any]] = {}
    for sha, entry in entries.items():
        try:
            [Segment.from_json(s) for s in entry["segments"]]
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a damaged entry %s in %s", sha, path)
            continue
        cache[sha] = entry
    return cache


def _transcribe_one(model: Whisper, audio: np.ndarray, language: str | None) -> tuple[list[Segment], str]:
    """Transcribe one recording (float32 ndarray[T] at 16 kHz); return its segments and language."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape (T,), got {audio.shape}")
    duration = len(audio) / SAMPLE_RATE
    if duration == 0:
        return [], language or ""
    result = whisper.transcribe(
        model,
        audio,
        verbose=None,
        # One greedy pass per window: no temperature fallback (which decodes up to
        # six times) and no previous text as prompt, which lets a model loop.
        temperature=0.0,
        condition_on_previous_text=False,
        sample_len=MAX_TOKENS_PER_WINDOW,
        language=language,
        fp16=model.device.type == "cuda",
    )
    segments = []
    for raw in result["segments"]:
        # whisper's last window is padded to 30 s, so a timestamp can fall past the end.
        start = min(max(float(raw["start"]), 0.0), duration)
        end = min(max(float(raw["end"]), start), duration)
        if start >= duration:
            continue
        segments.append(Segment(start, end, str(raw["text"]).strip()))
    return segments, str(result["language"])


# --- slicing and transcripts ---------------------------------------------


def slice_spans(
    segments: Sequence[Segment], duration: float, start_offset: float = 0.0, end_offset: float = 0.0
) -> list[tuple[float, float]]:
    """Return the (start, end) seconds to cut when slicing a recording by Whisper's timestamps.

    Each segment with text gives one span, moved by the offsets and clamped to
    [0, duration]. Spans are sorted; one inside another is merged into it, and
    two that partly overlap (e.g. after negative start / positive end offsets)
    meet at the middle of their overlap, so no audio is in two clips. Empty
    spans are dropped.
    """
    spans = []
    for segment in segments:
        if not segment.text.strip():
            continue  # whisper blanks segments it found no speech in
        start = min(max(segment.start + start_offset, 0.0), duration)
        end = min(max(segment.end + end_offset, 0.0), duration)
        if end > start:
            spans.append((start, end))
    spans.sort()
    resolved: list[tuple[float, float]] = []
    for start, end in spans:
        if resolved and start < resolved[-1][1]:
            previous_start, previous_end = resolved[-1]
            if end <= previous_end:
                continue  # contained: already covered
            middle = (start + previous_end) / 2
            resolved[-1] = (previous_start, middle)
            start = middle
        resolved.append((start, end))
    return [(s, e) for s, e in resolved if e > s]


def text_for_span(segments: Sequence[Segment], start: float, end: float) -> str:
    """Return the text of the segments whose midpoint lies in [start, end), joined with spaces."""
    texts = [s.text.strip() for s in segments if start <= (s.start + s.end) / 2 < end]
    return " ".join(t for t in texts if t).strip()


def write_transcripts(
    experiment: Experiment,
    train: Sequence[tuple[Path, str]],
    validation: Sequence[tuple[Path, str]],
) -> None:
    """Write LJSpeech-style ``path|text`` lists of the training and validation clips.

    Paths are written relative to the experiment folder, with '/' separators;
    '|' and line breaks in the text become spaces so each clip stays one line.
    """
    for target, rows in ((experiment.transcript_train, train), (experiment.transcript_validation, validation)):
        lines = [f"{_relative_to_experiment(experiment, path)}|{_clean_text(text)}\n" for path, text in rows]
        atomic_write_text(target, "".join(lines))


def _relative_to_experiment(experiment: Experiment, path: Path) -> str:
    path = Path(path)
    absolute = path if path.is_absolute() else experiment.root / path
    for candidate in (absolute, absolute.resolve()):
        try:
            return candidate.relative_to(experiment.root).as_posix()
        except ValueError:
            continue
    raise ValueError(f"clip {path} is not inside the experiment folder {experiment.root}")


def _clean_text(text: str) -> str:
    return " ".join(text.replace("|", " ").split())


class SourceAudio16k(Mapping[str, tuple[Path, np.ndarray]]):
    """Sources as Whisper wants them (16 kHz mono), decoded only when asked for.

    Whisper skips the sources already in whisper.json, so a re-run decodes nothing.
    A file that cannot be decoded gives empty audio; the prepare step reports it.
    """

    def __init__(self, paths: dict[str, Path]) -> None:
        self._paths = paths

    def __getitem__(self, sha: str) -> tuple[Path, np.ndarray]:
        path = self._paths[sha]
        try:
            audio, _ = load_audio(path, sample_rate=SAMPLE_RATE)
        except AudioReadError as error:
            log.warning("cannot transcribe %s: %s", path, error.reason)
            audio = np.zeros(0, dtype=np.float32)
        return path, audio

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

"""One source recording -> clips on disk: the unit of work of the prepare stage (runs in worker processes).

For each source: decode; reject it when it is empty, clipped, too short or
silent; mix to mono; optionally peak-normalise, high-pass, denoise and shorten
long silences (in that order, all at the file's own rate); cut it (silence
slicer or Whisper spans, then chunks); drop slices with an absurd peak; apply
RVC's per-slice normalisation; resample each slice to the target rate and to
16 kHz and write both. Everything a job needs travels in :class:`SourceJob`,
so it pickles to a worker; a bad file becomes a rejected :class:`SourceResult`,
never an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rvc.audio import (
    RVC_PEAK,
    AudioReadError,
    blend_gain,
    highpass,
    load_audio,
    peak,
    resample,
    to_mono,
    too_loud,
    write_wav,
)
from rvc.data.options import ABSURD_PEAK, PrepareOptions
from rvc.data.slicer import chunk_span, loudest_frame_db, slice_at_silences
from rvc.data.vad import TimeMap, trim_long_silences
from rvc.experiment import Experiment

log = logging.getLogger(__name__)

SAMPLE_RATE_16K = 16000
# More than this fraction of samples flat at full scale: the file is rejected (see clipped_fraction).
CLIPPED_REJECT = 0.01
# With --normalize pre a quiet file is boosted before slicing, so "silent" means below this instead.
PRE_NORMALIZE_SILENT_DB = -60.0
# Context resampled around each slice, so cutting before resampling equals resampling the whole file.
RESAMPLE_CONTEXT_S = 0.05


@dataclass(frozen=True)
class ClipRecord:
    """One written clip. Times in seconds of the source file; span in samples of the processed signal."""

    name: str
    start: float
    end: float
    seconds: float
    span_start: int
    span_end: int
    gain: float  # applied to the processed signal (RVC's post normalisation; 1.0 otherwise)


@dataclass(frozen=True)
class SourceJob:
    """Everything needed to turn one source into clips (picklable)."""

    path: Path
    sha256: str
    prefix: str  # clip names are f"{prefix}-{index:04d}"
    options: PrepareOptions
    experiment: Experiment
    write_16k: bool = True  # False: the 16 kHz clips are current; only the target rate is (re)written
    device: str = "cpu"  # resolved device for denoising
    spans: tuple[tuple[float, float], ...] | None = None  # Whisper spans in source seconds, instead of the slicer
    plan: tuple[ClipRecord, ...] | None = None  # a cached cut to reproduce exactly (target-rate-only redo)


@dataclass(frozen=True)
class SourceResult:
    """What became of one source."""

    path: Path
    sha256: str
    ok: bool
    reason: str | None = None  # why it was rejected
    notes: tuple[str, ...] = ()  # worth a look even when ok (light clipping, dropped slices, low rate)
    retry: bool = False  # the failure came from outside the file (e.g. ffmpeg missing): do not cache it
    sample_rate: int = 0
    duration: float = 0.0
    clips: tuple[ClipRecord, ...] = field(default_factory=tuple)


class _Rejected(Exception):
    def __init__(self, reason: str, retry: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def process_source(job: SourceJob) -> SourceResult:
    """Turn one source into clips on disk and return what happened; never raises for a bad file."""
    try:
        return _process(job)
    except _Rejected as rejected:
        return SourceResult(job.path, job.sha256, ok=False, reason=rejected.reason, retry=rejected.retry)
    except AudioReadError as error:
        return SourceResult(job.path, job.sha256, ok=False, reason=error.reason, retry=error.retry)
    except MemoryError:
        reason = "too large to process in memory: split it into shorter files"
        return SourceResult(job.path, job.sha256, ok=False, reason=reason, retry=True)
    except Exception as error:  # one bad file must not end a run of hundreds; the report shows the cause
        log.exception("failed on %s", job.path)
        reason = f"failed: {type(error).__name__}: {error}"
        return SourceResult(job.path, job.sha256, ok=False, reason=reason, retry=True)


def _process(job: SourceJob) -> SourceResult:
    options = job.options
    audio, sr = load_audio(job.path, mono=False)
    if audio.shape[-1] == 0:
        raise _Rejected("empty (no samples)")
    notes: list[str] = []
    if not np.isfinite(audio).all():
        audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
        notes.append("non-finite samples replaced by silence")
    if (loud := too_loud(audio)) is not None:  # before any level is measured: 1e30 squared is inf in float32
        raise _Rejected(loud)
    clipped = clipped_fraction(audio)
    if clipped > CLIPPED_REJECT:
        raise _Rejected(f"clipped ({clipped:.1%} of samples flat at full scale): record again with a lower input level")
    if clipped > 0:
        notes.append(f"lightly clipped ({clipped:.2%} of samples flat at full scale)")
    mono = to_mono(audio)
    del audio
    duration = len(mono) / sr
    if duration < options.keep_seconds:
        raise _Rejected(f"too short ({_seconds(duration)} s)")
    floor = PRE_NORMALIZE_SILENT_DB if options.normalize == "pre" else options.slicer.threshold_db
    loudest = loudest_frame_db(mono, sr, options.slicer.hop)
    if loudest < floor:
        raise _Rejected(f"silent (loudest part {loudest:.1f} dBFS, threshold {floor:g} dB)")
    if sr < options.sample_rate:
        notes.append(f"recorded at {sr} Hz, below the {options.sample_rate} Hz target: nothing above {sr // 2} Hz")

    signal, pre_gain, timemap = condition(mono, sr, options, job.device)
    clips = list(job.plan) if job.plan is not None else _cut(signal, sr, timemap, job, pre_gain, notes)
    _write(signal, sr, clips, job)
    return SourceResult(
        job.path, job.sha256, ok=True, notes=tuple(notes), sample_rate=sr, duration=duration, clips=tuple(clips)
    )


def clipped_fraction(audio: np.ndarray, level: float = 0.99, min_run: int = 4) -> float:
    """Return the fraction of samples in runs of >= ``min_run`` identical values at >= ``level`` of full scale.

    audio : ndarray[T] or ndarray[C, T]. Digital clipping leaves flat tops at
    full scale; a clean waveform, even a loud low note at 96 kHz, does not repeat
    one value four times at its peak. (Clipping that was later attenuated, or
    smeared by a lossy codec, is not seen.)
    """
    channels = np.atleast_2d(audio)
    flat = 0
    for channel in channels:
        loud = np.flatnonzero(np.abs(channel) >= level)  # usually empty: then nothing else is computed
        if loud.size < min_run:
            continue
        values = channel[loud]
        # A run ends where the next loud sample is not adjacent or has another value.
        breaks = np.flatnonzero((np.diff(loud) != 1) | (np.diff(values) != 0)) + 1
        lengths = np.diff(np.concatenate(([0], breaks, [loud.size])))
        flat += int(lengths[lengths >= min_run].sum())
    return flat / channels.size if channels.size else 0.0


def condition(mono: np.ndarray, sr: int, options: PrepareOptions, device: str) -> tuple[np.ndarray, float, TimeMap]:
    """Apply the optional whole-file steps; return (signal ndarray[T'], pre-normalise gain, TimeMap)."""
    signal = mono
    pre_gain = 1.0
    if options.normalize == "pre":
        top = peak(signal)
        pre_gain = RVC_PEAK / top if top > 0 else 1.0
        signal = (signal * pre_gain).astype(np.float32)
    if options.highpass:
        signal = highpass(signal, sr)
    if options.denoise:
        from rvc.data.denoise import spectral_gate

        signal = spectral_gate(signal, sr, device=device, strength=options.denoise_strength)
    timemap = TimeMap.identity(len(signal))
    if options.trim_silence:
        slicer = options.slicer
        signal, timemap = trim_long_silences(signal, sr, slicer.threshold_db, slicer.max_silence_kept)
    return signal, pre_gain, timemap


def _cut(
    signal: np.ndarray, sr: int, timemap: TimeMap, job: SourceJob, pre_gain: float, notes: list[str]
) -> list[ClipRecord]:
    """Choose the clips: spans, then chunks, minus short and absurd slices."""
    options = job.options
    spans = _spans(signal, sr, timemap, job)
    if not spans and job.spans is not None:
        raise _Rejected("no speech (Whisper found no segment to cut)")
    if not spans:
        raise _Rejected(f"silent (no sound above {options.slicer.threshold_db:g} dB)")
    keep = options.keep_seconds * sr
    clips: list[ClipRecord] = []
    short, absurd = 0, 0
    for a, b in spans:
        if b - a < keep:
            short += 1
            continue
        top = peak(signal[a:b])
        if top == 0.0:
            continue  # digital silence (only possible with --cut none or Whisper spans)
        if top / pre_gain > ABSURD_PEAK:
            absurd += 1
            continue
        gain = blend_gain(top) if options.normalize == "post" else 1.0
        start = timemap.to_source(a) / sr
        end = (timemap.to_source(b - 1) + 1) / sr
        name = f"{job.prefix}-{len(clips):04d}"
        clips.append(ClipRecord(name, round(start, 4), round(end, 4), round((b - a) / sr, 4), a, b, gain))
    if absurd:
        notes.append(f"{absurd} slice(s) dropped: peak above {ABSURD_PEAK} (broken float data)")
    if short and clips:
        notes.append(f"{short} slice(s) dropped: shorter than {_seconds(options.keep_seconds)} s")
    if not clips:
        if absurd:
            raise _Rejected(f"every slice peaks above {ABSURD_PEAK}: broken float data, not a recording")
        longest = max(b - a for a, b in spans) / sr
        raise _Rejected(f"too short (longest sound {_seconds(longest)} s, under {_seconds(options.keep_seconds)} s)")
    return clips


def _spans(signal: np.ndarray, sr: int, timemap: TimeMap, job: SourceJob) -> list[tuple[int, int]]:
    """Return sample spans of ``signal`` to keep, before the length and peak checks."""
    options = job.options
    if job.spans is not None:
        base = [(timemap.to_processed(round(s * sr)), timemap.to_processed(round(e * sr))) for s, e in job.spans]
        base = [(a, min(b, len(signal))) for a, b in base if min(b, len(signal)) > a]
    elif options.cut == "automatic":
        base = slice_at_silences(signal, sr, options.slicer)
    else:
        base = [(0, len(signal))]
    if options.cut == "none":
        return base
    chunks = [c for a, b in base for c in chunk_span(a, b, round(options.chunk * sr), round(options.overlap * sr))]
    if options.cut == "simple":
        # Fixed chunks know nothing of silences: leave out the ones with no sound at all.
        threshold = options.slicer.threshold_db
        chunks = [(a, b) for a, b in chunks if loudest_frame_db(signal[a:b], sr, options.slicer.hop) >= threshold]
    return chunks


def _write(signal: np.ndarray, sr: int, clips: list[ClipRecord], job: SourceJob) -> None:
    """Write each clip at the target rate and (unless current) at 16 kHz; no fsync, the caller syncs once."""
    subtype = job.options.wav_subtype
    target = job.options.sample_rate
    for clip in clips:
        if job.write_16k:
            audio = cut_resampled(signal, sr, clip.span_start, clip.span_end, SAMPLE_RATE_16K) * clip.gain
            write_wav(job.experiment.clip_audio_16k(clip.name), audio, SAMPLE_RATE_16K, subtype, fsync=False)
        audio = cut_resampled(signal, sr, clip.span_start, clip.span_end, target) * clip.gain
        write_wav(job.experiment.clip_audio(clip.name, target), audio, target, subtype, fsync=False)


def cut_resampled(signal: np.ndarray, sr: int, start: int, end: int, target_sr: int) -> np.ndarray:
    """Return ``signal[start:end]`` resampled to ``target_sr``, exactly ``round((end - start) * target_sr / sr)`` long.

    A little context on both sides goes through the resampler, so the slice
    matches the same stretch of the whole file resampled at once.
    """
    if target_sr == sr:
        return np.array(signal[start:end], dtype=np.float32)
    pad = round(RESAMPLE_CONTEXT_S * sr)
    lo, hi = max(0, start - pad), min(len(signal), end + pad)
    resampled = resample(signal[lo:hi], sr, target_sr)
    offset = round((start - lo) * target_sr / sr)
    length = round((end - start) * target_sr / sr)
    out = resampled[offset : offset + length]
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out.astype(np.float32)


def _seconds(value: float) -> str:
    """Format seconds briefly: 0.2, 1.5, 0.04."""
    return (f"{value:.2f}".rstrip("0").rstrip(".") or "0") if value < 10 else f"{value:.1f}"

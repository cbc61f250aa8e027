"""Audio in and out: decode 13 formats, mix to mono, resample, high-pass, normalise, write WAV.

Decoding tries libsndfile (through soundfile) first, which reads wav, flac,
ogg/opus, aiff and mp3 without starting a process, and falls back to an
``ffmpeg`` subprocess for the rest (m4a, mp4, aac, alac, wma, webm, ac3, ...).
Every failure is an :class:`AudioReadError` whose ``reason`` is short enough for
a report and tells the user what to do where there is something to do.
"""

from __future__ import annotations

import io
import json
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Literal

import numpy as np

from rvc.fileio import atomic_write_bytes

# Lower-case file extensions (without the dot) that are read as audio.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {"wav", "mp3", "flac", "ogg", "opus", "m4a", "mp4", "aac", "alac", "wma", "aiff", "aif", "webm", "ac3"}
)

FFMPEG_MISSING = "needs ffmpeg: install it (apt install ffmpeg / conda install ffmpeg)"

WavSubtype = Literal["FLOAT", "PCM_16"]

# RVC's "max" and "alpha": a slice is scaled to peak 0.9, then blended 75/25 with the
# original, which evens out levels without flattening the dynamics completely.
RVC_PEAK = 0.9
RVC_ALPHA = 0.75


# The sample rates a file may declare: below, nothing of a voice is kept; above, no converter records.
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 768000


# Float files can hold samples above full scale (1.0), a little (prepare drops slices above 2.5, RVC's rule);
# 100 times (+40 dB) is a damaged file, whose squares may overflow float32 (1e30: rejected as "silent").
MAX_PLAUSIBLE_PEAK = 100.0


def too_loud(audio: np.ndarray) -> str | None:
    """Say why ``audio`` (finite samples) cannot be a recording when its peak is past MAX_PLAUSIBLE_PEAK, else None."""
    top = float(np.max(np.abs(audio))) if audio.size else 0.0
    if top <= MAX_PLAUSIBLE_PEAK:
        return None
    return f"damaged: samples reach {top:.3g} times full scale; export it again from the program that made it"


class AudioReadError(Exception):
    """A file that cannot be read as audio.

    ``reason`` is what the report shows ("empty (0 bytes)", "permission denied",
    "unreadable: ...", "not audio (...)", or the ffmpeg hint); ``retry`` is True
    when the cause lies outside the file (ffmpeg missing), so a cache must not
    remember the failure.
    """

    def __init__(self, path: Path, reason: str, retry: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason
        self.retry = retry


def extension(path: Path) -> str:
    """Return the lower-case extension of ``path`` without the dot ('' when there is none)."""
    return Path(path).suffix.lower().lstrip(".")


def is_audio_name(path: Path) -> bool:
    """Return True when the file name has one of :data:`AUDIO_EXTENSIONS`."""
    return extension(path) in AUDIO_EXTENSIONS


def load_audio(path: Path, *, mono: bool = True, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode ``path`` and return ``(audio, sample_rate)``.

    audio : float32, ndarray[T] when ``mono`` (channels averaged), else ndarray[C, T].
    sample_rate : the file's own rate, or ``sample_rate`` when given (then resampled, soxr VHQ).

    Raises AudioReadError for anything that is not a readable audio file.
    """
    path = Path(path)
    _check_regular_readable(path)
    try:
        audio, rate = _read_soundfile(path)
    except _NotLibsndfile as error:
        audio, rate = _read_ffmpeg(path, soundfile_error=str(error))
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        # A damaged header: at 1 Hz, 4000 samples are an hour of audio to resample and convert.
        raise AudioReadError(
            path,
            f"damaged: its header says {rate} Hz, which no recording uses ({MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} Hz); export it again from the program that made it",
        )
    if mono:
        audio = to_mono(audio)
    if sample_rate is not None and sample_rate != rate:
        audio = resample(audio, rate, sample_rate)
        rate = sample_rate
    return audio, rate


def _check_regular_readable(path: Path) -> None:
    """Refuse what is not a regular, non-empty, readable file, before any decoder sees it."""
    try:
        info = path.stat()
    except FileNotFoundError as error:
        # A dangling symlink also lands here.
        raise AudioReadError(path, "not found (deleted, or a broken link)") from error
    except PermissionError as error:
        raise AudioReadError(path, "permission denied: make it readable (chmod +r)") from error
    if stat.S_ISDIR(info.st_mode):
        raise AudioReadError(path, "not a file (a folder)")
    if not stat.S_ISREG(info.st_mode):
        # Opening a FIFO or a device would block or read forever.
        raise AudioReadError(path, "not a file (a pipe, socket or device)")
    if info.st_size == 0:
        raise AudioReadError(path, "empty (0 bytes)")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except PermissionError as error:
        raise AudioReadError(path, "permission denied: make it readable (chmod +r)") from error
    except OSError as error:
        raise AudioReadError(path, f"unreadable: {error.strerror or error}") from error


class _NotLibsndfile(Exception):
    """libsndfile could not decode the file; ffmpeg may."""


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise _NotLibsndfile(str(error)) from error
    return np.ascontiguousarray(data.T), int(rate)


def _read_ffmpeg(path: Path, soundfile_error: str) -> tuple[np.ndarray, int]:
    """Decode with ffmpeg to raw float32 at the file's own rate and channel count."""
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if ffmpeg is None or ffprobe is None:
        raise AudioReadError(path, FFMPEG_MISSING, retry=True)
    rate, channels = _probe(ffprobe, path, soundfile_error)
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-vn"]
    command += ["-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(rate), "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        raise AudioReadError(path, f"unreadable: ffmpeg: {_last_line(result.stderr)}")
    audio = np.frombuffer(result.stdout, dtype="<f4")
    audio = audio[: len(audio) - len(audio) % channels].reshape(-1, channels).T
    return np.ascontiguousarray(audio, dtype=np.float32), rate


def _probe(ffprobe: str, path: Path, soundfile_error: str) -> tuple[int, int]:
    """Return (sample rate, channels) of the first audio stream of ``path``."""
    command = [ffprobe, "-v", "error", "-show_streams", "-select_streams", "a:0", "-of", "json", str(path)]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        detail = _last_line(result.stderr) or soundfile_error
        raise AudioReadError(path, f"unreadable: not a known audio format ({detail})")
    streams = json.loads(result.stdout or b"{}").get("streams", [])
    if not streams:
        raise AudioReadError(path, "not audio (the file has no audio stream)")
    try:
        rate, channels = int(streams[0]["sample_rate"]), int(streams[0]["channels"])
    except (KeyError, ValueError) as error:
        raise AudioReadError(path, "unreadable: ffprobe reports no sample rate or channel count") from error
    if rate <= 0 or channels <= 0:
        raise AudioReadError(path, f"unreadable: ffprobe reports {rate} Hz, {channels} channels")
    return rate, channels


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels: ndarray[C, T] -> float32 ndarray[T]; mono input is returned as float32."""
    if audio.ndim == 1:
        return np.asarray(audio, dtype=np.float32)
    if audio.shape[0] == 1:
        return np.ascontiguousarray(audio[0], dtype=np.float32)
    return audio.mean(axis=0, dtype=np.float64).astype(np.float32)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample with soxr's very-high-quality filter (steep, linear phase, delay compensated).

    audio : float32 ndarray[T] or ndarray[C, T]; returns the same layout at ``target_sr``.
    """
    if orig_sr == target_sr:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    if audio.ndim == 1:
        return soxr.resample(np.asarray(audio, dtype=np.float32), orig_sr, target_sr, quality="VHQ")
    out = soxr.resample(np.ascontiguousarray(audio.T, dtype=np.float32), orig_sr, target_sr, quality="VHQ")
    return np.ascontiguousarray(out.T)


def highpass(audio: np.ndarray, sample_rate: int, cutoff_hz: float = 48.0, order: int = 5) -> np.ndarray:
    """Apply RVC's high-pass: a 5th-order Butterworth at 48 Hz (removes DC and rumble).

    Causal, like RVC's ``signal.lfilter``, but in second-order sections, which
    stay stable where the transfer-function form loses precision at high rates.
    audio : float32 ndarray[T] (or [..., T]).
    """
    from scipy import signal

    sos = signal.butter(order, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, audio, axis=-1).astype(np.float32)


def peak(audio: np.ndarray) -> float:
    """Return the largest absolute sample value (0.0 for empty audio)."""
    return float(np.max(np.abs(audio))) if audio.size else 0.0


def peak_normalize(audio: np.ndarray, target: float = RVC_PEAK) -> np.ndarray:
    """Scale ``audio`` so its peak is ``target``; digital silence is returned unchanged."""
    top = peak(audio)
    if top == 0.0:
        return np.asarray(audio, dtype=np.float32)
    return (audio * (target / top)).astype(np.float32)


def blend_gain(audio_peak: float, target: float = RVC_PEAK, alpha: float = RVC_ALPHA) -> float:
    """Return RVC's per-slice gain: ``x / peak * target * alpha + (1 - alpha) * x`` is ``x * gain``."""
    if audio_peak <= 0.0:
        return 1.0
    return target * alpha / audio_peak + (1.0 - alpha)


def wav_bytes(audio: np.ndarray, sample_rate: int, subtype: WavSubtype = "FLOAT") -> bytes:
    """Encode mono float audio (ndarray[T]) as a WAV file in memory."""
    import soundfile as sf

    data = np.asarray(audio, dtype=np.float32)
    if subtype == "PCM_16":
        # soundfile converts out-of-range floats by wrapping around; clip instead.
        data = np.clip(data, -1.0, 32767 / 32768)
    buffer = io.BytesIO()
    sf.write(buffer, data, sample_rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def write_wav(
    path: Path, audio: np.ndarray, sample_rate: int, subtype: WavSubtype = "FLOAT", fsync: bool = True
) -> None:
    """Write ``audio`` (float32 ndarray[T]) to ``path`` atomically: readers see the old file or the new one.

    ``fsync=False`` skips the per-file flush to disk; the caller then syncs once
    before it records the files as done (thousands of fsyncs cost seconds).
    """
    path = Path(path)
    data = wav_bytes(audio, sample_rate, subtype)
    atomic_write_bytes(path, data, fsync=fsync)

"""The parameters of the prepare stage, one typed dataclass (the CLI flags map onto it one to one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from rvc.choices import MAX_WORKERS, SampleRate
from rvc.data.slicer import SlicerParams
from rvc.devices import is_device_name
from rvc.errors import UserError
from rvc.settings import check_declared, setting

CutMode = Literal["automatic", "simple", "none"]
CUT_MODES: tuple[CutMode, ...] = get_args(CutMode)
NormalizeMode = Literal["none", "pre", "post"]
NORMALIZE_MODES: tuple[NormalizeMode, ...] = get_args(NormalizeMode)
WavFormat = Literal["float32", "pcm16"]
WAV_FORMATS: tuple[WavFormat, ...] = get_args(WavFormat)
SpeakersFrom = Literal["none", "folders"]
SPEAKER_SOURCES: tuple[SpeakersFrom, ...] = get_args(SpeakersFrom)

# Shorter clips are dropped: RVC trains on random 0.32-0.36 s segments, and a clip
# this short holds barely one of them.
MIN_CLIP_SECONDS = 0.5
# Even with --validation-min-seconds, a clip this short holds under 10 pitch frames.
CLIP_FLOOR_SECONDS = 0.1
# The longest clip a chunk may be: training pads every clip to the longest on the GPU, so one
# minute-long clip costs as much memory as twenty 3 s ones.
MAX_CHUNK_SECONDS = 60.0
# A slice whose peak (before normalising) exceeds this is broken float data, not a voice (RVC's rule).
ABSURD_PEAK = 2.5

Validation = Literal["auto"] | int | float


def parse_validation(text: str) -> Validation:
    """Parse ``--validation``: 'auto', a whole number of clips, or a fraction in (0, 1)."""
    text = text.strip().lower()
    if text == "auto":
        return "auto"
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise _validation_error(
                f"$validation {text!r}: use auto, a number of clips (e.g. 10) or a fraction (e.g. 0.05)"
            ) from None
    check_validation(value)
    return value


@dataclass(frozen=True)
class PrepareOptions:
    """How recordings become clips. Defaults are RVC's where RVC has one."""

    sample_rate: SampleRate = setting(
        40000, "the model's training rate; 40k suits most voices", label="Sample rate", group="audio"
    )
    speakers_from: SpeakersFrom = setting(
        "none",
        "none: every clip is one voice (speaker 0); folders: each sub-folder of an input folder is one speaker "
        "(a pretrain's many voices; at most the model's 109)",
        label="Speakers",
        group="input",
    )
    cut: CutMode = setting(
        "automatic",
        "automatic: at silences, then chunks; simple: fixed chunks; none: whole files (pre-cut datasets)",
        label="Cut mode",
        group="slicing",
    )
    chunk: float = setting(
        3.0,
        "longest clip, seconds",
        label="Chunk length (s)",
        maximum=MAX_CHUNK_SECONDS,
        metavar="S",
        group="slicing",
    )
    overlap: float = setting(
        0.3, "overlap of neighbouring chunks, seconds", label="Chunk overlap (s)", metavar="S", group="slicing"
    )
    slicer: SlicerParams = field(default_factory=SlicerParams)
    min_clip: float = setting(
        MIN_CLIP_SECONDS,
        "shorter clips are dropped (or held out, see $validation_min_seconds), seconds",
        label="Shortest clip (s)",
        minimum=CLIP_FLOOR_SECONDS,
        metavar="S",
        group="slicing",
    )
    highpass: bool = setting(
        True,
        "RVC's 48 Hz high-pass (5th-order Butterworth): removes DC and rumble the model would waste effort on",
        label="48 Hz high-pass",
        group="audio",
    )
    normalize: NormalizeMode = setting(
        "post",
        "pre: peak-normalise each file; post: RVC's per-clip blend (peak 0.9, alpha 0.75)",
        label="Normalize",
        group="audio",
    )
    denoise: bool = setting(
        False, "spectral gating of stationary noise (GPU when there is one)", label="Denoise", group="audio"
    )
    denoise_strength: float = setting(
        1.0,
        "0..1: how much gated noise to remove (1: gated bins removed fully; 0.5: halved)",
        label="Denoise strength",
        minimum=0,
        maximum=1,
        metavar="X",
        group="audio",
    )
    device: str = setting(
        "auto",
        "where denoising, Whisper and extraction run: auto, cpu, cuda or cuda:N",
        label="Device",
        metavar="DEVICE",
        group="audio",
    )
    trim_silence: bool = setting(
        False,
        "shorten silences longer than $max_silence_kept inside recordings",
        label="Trim long silences",
        group="audio",
    )
    wav_format: WavFormat = setting(
        "float32",
        "sample format of the clips: float32 (RVC's) or pcm16 (half the disk)",
        label="Clip format",
        group="audio",
    )
    validation: Validation = setting(
        "auto",
        "clips held out for validation losses and overtraining detection: a count (10), a fraction (0.05), "
        "0 for none, or auto (5% from 10 clips up)",
        label="Validation clips",
        metavar="N|F|auto",
        parse=parse_validation,
        group="validation split",
    )
    validation_min_seconds: float = setting(
        0.0,
        "clips shorter than this (or than $min_clip) go to validation instead of being dropped (0 = off)",
        label="Validation audio length threshold (s)",
        minimum=0,
        metavar="S",
        group="validation split",
    )
    workers: int = setting(
        0,
        "processes for the CPU work (0 = one per core)",
        label="Worker processes",
        minimum=0,
        maximum=MAX_WORKERS,
        metavar="N",
        group="performance",
    )

    def check(self) -> None:
        """Raise a UserError naming the option when a value cannot work."""
        check_declared(self)
        if not self.chunk >= self.min_clip:
            raise self._error("chunk", f"$chunk {self.chunk} must be at least $min_clip ({self.min_clip} s)")
        if not 0 <= self.overlap < self.chunk:
            raise self._error(
                "overlap", f"$overlap {self.overlap} must be at least 0 and shorter than $chunk ({self.chunk})"
            )
        if not is_device_name(self.device):
            raise self._error("device", f"$device {self.device!r} is not a device: use auto, cpu, cuda or cuda:N")
        self.slicer.check()
        check_validation(self.validation)

    @staticmethod
    def _error(name: str, message: str) -> UserError:
        return UserError(message, field=name, options=PrepareOptions)

    @property
    def keep_seconds(self) -> float:
        """Clips shorter than this are not written at all."""
        return CLIP_FLOOR_SECONDS if self.validation_min_seconds > 0 else self.min_clip

    @property
    def short_for_validation(self) -> float:
        """Clips shorter than this go to validation (0: none): with mrq's rule on, what would be dropped too."""
        return max(self.validation_min_seconds, self.min_clip) if self.validation_min_seconds > 0 else 0.0

    @property
    def wav_subtype(self) -> Literal["FLOAT", "PCM_16"]:
        return "PCM_16" if self.wav_format == "pcm16" else "FLOAT"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_validation(value: Validation) -> None:
    if value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _validation_error(f"$validation {value!r}: use auto, a number of clips or a fraction")
    if isinstance(value, int) and value < 0:
        raise _validation_error(f"$validation {value}: a number of clips must be 0 (none) or more")
    if isinstance(value, float) and not 0 <= value < 1:
        raise _validation_error(f"$validation {value}: a fraction must be in [0, 1); write a count as a whole number")


def _validation_error(message: str) -> UserError:
    return UserError(message, field="validation", options=PrepareOptions)

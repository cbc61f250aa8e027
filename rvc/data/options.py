"""The parameters of the prepare stage, one typed dataclass (the CLI flags map onto it one to one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rvc.data.slicer import SlicerParams
from rvc.errors import UserError

SAMPLE_RATES = (32000, 40000, 48000)
CUT_MODES = ("automatic", "simple", "none")
NORMALIZE_MODES = ("none", "pre", "post")
WAV_FORMATS = {"float32": "FLOAT", "pcm16": "PCM_16"}

# Shorter clips are dropped: RVC trains on random 0.32-0.36 s segments, and a clip
# this short holds barely one of them.
MIN_CLIP_SECONDS = 0.5
# Even with --validation-min-seconds, a clip this short holds under 10 pitch frames.
CLIP_FLOOR_SECONDS = 0.1
# A slice whose peak (before normalising) exceeds this is broken float data, not a voice (RVC's rule).
ABSURD_PEAK = 2.5

Validation = Literal["auto"] | int | float


@dataclass(frozen=True)
class PrepareOptions:
    """How recordings become clips. Defaults are RVC's where RVC has one."""

    sample_rate: int = 40000  # training rate of the clips (32000, 40000 or 48000)
    cut: str = "automatic"  # automatic: silence slicer then chunks; simple: fixed chunks; none: whole files
    chunk: float = 3.0  # longest clip, seconds
    overlap: float = 0.3  # overlap of neighbouring chunks, seconds
    slicer: SlicerParams = field(default_factory=SlicerParams)
    min_clip: float = MIN_CLIP_SECONDS  # shorter clips are dropped (or held out, see validation_min_seconds)
    highpass: bool = True  # RVC's 48 Hz high-pass: removes DC and rumble the model would waste effort on
    normalize: str = "post"  # none | pre (peak-normalise each file) | post (RVC's per-clip blend)
    denoise: bool = False  # spectral gating of stationary noise
    denoise_strength: float = 1.0  # 1: gated bins removed fully; 0.5: halved
    device: str = "auto"  # where denoising (and Whisper) run: auto, cuda, cuda:N, cpu
    trim_silence: bool = False  # shorten silences longer than slicer.max_silence_kept inside recordings
    wav_format: str = "float32"  # float32 (RVC's) or pcm16 (half the disk)
    validation: Validation = "auto"  # clips held out: a count >= 1, a fraction in (0, 1), 0 = none, or auto
    validation_min_seconds: float = 0.0  # >0: clips shorter than this (or min_clip) go to validation, not dropped
    workers: int = 0  # processes for the CPU work; 0 = one per core

    def check(self) -> None:
        """Raise UserError naming the option when a value cannot work."""
        if self.sample_rate not in SAMPLE_RATES:
            raise UserError(f"--sample-rate {self.sample_rate}: use one of {', '.join(map(str, SAMPLE_RATES))}")
        if self.cut not in CUT_MODES:
            raise UserError(f"--cut {self.cut}: use one of {', '.join(CUT_MODES)}")
        if self.normalize not in NORMALIZE_MODES:
            raise UserError(f"--normalize {self.normalize}: use one of {', '.join(NORMALIZE_MODES)}")
        if self.wav_format not in WAV_FORMATS:
            raise UserError(f"--wav-format {self.wav_format}: use one of {', '.join(WAV_FORMATS)}")
        if not self.chunk >= self.min_clip:
            raise UserError(f"--chunk {self.chunk} must be at least --min-clip ({self.min_clip} s)")
        if not 0 <= self.overlap < self.chunk:
            raise UserError(f"--overlap {self.overlap} must be at least 0 and shorter than --chunk ({self.chunk})")
        if not self.min_clip >= CLIP_FLOOR_SECONDS:
            raise UserError(f"--min-clip {self.min_clip} must be at least {CLIP_FLOOR_SECONDS} s")
        if not 0 <= self.denoise_strength <= 1:
            raise UserError(f"--denoise-strength {self.denoise_strength} must be between 0 and 1")
        if self.validation_min_seconds < 0:
            raise UserError("--validation-min-seconds must be 0 (off) or positive")
        if self.workers < 0:
            raise UserError("--workers must be 0 (one per core) or positive")
        try:
            self.slicer.check()
        except ValueError as error:
            raise UserError(
                f"slicer options: {error} (--min-length, --min-interval, --hop, --max-silence-kept)"
            ) from None
        check_validation(self.validation)

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
            raise UserError(
                f"--validation {text!r}: use auto, a number of clips (e.g. 10) or a fraction (e.g. 0.05)"
            ) from None
    check_validation(value)
    return value


def check_validation(value: Validation) -> None:
    if value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"--validation {value!r}: use auto, a number of clips or a fraction")
    if isinstance(value, int) and value < 0:
        raise UserError(f"--validation {value}: a number of clips must be 0 (none) or more")
    if isinstance(value, float) and not 0 <= value < 1:
        raise UserError(f"--validation {value}: a fraction must be in [0, 1); write a count as a whole number")

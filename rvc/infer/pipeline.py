"""RVC's voice conversion: 16 kHz input -> content features (+ retrieval) and f0 -> the generator -> audio.

The steps follow RVC's ``infer/modules/vc/pipeline.py`` (and Applio's copy of it):

1. the input is mixed to mono, resampled to 16 kHz, scaled down if it peaks above 1 (to 0.95 as
   RVC's ``vc_single``) and high-passed at 48 Hz (5th-order Butterworth, zero phase as RVC's
   ``filtfilt``);
2. long inputs are cut into windows at quiet points (:mod:`rvc.infer.windows`); per window:
3. content features from the encoder's last layer (768-d at 50 frames/s), optionally blended with
   their nearest training vectors from the FAISS index (:mod:`rvc.infer.retrieval`), repeated x2
   to 100 frames/s;
4. f0 by the chosen method, shifted by ``pitch`` semitones, optionally replaced from an f0 file,
   and its coarse 1..255 form (:mod:`rvc.infer.pitch`);
5. protect (when < 0.5): on unvoiced frames (f0 == 0) the retrieved features are blended back
   towards the encoder's own with weight ``protect``, so breaths and voiceless consonants keep
   their articulation;
6. the generator's ``infer()`` with speaker 0, under fp16/bf16 autocast on a GPU;
7. the windows' kept parts are stitched, the RMS envelope is mixed (:mod:`rvc.infer.envelope`),
   the result is resampled if asked and scaled down if it would clip (peak 0.99, as RVC).

Where RVC pads features and f0 differently at a window's end (it drops the last frame or two, so
its output drifts), every window here renders whole frames and the output has exactly the
input's duration at the model's rate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rvc.choices import INFERENCE_PRECISIONS
from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.fileio import make_folder
from rvc.infer.model import VoiceModel
from rvc.infer.options import ConvertOptions
from rvc.infer.retrieval import FeatureIndex, blend_retrieval
from rvc.infer.windows import HOP, SAMPLE_RATE, Window, WindowConfig, run_windowed

if TYPE_CHECKING:
    import torch

    from rvc.f0 import F0Estimator
    from rvc.f0.device import Precision
    from rvc.features.embedder import ContentEmbedder

INPUT_PEAK = 0.95  # RVC's vc_single scales an input that peaks above 1 to this
OUTPUT_PEAK = 0.99  # RVC scales the result down to this when it would clip
HIGHPASS_HZ = 48.0
SPEAKER_ID = 0  # exported voices hold one speaker


@dataclass(frozen=True)
class Conversion:
    """A converted clip and how it was made."""

    audio: np.ndarray  # float32 [M], peak <= 0.99
    sample_rate: int
    windows: tuple[Window, ...]  # how the 16 kHz input was cut
    input_seconds: float
    seconds: float  # wall time of the conversion


# ---------------------------------------------------------------- the stages


def prepare_input(audio: np.ndarray, sample_rate: int, highpass: bool = True) -> np.ndarray:
    """Return the 16 kHz input the encoder and f0 see: mono float32 [N], peak <= 0.95 if it was > 1, high-passed."""
    from scipy import signal

    from rvc.audio import resample, to_mono

    mono = to_mono(np.asarray(audio))
    mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    audio16 = resample(mono, sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else mono
    peak = float(np.max(np.abs(audio16))) if audio16.size else 0.0
    if peak > 1.0:
        audio16 = audio16 * (INPUT_PEAK / peak)
    if highpass and len(audio16) > 30:  # sosfiltfilt needs a few samples beyond its padding
        sos = signal.butter(5, HIGHPASS_HZ, btype="highpass", fs=SAMPLE_RATE, output="sos")
        audio16 = signal.sosfiltfilt(sos, audio16, padlen=min(len(audio16) - 1, 3 * (2 * len(sos) + 1)))
    return np.ascontiguousarray(audio16, dtype=np.float32)


def to_frames(features: np.ndarray, n_frames: int) -> np.ndarray:
    """Repeat 50 frames/s features x2 to 100 frames/s and fit them to ``n_frames``.

    features : float32 [T x D] -> float32 [n_frames x D]. HuBERT yields a frame or two fewer than
    the f0 track; the last frame is repeated over them (they fall in a window's trimmed context).
    """
    doubled = np.repeat(features, 2, axis=0)
    if len(doubled) >= n_frames:
        return np.ascontiguousarray(doubled[:n_frames])
    if len(doubled) == 0:
        raise ValueError("no content frames to repeat")
    tail = np.repeat(doubled[-1:], n_frames - len(doubled), axis=0)
    return np.concatenate([doubled, tail])


def window_features(
    embedder: ContentEmbedder,
    segment: np.ndarray,
    n_frames: int,
    index: FeatureIndex | None = None,
    index_rate: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the generator's content features of a 16 kHz segment and the encoder's own.

    returns : (features, original), float32 [n_frames x D] each at 100 frames/s; ``features`` is
    ``original`` blended with retrieval by ``index_rate`` (the same values when it is 0 or no index).
    """
    own = embedder.embed(segment)
    blended = blend_retrieval(own, index, index_rate)
    original = to_frames(own, n_frames)
    return (original if blended is own else to_frames(blended, n_frames)), original


def protect_features(features: np.ndarray, original: np.ndarray, f0_hz: np.ndarray, protect: float) -> np.ndarray:
    """Blend ``original`` back in on unvoiced frames: weight ``protect`` for ``features`` there, 1 elsewhere.

    As RVC, only when protect < 0.5; frames with f0 < 1 Hz count as unvoiced.
    features, original : float32 [T x D]; f0_hz : [T]
    """
    if protect >= 0.5 or features is original:
        return features
    weight = np.where(np.asarray(f0_hz) >= 1.0, 1.0, protect).astype(np.float32)[:, None]
    return (features * weight + original * (1.0 - weight)).astype(np.float32)


def synthesize(
    model: VoiceModel, features: np.ndarray, coarse: np.ndarray, f0_hz: np.ndarray, precision: Precision = "fp32"
) -> np.ndarray:
    """Run the generator on one window: [T x D] features, [T] coarse pitch and f0 -> float32 [T * hop] audio."""
    import torch

    from rvc.f0.device import autocast

    device = model.device
    frames = len(features)
    phone = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device).unsqueeze(0)
    pitch = torch.from_numpy(np.asarray(coarse, dtype=np.int64)).to(device).unsqueeze(0)
    nsff0 = torch.from_numpy(np.asarray(f0_hz, dtype=np.float32)).to(device).unsqueeze(0)
    lengths = torch.tensor([frames], device=device)
    speaker = torch.tensor([SPEAKER_ID], device=device)
    with torch.inference_mode(), autocast(device, precision):
        audio = model.generator.infer(phone, lengths, pitch, nsff0, speaker)[0]
    return audio[0, 0].float().cpu().numpy()


# ---------------------------------------------------------------- the converter


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """Return fp32 on the CPU; on a GPU bf16 where supported for "auto", else fp16, or what was asked."""
    import torch

    if precision not in INFERENCE_PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: use {', '.join(INFERENCE_PRECISIONS)}")
    if device.type != "cuda":
        if precision in ("fp16", "bf16"):
            raise UserError(f"precision {precision} runs only on a CUDA GPU; on {device} use fp32 (or auto)")
        return "fp32"
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32" if precision == "fp32" else ("fp16" if precision == "fp16" else "bf16")


def _embedder_dtype(precision: Precision) -> str:
    # HuBERT in fp16 is as fast as bf16 and about 8x closer to fp32 (measured for extraction, which
    # also uses fp16 by default): the training features were made that way.
    return "float32" if precision == "fp32" else "float16"


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's generators for the block and restore their state after it (no global change)."""
    import torch

    if seed is None:
        yield
        return
    devices: list[int] = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class VoiceConverter:
    """A loaded voice (model, content encoder, optional index) that converts clips.

    Build with :meth:`load`. Keeps its f0 estimators, so a batch or a UI session loads each once.
    """

    def __init__(
        self,
        model: VoiceModel,
        embedder: ContentEmbedder,
        assets: AssetDir,
        index: FeatureIndex | None = None,
        precision: Precision = "fp32",
    ) -> None:
        if embedder.feature_dim != model.feature_dim:
            raise UserError(
                f"content encoder {embedder.name!r} gives {embedder.feature_dim}-d features but {model.path} takes "
                f"{model.feature_dim}-d; use the encoder the model was trained with (--embedder)"
            )
        if index is not None:
            from rvc.infer.retrieval import check_index_dim

            check_index_dim(index, model.feature_dim, model.path)
        self.model = model
        self.embedder = embedder
        self.assets = assets
        self.index = index
        self.precision = precision
        self._estimators: dict[str, F0Estimator] = {}

    @classmethod
    def load(
        cls,
        model_path: str | Path,
        assets: AssetDir,
        *,
        index_path: str | Path | None = None,
        embedder: str | None = None,
        device: str = "auto",
        precision: str = "auto",
        allow_download: bool = True,
    ) -> VoiceConverter:
        """Load an exported model, its content encoder and optionally its index.

        embedder : a known name or a path; None uses the one recorded in the model file
            (ContentVec for RVC's files, which record none).
        Raises UserError for unusable files, naming them.
        """
        from rvc.features.embedder import load_embedder
        from rvc.infer.model import load_voice_model, recorded_embedder
        from rvc.infer.retrieval import load_index

        model = load_voice_model(model_path, device)
        resolved = resolve_precision(precision, model.device)
        index = load_index(index_path) if index_path is not None else None
        name = embedder or recorded_embedder(model.exported)
        content = load_embedder(
            name, assets, device=str(model.device), dtype=_embedder_dtype(resolved), allow_download=allow_download
        )
        return cls(model, content, assets, index=index, precision=resolved)

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    def estimator(self, method: str) -> F0Estimator:
        """Return the f0 estimator of ``method``, built on first use."""
        from rvc.f0 import create_f0_estimator

        if method not in self._estimators:
            self._estimators[method] = create_f0_estimator(method, self.assets, device=str(self.model.device))
        return self._estimators[method]

    def window_config(self, options: ConvertOptions) -> WindowConfig:
        return options.windows or WindowConfig.rvc(half_precision=self.precision != "fp32")

    def render_window(
        self,
        segment: np.ndarray,
        window: Window,
        options: ConvertOptions,
        curve: np.ndarray | None = None,
    ) -> np.ndarray:
        """Convert one window's 16 kHz segment (context included): float32 [segment_frames * hop]."""
        from rvc.infer.pitch import estimate_f0, generator_pitch

        frames = window.segment_frames
        features, original = window_features(self.embedder, segment, frames, self.index, options.index_rate)
        estimate = estimate_f0(self.estimator(options.f0_method), segment, frames)
        first_frame = (window.start - window.pad) // HOP
        coarse, f0 = generator_pitch(estimate, options.pitch, curve, first_frame)
        features = protect_features(features, original, f0, options.protect)
        return synthesize(self.model, features, coarse, f0, self.precision)

    def convert(
        self,
        audio: np.ndarray,
        sample_rate: int,
        options: ConvertOptions,
        on_window: Callable[[int, int], None] | None = None,
    ) -> Conversion:
        """Convert a clip (float [N] or [C x N] at ``sample_rate``) to this voice.

        on_window : called with (windows done, windows in all) as the conversion goes.
        """
        from rvc.audio import resample
        from rvc.infer.envelope import mix_rms
        from rvc.infer.pitch import read_f0_file

        options.check()
        started = time.perf_counter()
        audio16 = prepare_input(audio, sample_rate, options.highpass)
        if len(audio16) == 0:
            raise UserError("the input holds no audio samples")
        curve = read_f0_file(options.f0_file) if options.f0_file is not None else None

        def render(segment: np.ndarray, window: Window) -> np.ndarray:
            return self.render_window(segment, window, options, curve)

        with _seeded(options.seed, self.model.device):
            out, windows = run_windowed(audio16, self.window_config(options), render, self.model.hop_length, on_window)
        out = mix_rms(audio16, SAMPLE_RATE, out, self.sample_rate, options.rms_mix)
        rate = self.sample_rate
        if options.output_rate is not None and options.output_rate != rate:
            out, rate = resample(out, rate, options.output_rate), options.output_rate
        peak = float(np.max(np.abs(out))) if out.size else 0.0
        if peak > OUTPUT_PEAK:
            out = out * (OUTPUT_PEAK / peak)
        return Conversion(
            audio=np.ascontiguousarray(out, dtype=np.float32),
            sample_rate=rate,
            windows=tuple(windows),
            input_seconds=len(audio16) / SAMPLE_RATE,
            seconds=time.perf_counter() - started,
        )

    def convert_file(
        self,
        source: str | Path,
        target: str | Path,
        options: ConvertOptions,
        on_window: Callable[[int, int], None] | None = None,
    ) -> Conversion:
        """Convert an audio file (any format rvc.audio reads) and write a 16-bit WAV atomically.

        Raises UserError for an unreadable input, naming it and why.
        """
        from rvc.audio import AudioReadError, load_audio, too_loud, write_wav

        source, target = Path(source), Path(target)
        try:
            audio, rate = load_audio(source, mono=True)
        except AudioReadError as exc:
            raise UserError(f"{source}: {exc.reason}") from exc
        if audio.size == 0:
            raise UserError(f"{source}: empty (no samples): export it again from the program that made it")
        broken = int(audio.size - np.count_nonzero(np.isfinite(audio)))
        if broken:  # a float file's NaN would come out as a converted clip of noise or silence, said to be done
            raise UserError(
                f"{source}: {broken} of its {audio.size} samples are not numbers (NaN or infinite): the file is "
                "damaged; export it again from the program that made it"
            )
        if (loud := too_loud(audio)) is not None:  # HuBERT and the pitch of 1e30 are noise, said to be done
            raise UserError(f"{source}: {loud}")
        conversion = self.convert(audio, rate, options, on_window)
        make_folder(target.parent)
        write_wav(target, conversion.audio, conversion.sample_rate, subtype="PCM_16")
        return conversion

"""``python -m rvc prepare``: a folder of recordings (and links) to training clips.

Only argparse and the options dataclass at import time: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rvc.data.options import CUT_MODES, NORMALIZE_MODES, SAMPLE_RATES, WAV_FORMATS, PrepareOptions, parse_validation
from rvc.data.slicer import SlicerParams
from rvc.errors import UserError
from rvc.experiment import Workspace

HELP = "slice a folder of recordings into training clips (target rate + 16 kHz), with a validation split"

_DEFAULTS = PrepareOptions()
_SLICER = SlicerParams()


def _validation(text: str) -> object:
    try:
        return parse_validation(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment name (a folder in the logs dir)")
    source = parser.add_argument_group("input")
    source.add_argument(
        "--input", nargs="+", type=Path, default=[], metavar="DIR", help="folder(s) of recordings, read recursively"
    )
    source.add_argument(
        "--url", nargs="+", default=[], metavar="URL", help="links to fetch with yt-dlp (needs `pip install yt-dlp`)"
    )

    audio = parser.add_argument_group("audio")
    audio.add_argument(
        "--sample-rate", type=int, choices=SAMPLE_RATES, default=_DEFAULTS.sample_rate, help="training rate"
    )
    audio.add_argument(
        "--highpass",
        action=argparse.BooleanOptionalAction,
        default=_DEFAULTS.highpass,
        help="RVC's 48 Hz high-pass (5th-order Butterworth): removes DC and rumble",
    )
    audio.add_argument(
        "--normalize",
        choices=NORMALIZE_MODES,
        default=_DEFAULTS.normalize,
        help="pre: peak-normalise each file; post: RVC's per-clip blend (peak 0.9, alpha 0.75)",
    )
    audio.add_argument(
        "--denoise",
        action=argparse.BooleanOptionalAction,
        default=_DEFAULTS.denoise,
        help="spectral gating of stationary noise (GPU when there is one)",
    )
    audio.add_argument(
        "--denoise-strength",
        metavar="X",
        type=float,
        default=_DEFAULTS.denoise_strength,
        help="0..1: how much gated noise to remove",
    )
    audio.add_argument(
        "--device",
        metavar="DEVICE",
        default=_DEFAULTS.device,
        help="for --denoise and Whisper: auto, cuda, cuda:N or cpu",
    )
    audio.add_argument(
        "--trim-silence",
        action=argparse.BooleanOptionalAction,
        default=_DEFAULTS.trim_silence,
        help="shorten silences longer than --max-silence-kept inside recordings",
    )
    audio.add_argument(
        "--wav-format", choices=tuple(WAV_FORMATS), default=_DEFAULTS.wav_format, help="sample format of the clips"
    )

    cut = parser.add_argument_group("slicing")
    cut.add_argument(
        "--cut",
        choices=CUT_MODES,
        default=_DEFAULTS.cut,
        help="automatic: silence slicer then chunks; simple: fixed chunks; none: whole files (pre-cut datasets)",
    )
    cut.add_argument("--chunk", metavar="S", type=float, default=_DEFAULTS.chunk, help="longest clip, seconds")
    cut.add_argument(
        "--overlap", metavar="S", type=float, default=_DEFAULTS.overlap, help="overlap of neighbouring chunks, seconds"
    )
    cut.add_argument(
        "--threshold", metavar="DB", type=float, default=_SLICER.threshold_db, help="silence below this level, dBFS"
    )
    cut.add_argument(
        "--min-length", metavar="S", type=float, default=_SLICER.min_length, help="shortest slice the slicer cuts, s"
    )
    cut.add_argument(
        "--min-interval",
        metavar="S",
        type=float,
        default=_SLICER.min_interval,
        help="shortest silence that is a cut point, s",
    )
    cut.add_argument("--hop", metavar="S", type=float, default=_SLICER.hop, help="slicer frame hop, s")
    cut.add_argument(
        "--max-silence-kept",
        metavar="S",
        type=float,
        default=_SLICER.max_silence_kept,
        help="silence kept around cuts, s",
    )
    cut.add_argument(
        "--min-clip", metavar="S", type=float, default=_DEFAULTS.min_clip, help="shorter clips are dropped, s"
    )

    split = parser.add_argument_group("validation split")
    split.add_argument(
        "--validation",
        metavar="N|F|auto",
        type=_validation,
        default=_DEFAULTS.validation,
        help="held-out clips: a count (10), a fraction (0.05), 0 for none, or auto (5%% from 10 clips up)",
    )
    split.add_argument(
        "--validation-min-seconds",
        metavar="S",
        type=float,
        default=_DEFAULTS.validation_min_seconds,
        help="clips shorter than this (or than --min-clip) go to validation instead of being dropped (0 = off)",
    )

    whisper = parser.add_argument_group("whisper (optional)")
    whisper.add_argument("--transcribe", action="store_true", help="transcribe with openai-whisper")
    whisper.add_argument(
        "--whisper-model", metavar="NAME", default="base", help="model name (tiny, base, small, ...) or a .pt path"
    )
    whisper.add_argument("--language", metavar="CODE", default=None, help="language code, e.g. en (none: detect it)")
    whisper.add_argument("--retranscribe", action="store_true", help="transcribe again files already in whisper.json")
    whisper.add_argument(
        "--slice-by-whisper", action="store_true", help="cut at Whisper's segments instead of at silences"
    )
    whisper.add_argument(
        "--slice-start-offset", metavar="S", type=float, default=0.0, help="seconds added to each segment start"
    )
    whisper.add_argument(
        "--slice-end-offset", metavar="S", type=float, default=0.0, help="seconds added to each segment end"
    )

    run_group = parser.add_argument_group("performance")
    run_group.add_argument(
        "--workers", metavar="N", type=int, default=_DEFAULTS.workers, help="processes (0 = one per core)"
    )
    run_group.add_argument("--no-progress", action="store_true", help="no progress bar")


def options_from_args(args: argparse.Namespace) -> PrepareOptions:
    """Return the PrepareOptions that the parsed flags describe."""
    return PrepareOptions(
        sample_rate=args.sample_rate,
        cut=args.cut,
        chunk=args.chunk,
        overlap=args.overlap,
        slicer=SlicerParams(
            threshold_db=args.threshold,
            min_length=args.min_length,
            min_interval=args.min_interval,
            hop=args.hop,
            max_silence_kept=args.max_silence_kept,
        ),
        min_clip=args.min_clip,
        highpass=args.highpass,
        normalize=args.normalize,
        denoise=args.denoise,
        denoise_strength=args.denoise_strength,
        device=args.device,
        trim_silence=args.trim_silence,
        wav_format=args.wav_format,
        validation=args.validation,
        validation_min_seconds=args.validation_min_seconds,
        workers=args.workers,
    )


def run(args: argparse.Namespace, workspace: Workspace) -> int:
    experiment = workspace.experiment(args.experiment)  # refuses unsafe names before anything is touched
    options = options_from_args(args)
    options.check()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    whisper = None
    if args.transcribe:
        try:
            from rvc.data.transcribe import WhisperOptions
        except ImportError as error:
            raise UserError(f"--transcribe needs openai-whisper ({error}): pip install openai-whisper") from None

        whisper = WhisperOptions(
            model=args.whisper_model,
            language=args.language,
            retranscribe=args.retranscribe,
            device=args.device,
            slice_start_offset=args.slice_start_offset,
            slice_end_offset=args.slice_end_offset,
        )
    elif args.slice_by_whisper:
        raise UserError("--slice-by-whisper needs --transcribe")
    from rvc.data.prepare import prepare

    result = prepare(
        experiment,
        args.input,
        options,
        urls=args.url,
        whisper=whisper,
        slice_by_whisper=args.slice_by_whisper,
        assets=workspace.assets,
        progress=not args.no_progress,
    )
    print(result.summary)
    return 0

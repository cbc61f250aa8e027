"""``python -m rvc infer``: convert a recording, or a folder of them, with an exported voice model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.experiment import Workspace
from rvc.experiment.names import INDEX_SUFFIX

if TYPE_CHECKING:
    from rvc.infer.pipeline import ConvertOptions, VoiceConverter

HELP = "convert a recording (or a folder of them) with an exported RVC v2 model (.pth) and optional index"

# Kept here rather than imported so that --help does not import the f0 package's dependencies.
F0_CHOICES = ("rmvpe", "crepe", "crepe-tiny", "fcpe", "harvest", "dio", "pm")
EMBEDDER_HELP = "contentvec, hubert_base, chinese_hubert_base, japanese_hubert_base, korean_hubert_base, or a path"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, required=True, help="exported model (.pth): ours, the RVC WebUI's or Applio's"
    )
    parser.add_argument("--index", type=Path, default=None, help=f"FAISS index ({INDEX_SUFFIX}) built for the model")
    parser.add_argument("--input", type=Path, required=True, help="audio file, or a folder of them (batch mode)")
    parser.add_argument("--output", type=Path, required=True, help="WAV file, or a folder (needed for a folder input)")
    parser.add_argument("--f0", dest="f0_method", default="rmvpe", choices=F0_CHOICES, help="pitch method")
    parser.add_argument(
        "--embedder", default=None, help=f"content encoder ({EMBEDDER_HELP}); unset: the one the model records"
    )
    parser.add_argument("--pitch", type=float, default=0.0, help="pitch shift in semitones (12 = one octave up)")
    parser.add_argument(
        "--index-rate", type=float, default=0.75, help="share of retrieved training features, 0..1 (with --index)"
    )
    parser.add_argument(
        "--protect", type=float, default=0.33, help="keep voiceless consonants and breaths: 0..0.5, lower keeps more"
    )
    parser.add_argument(
        "--rms-mix", type=float, default=1.0, help="share of the output's own loudness envelope, 0..1 (0: the input's)"
    )
    parser.add_argument(
        "--f0-file", type=Path, default=None, help="file of 'seconds,Hz' lines that replace the estimated pitch"
    )
    parser.add_argument("--output-rate", type=int, default=None, help="resample the result to this rate (Hz)")
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"), help="GPU precision (CPU: fp32)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed the generator's noise for a repeatable result")


def options_from_args(args: argparse.Namespace) -> ConvertOptions:
    """Return the conversion settings the arguments give, checked."""
    from rvc.infer.pipeline import ConvertOptions

    options = ConvertOptions(
        f0_method=args.f0_method,
        pitch=args.pitch,
        index_rate=args.index_rate,
        protect=args.protect,
        rms_mix=args.rms_mix,
        f0_file=args.f0_file,
        output_rate=args.output_rate,
        seed=args.seed,
    )
    options.check()
    return options


def _single_target(source: Path, output: Path) -> Path:
    from rvc.errors import UserError

    if output.is_dir() or str(output).endswith(("/", "\\")):
        return output / f"{source.stem}.wav"
    if output.suffix.lower() != ".wav":
        raise UserError(f"--output {output}: write a .wav file (or give a folder)")
    return output


def _convert_one(converter: VoiceConverter, source: Path, output: Path, options: ConvertOptions) -> int:
    from tqdm import tqdm

    target = _single_target(source, output)
    with tqdm(desc=source.name, unit="window", file=sys.stderr, disable=None, leave=False) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        conversion = converter.convert_file(source, target, options, on_window=progress)
    speed = conversion.input_seconds / max(conversion.seconds, 1e-9)
    print(
        f"{target}: {conversion.input_seconds:.1f} s at {conversion.sample_rate} Hz, "
        f"{len(conversion.windows)} window(s), converted in {conversion.seconds:.1f} s ({speed:.1f}x real time)"
    )
    return 0


def _convert_folder(converter: VoiceConverter, source: Path, output: Path, options: ConvertOptions) -> int:
    from tqdm import tqdm

    from rvc.infer.batch import BatchItem, convert_folder, plan_batch

    total = len(plan_batch(source, output))  # fails early, before any work, on an empty or clashing folder
    with tqdm(total=total, desc="converting", unit="file", file=sys.stderr, disable=None) as bar:

        def progress(done: int, count: int, item: BatchItem) -> None:
            bar.update(1)
            if item.error is not None:
                bar.write(f"failed: {item.error}", file=sys.stderr)

        report = convert_folder(converter, source, output, options, on_file=progress)
    seconds = sum(item.input_seconds for item in report.converted)
    print(
        f"{output}: {len(report.converted)} of {len(report.items)} file(s) converted ({seconds:.1f} s of audio)"
        + (f", {len(report.failed)} failed" if report.failed else "")
    )
    return 0 if not report.failed else 1


def run(args: argparse.Namespace, workspace: Workspace) -> int:
    from rvc.errors import UserError
    from rvc.infer.pipeline import VoiceConverter

    options = options_from_args(args)  # settings first: a typo must not wait for the model to load
    source: Path = args.input
    if not source.exists():
        raise UserError(f"--input {source}: no such file or folder")
    if source.is_dir() and args.output.is_file():
        raise UserError(f"--output {args.output} is a file; a folder input needs an output folder")
    converter = VoiceConverter.load(
        args.model,
        workspace.assets,
        # RVC skips the index at rate 0 too: nothing of it would be used
        index_path=args.index if options.index_rate > 0 else None,
        embedder=args.embedder,
        device=args.device,
        precision=args.precision,
    )
    if source.is_dir():
        return _convert_folder(converter, source, args.output, options)
    return _convert_one(converter, source, args.output, options)

"""``python -m rvc infer``: convert a recording, or a folder of them, with an exported voice model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.choices import INFERENCE_PRECISIONS
from rvc.experiment import Workspace
from rvc.experiment.names import INDEX_SUFFIX
from rvc.infer.options import ConvertOptions
from rvc.jobs.reporter import Bar, Reporter
from rvc.settings import add_flags, from_args

if TYPE_CHECKING:
    from rvc.infer.pipeline import VoiceConverter

PROGRESS = True  # a bar with an ETA, or --json-progress (rvc.cli.progress)

HELP = "convert a recording (or a folder of them) with an exported RVC v2 model (.pth) and optional index"

EMBEDDER_HELP = "contentvec, hubert_base, chinese_hubert_base, japanese_hubert_base, korean_hubert_base, or a path"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, required=True, help="exported model (.pth): ours, the RVC WebUI's or Applio's"
    )
    parser.add_argument("--index", type=Path, default=None, help=f"FAISS index ({INDEX_SUFFIX}) built for the model")
    parser.add_argument("--input", type=Path, required=True, help="audio file, or a folder of them (batch mode)")
    parser.add_argument("--output", type=Path, required=True, help="WAV file, or a folder (needed for a folder input)")
    add_flags(parser, ConvertOptions)
    parser.add_argument(
        "--embedder", default=None, help=f"content encoder ({EMBEDDER_HELP}); unset: the one the model records"
    )
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--precision", default="auto", choices=INFERENCE_PRECISIONS, help="GPU precision (CPU: fp32)")


def options_from_args(args: argparse.Namespace) -> ConvertOptions:
    """Return the conversion settings the arguments give, checked."""
    options = from_args(ConvertOptions, args)
    options.check()
    return options


def _single_target(source: Path, output: Path) -> Path:
    from rvc.errors import UserError

    if output.is_dir() or str(output).endswith(("/", "\\")):
        target = output / f"{source.stem}.wav"
    elif output.suffix.lower() != ".wav":
        raise UserError(f"--output {output}: write a .wav file (or give a folder)")
    else:
        target = output
    if target.resolve() == source.resolve():
        raise UserError(
            f"--output {target} is the recording being converted: it would be overwritten; "
            f"give another name, e.g. --output {target.with_name(f'{source.stem}-converted.wav')}"
        )
    return target


def _convert_one(
    converter: VoiceConverter, source: Path, output: Path, options: ConvertOptions, reporter: Reporter
) -> int:
    target = _single_target(source, output)
    bar: Bar | None = None
    shown = 0

    def progress(done: int, total: int) -> None:
        nonlocal bar, shown
        if bar is None:  # the window count is known once the recording is read
            bar = reporter.bar(f"converting {source.name}", total, "window")
        bar.update(done - shown)
        shown = done

    try:
        conversion = converter.convert_file(source, target, options, on_window=progress)
    finally:
        if bar is not None:
            bar.close()
    speed = conversion.input_seconds / max(conversion.seconds, 1e-9)
    reporter.result(
        f"{target}: {conversion.input_seconds:.1f} s at {conversion.sample_rate} Hz, "
        f"{len(conversion.windows)} window(s), converted in {conversion.seconds:.1f} s ({speed:.1f}x real time)"
    )
    return 0


def _convert_folder(
    converter: VoiceConverter, source: Path, output: Path, options: ConvertOptions, reporter: Reporter
) -> int:
    from rvc.infer.batch import BatchItem, convert_folder, plan_batch

    total = len(plan_batch(source, output))  # fails early, before any work, on an empty or clashing folder
    bar = reporter.bar("converting", total, "file")

    def progress(done: int, count: int, item: BatchItem) -> None:
        bar.update(1)
        if item.error is not None:
            reporter.log(f"failed: {item.error}")

    try:
        report = convert_folder(converter, source, output, options, on_file=progress)
    finally:
        bar.close()
    seconds = sum(item.input_seconds for item in report.converted)
    reporter.result(
        f"{output}: {len(report.converted)} of {len(report.items)} file(s) converted ({seconds:.1f} s of audio)"
        + (f", {len(report.failed)} failed" if report.failed else "")
    )
    return 0 if not report.failed else 1


def run(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    from rvc.errors import UserError
    from rvc.infer.pipeline import VoiceConverter

    options = options_from_args(args)  # settings first: a typo must not wait for the model to load
    if options.f0_file is not None:
        from rvc.infer.pitch import read_f0_file

        read_f0_file(options.f0_file)  # as the settings: a bad line is said before the model and encoder load
    source: Path = args.input
    if not source.exists():
        from rvc.fileio import why_not_a_file

        raise UserError(f"--input {source} {why_not_a_file(source)}: give a recording, or a folder of them")
    if source.is_dir() and args.output.is_file():
        raise UserError(f"--output {args.output} is a file; a folder input needs an output folder")
    if source.is_file():
        _single_target(source, args.output)  # refused before the model loads
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
        return _convert_folder(converter, source, args.output, options, reporter)
    return _convert_one(converter, source, args.output, options, reporter)

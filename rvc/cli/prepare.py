"""``python -m rvc prepare``: a folder of recordings (and links) to training clips.

Only argparse and the options dataclass at import time: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path

from rvc.data.options import PrepareOptions
from rvc.data.whisper_options import GROUP as WHISPER_GROUP
from rvc.data.whisper_options import WhisperOptions
from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.jobs.reporter import Reporter
from rvc.settings import add_flags, argument_group, from_args

HELP = "slice a folder of recordings into training clips (target rate + 16 kHz), with a validation split"
PROGRESS = True  # a bar with an ETA, or --json-progress (rvc.cli.progress)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment name (a folder in the logs dir)")
    source = parser.add_argument_group("input")
    source.add_argument(
        "--input", nargs="+", type=Path, default=[], metavar="DIR", help="folder(s) of recordings, read recursively"
    )
    source.add_argument(
        "--url",
        nargs="+",
        type=_link,
        default=[],
        metavar="URL",
        help="links to fetch with yt-dlp (needs `pip install yt-dlp`)",
    )
    add_flags(parser, PrepareOptions)  # the audio, slicing, validation split and performance groups

    argument_group(parser, WHISPER_GROUP).add_argument(
        "--transcribe", action="store_true", help="transcribe with openai-whisper (pip install openai-whisper)"
    )
    add_flags(parser, WhisperOptions)
    argument_group(parser, "performance").add_argument("--no-progress", action="store_true", help="no progress bar")


def _link(text: str) -> str:
    from rvc.data.download import check_link
    from rvc.errors import UserError

    try:
        return check_link(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def options_from_args(args: argparse.Namespace) -> PrepareOptions:
    """Return the PrepareOptions that the parsed flags describe."""
    return from_args(PrepareOptions, args)


def run(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    experiment = workspace.experiment(args.experiment)  # refuses unsafe names before anything is touched
    options = options_from_args(args)
    options.check()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    whisper = from_args(WhisperOptions, args) if args.transcribe else None  # its device: --device
    if whisper is not None and importlib.util.find_spec("whisper") is None:
        raise UserError("--transcribe needs openai-whisper: pip install openai-whisper")
    if whisper is None and args.slice_by_whisper:
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
        reporter=reporter,
    )
    reporter.result(result.summary)
    return 0

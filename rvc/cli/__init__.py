"""The command line: one module per stage, each imported only when its command runs.

A stage module exposes ``HELP`` (one line), ``add_arguments(parser)`` (argparse
only, cheap to import) and ``run(args, workspace) -> int`` (does the work; heavy
imports live inside it). A stage with ``PROGRESS = True`` takes a reporter as well,
``run(args, workspace, reporter)``, and gets ``--json-progress`` (``rvc.cli.progress``); a stage
with actions (``pretrained list|download|add``) sets ``PROGRESS_PER_ACTION`` and gives each
action the flags itself, so they follow the action as they follow any other stage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from rvc.errors import UserError, path_problem
from rvc.experiment import Workspace
from rvc.settings import cli_message

# stage name -> module; order is the order of ``--help``.
STAGES: dict[str, str] = {
    "prepare": "rvc.cli.prepare",
    "extract": "rvc.cli.extract",
    "config": "rvc.cli.config",
    "train": "rvc.cli.train",
    "index": "rvc.cli.index",
    "export": "rvc.cli.export",
    "blend": "rvc.cli.blend",
    "publish": "rvc.cli.publish",
    "pretrained": "rvc.cli.pretrained",
    "infer": "rvc.cli.infer",
    "run": "rvc.cli.run",
}


# Stages that change an experiment's files: never while that experiment trains.
CHANGE_EXPERIMENT = ("prepare", "extract", "config", "index", "export")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the description's line breaks."""


def _stage_module(name: str) -> ModuleType:
    return importlib.import_module(STAGES[name])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rvc",
        description="RVC Studio: from a folder of recordings to an RVC v2 voice model.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--logs-dir", type=Path, default=Path("logs"), help="folder holding one folder per experiment")
    parser.add_argument(
        "--assets-dir", type=Path, default=Path("assets"), help="folder of downloaded weights and catalogues"
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (for bug reports)")
    stages = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name in STAGES:
        module = _stage_module(name)
        sub = stages.add_parser(name, help=module.HELP, description=module.HELP, formatter_class=HelpFormatter)
        module.add_arguments(sub)
        if getattr(module, "PROGRESS", False) and not getattr(module, "PROGRESS_PER_ACTION", False):
            from rvc.cli.progress import add_progress_arguments

            add_progress_arguments(sub)
    return parser


def _refusing_while_training(run: Callable[..., int], stage: str) -> Callable[..., int]:
    """Return ``run`` refusing to start while the experiment it changes trains (rvc.experiment.lock)."""

    def refusing(args: argparse.Namespace, workspace: Workspace, *rest: object) -> int:
        from rvc.experiment.lock import refuse_while_training

        refuse_while_training(workspace.experiment(args.experiment), stage)
        return run(args, workspace, *rest)

    return refusing


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the chosen stage and return its exit status."""
    args = build_parser().parse_args(argv)
    module = _stage_module(args.stage)
    run = _refusing_while_training(module.run, args.stage) if args.stage in CHANGE_EXPERIMENT else module.run
    try:
        workspace = Workspace(logs_dir=args.logs_dir.resolve(), assets_dir=args.assets_dir.resolve())
        if getattr(module, "PROGRESS", False):
            from rvc.cli.progress import run_stage

            return run_stage(run, args.stage, args, workspace)
        return int(run(args, workspace))
    except UserError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {cli_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: one line for the user, the traceback when asked
        if args.debug:
            raise
        if (problem := path_problem(error)) is not None:  # a path given or chosen that the system refuses
            print(f"error: {problem}", file=sys.stderr)
            return 2
        print(
            f"error: {args.stage} failed unexpectedly ({type(error).__name__}: {error}); "
            "run the same command with --debug after `python -m rvc` to see where, and report it",
            file=sys.stderr,
        )
        return 1

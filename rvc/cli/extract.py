"""``python -m rvc extract``: pitch and content features for the prepared clips."""

from __future__ import annotations

import argparse

from rvc.experiment import Workspace
from rvc.features.extract import ExtractOptions
from rvc.jobs.reporter import Reporter
from rvc.settings import add_flags, from_args

HELP = "extract f0 (pitch) and content features from the prepared clips"
PROGRESS = True  # a bar with an ETA, or --json-progress (rvc.cli.progress)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment name (a folder in the logs dir)")
    add_flags(parser, ExtractOptions)


def run(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    from rvc.features.extract import extract_features

    options = from_args(ExtractOptions, args)
    options.check()
    experiment = workspace.experiment(args.experiment)
    report = extract_features(experiment, workspace.assets, options, log=reporter.log, reporter=reporter)
    failed = f", {len(report.failed)} failed (listed in the report)" if report.failed else ""
    reporter.result(
        f"features ready: f0 computed for {report.f0_computed}, content for {report.content_computed}, "
        f"{report.cached} cached{failed}"
    )
    failed_clips = report.failed_clips()
    return 1 if report.clip_count and len(failed_clips) == report.clip_count else 0  # not one clip is ready

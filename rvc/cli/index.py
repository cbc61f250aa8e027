"""``python -m rvc index``: the FAISS retrieval index of an experiment's training features."""

from __future__ import annotations

import argparse
from pathlib import Path

from rvc.experiment import Workspace
from rvc.experiment.names import INDEX_SUFFIX
from rvc.fileio import replaceable
from rvc.jobs.reporter import Reporter

HELP = f"build the FAISS retrieval index (NAME{INDEX_SUFFIX}) from the training clips' content features"
PROGRESS = True  # a bar with an ETA, or --json-progress (rvc.cli.progress)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment name (a folder in the logs dir)")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"index file to write; unset: logs/NAME/NAME{INDEX_SUFFIX}"
    )


def run(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    from rvc.index import build_index

    out = replaceable(args.out, INDEX_SUFFIX, "an index") if args.out is not None else None
    experiment = workspace.experiment(args.experiment)
    report = build_index(experiment, out=out, log=reporter.log, reporter=reporter)
    kind = f"k-means centres of {report.vectors} vectors" if report.kmeans else "vectors"
    reporter.result(
        f"{report.path}: IVF{report.n_lists},Flat, {report.indexed} {kind} from {report.clips} clips "
        f"({len(report.skipped)} skipped), {report.seconds:.1f} s"
    )
    return 0

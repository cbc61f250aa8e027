"""``python -m rvc publish``: upload a finished model, its index, its ONNX graph and a model card to the Hub."""

from __future__ import annotations

import argparse

from rvc.experiment import Workspace
from rvc.experiment.names import INDEX_SUFFIX, MODEL_SUFFIX, ONNX_SUFFIX
from rvc.jobs.reporter import Reporter

HELP = (
    f"upload NAME{MODEL_SUFFIX}, NAME{INDEX_SUFFIX}, NAME{ONNX_SUFFIX} (if exported) and a model card to a "
    "Hugging Face repository"
)
PROGRESS = True  # the web app runs it as a job: an upload of a few hundred MB takes minutes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment name (a folder in the logs dir)")
    parser.add_argument("--repo", required=True, help="the Hugging Face repository, USER/NAME (created if new)")
    parser.add_argument("--private", action="store_true", help="create the repository private (a new one only)")
    parser.add_argument(
        "--with-sample",
        action="store_true",
        help="add a short sample to the card: the model resynthesising a held-out clip of the dataset "
        "(that is the voice of the person recorded: add it only with their consent)",
    )
    parser.add_argument("--without-index", action="store_true", help="publish without the FAISS index")


def run(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    from rvc.publish import publish

    experiment = workspace.experiment(args.experiment)
    done = publish(
        workspace,
        experiment,
        args.repo,
        reporter,
        private=args.private,
        with_sample=args.with_sample,
        without_index=args.without_index,
    )
    reporter.result(f"{done.url}: published {', '.join(done.files)}")
    return 0

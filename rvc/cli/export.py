"""``python -m rvc export``: write a trained generator as an RVC v2 voice model (.pth)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rvc.experiment import Workspace, names
from rvc.jobs.reporter import Reporter

HELP = "export a generator checkpoint as an RVC v2 model (.pth) for the RVC WebUI, Applio and voice changers"
PROGRESS = True  # --json-progress: its log and end as @@rvc lines (rvc.cli.progress)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment name (a folder in the logs dir)")
    parser.add_argument(
        "--checkpoint",
        default="latest",
        help=f"latest, best, {names.generator_file('<step>')} (in logs/NAME/{names.CHECKPOINTS_DIR}) or a file path",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="file to write; unset: logs/NAME/NAME.pth, or NAME_best.pth for best"
    )
    parser.add_argument("--name", default=None, help="model name stored in the file; unset: the experiment name")
    parser.add_argument("--author", default=None, help="author stored in the file (Applio shows it)")


def run(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    from rvc.export import export_experiment, read_exported

    experiment = workspace.experiment(args.experiment)
    extra = {key: value for key, value in (("name", args.name), ("author", args.author)) if value is not None}
    bar = reporter.bar("export", 2, "step")  # write, then read back
    path = export_experiment(experiment, checkpoint=args.checkpoint, out=args.out, extra_metadata=extra)
    bar.update()
    model = read_exported(path)  # what other tools will load: check it reads back
    bar.update()
    bar.close()
    info, step = model.metadata.get("info"), model.metadata.get("step")
    reporter.result(f"{path}: {model.config.sample_rate_tag} v2 model, {info}, step {step}")
    return 0

"""``python -m rvc train``: run the trainer in this process (the web UI starts ``python -m rvc.train``)."""

from __future__ import annotations

import argparse

from rvc.experiment import Workspace

HELP = "train the experiment's model (set it up first with `config`); Ctrl-C saves and stops"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rvc.train.__main__ import add_arguments as trainer_arguments

    trainer_arguments(parser)


def run(args: argparse.Namespace, workspace: Workspace) -> int:
    from rvc.train.__main__ import run_trainer

    return run_trainer(workspace, args.experiment, args.device)

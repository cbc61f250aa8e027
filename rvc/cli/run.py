"""``python -m rvc run``: the one-click pipeline, prepare -> extract -> config -> train -> index -> export."""

from __future__ import annotations

import argparse

from rvc.choices import SAMPLE_RATES
from rvc.experiment import Workspace

HELP = "one click: prepare, extract, configure (defaults sized to the data and GPU), train, index and export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment name")
    parser.add_argument("--input", required=True, help="folder of recordings")
    parser.add_argument("--sample-rate", type=int, default=40000, choices=SAMPLE_RATES, help="model rate")
    parser.add_argument("--f0", default="rmvpe", help="pitch method (see `extract --help`)")
    parser.add_argument("--embedder", default="contentvec", help="content encoder name or path")
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--epochs", type=int, default=None, help="default: the config stage's")
    parser.add_argument("--batch-size", type=int, default=None, help="default: sized to the data and GPU memory")
    parser.add_argument("--pretrained-g", default=None, help="pretrained generator (.pth)")
    parser.add_argument("--pretrained-d", default=None, help="pretrained discriminator (.pth)")
    parser.add_argument("--auto-stop", default="true", help="stop when held-out loss stops improving")
    parser.add_argument("--tiny-model", action="store_true", help=argparse.SUPPRESS)  # tests and debug runs


def run(args: argparse.Namespace, workspace: Workspace) -> int:
    from rvc.cli import main

    common = ["--logs-dir", str(workspace.logs_dir), "--assets-dir", str(workspace.assets_dir)]
    name = ["--experiment", args.experiment]
    config = [*name, "--auto-stop", args.auto_stop]
    for flag, value in (
        ("--epochs", args.epochs),
        ("--batch-size", args.batch_size),
        ("--pretrained-g", args.pretrained_g),
        ("--pretrained-d", args.pretrained_d),
    ):
        if value is not None:
            config += [flag, str(value)]
    if args.tiny_model:
        config.append("--tiny-model")
    stages = [
        ["prepare", *name, "--input", args.input, "--sample-rate", str(args.sample_rate)],
        ["extract", *name, "--f0", args.f0, "--embedder", args.embedder, "--device", args.device],
        ["config", *config],
        ["train", *name, "--device", args.device],
        ["index", *name],
    ]
    for stage in stages:
        print(f"== {stage[0]}", flush=True)
        code = main([*common, *stage])
        if code != 0:
            print(f"stopped: the {stage[0]} stage failed (exit {code}); fix it and run again (finished work is kept)")
            return code
    print(f"done: {workspace.experiment(args.experiment).root}")
    return 0

"""``python -m rvc config``: write or change ``logs/<exp>/config.json``."""

from __future__ import annotations

import argparse
import dataclasses

from rvc.experiment import Workspace
from rvc.settings import add_flags

HELP = "create or change an experiment's training configuration (only the options given change)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rvc.choices import SAMPLE_RATES
    from rvc.config.train import TrainConfig

    parser.add_argument("--experiment", required=True, help="experiment name (prepared and extracted)")
    parser.add_argument("--import-from", metavar="OTHER", help="start from another experiment's settings")
    parser.add_argument(
        "--sample-rate", type=int, choices=SAMPLE_RATES, help="model preset (default: the dataset's rate)"
    )
    parser.add_argument("--tiny-model", action="store_true", help=argparse.SUPPRESS)  # tests and debug runs
    add_flags(parser, TrainConfig, changes_only=True)  # absent flags leave the saved value alone


def run(args: argparse.Namespace, workspace: Workspace) -> int:
    from rvc.config.experiment import ExperimentConfig
    from rvc.config.setup import data_info, default_config
    from rvc.config.train import TrainConfig
    from rvc.config.validate import validate
    from rvc.errors import UserError
    from rvc.experiment.config_file import load_config, save_config
    from rvc.models.config import ModelConfig

    experiment = workspace.experiment(args.experiment)
    for name in [args.experiment, *([args.import_from] if args.import_from else [])]:
        # A misspelt name made an empty experiment holding only a config, listed everywhere after.
        if (gone := workspace.experiment(name).gone()) is not None:
            raise UserError(f"{gone}, or prepare it first (python -m rvc prepare --experiment {name} ...)")
    if args.import_from:
        config = load_config(workspace.experiment(args.import_from), check=False)
    elif experiment.config_json.exists():
        config = load_config(experiment, check=False)  # a value out of range is corrected here: checked below
    else:
        config = default_config(experiment)
    config.data = data_info(experiment, config.data)
    if args.sample_rate and args.sample_rate != config.model.sample_rate:
        config = ExperimentConfig(ModelConfig.for_sample_rate(args.sample_rate), config.train, config.data)
    if args.tiny_model:
        config = ExperimentConfig(ModelConfig.tiny(config.model.sample_rate), config.train, config.data)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    config.train = dataclasses.replace(config.train, **given)

    result = validate(config)
    for suggestion in result.suggestions:
        print(f"suggestion: {suggestion}")
    if result.auto_batch is not None:
        print(result.auto_batch)
    if result.memory_estimate_gib is not None:
        gpu = f" of {result.gpu_memory_gib:.1f} GiB" if result.gpu_memory_gib else ""
        print(
            f"estimated GPU memory: {result.memory_estimate_gib} GiB{gpu} at batch size {result.batch_size} "
            f"({result.memory_parts})"
        )
    if not result.ok:
        raise UserError("the configuration was not saved:\n  " + "\n  ".join(result.errors))
    save_config(experiment, config)
    changed = ", ".join(f"{k}={v}" for k, v in given.items()) or "defaults"
    print(f"saved {experiment.config_json} ({changed})")
    return 0

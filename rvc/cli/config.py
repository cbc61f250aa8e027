"""``python -m rvc config``: write or change ``logs/<exp>/config.json``."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from rvc.experiment import Workspace

HELP = "create or change an experiment's training configuration (only the options given change)"

# Value parsers for the fields whose type is not a plain int/float/str.
_BOOL_CHOICES = {
    "true": True,
    "on": True,
    "yes": True,
    "1": True,
    "false": False,
    "off": False,
    "no": False,
    "0": False,
}


def _bool(text: str) -> bool:
    if text.lower() not in _BOOL_CHOICES:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return _BOOL_CHOICES[text.lower()]


def _optional_float(text: str) -> float | None:
    return None if text.lower() in ("none", "off", "") else float(text)


def _optional_path(text: str) -> str | None:
    return None if text.lower() in ("none", "") else text


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.replace(",", " ").split()]


def _float_pair(text: str) -> tuple[float, float]:
    parts = [float(part) for part in text.replace(",", " ").split()]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError("expected two numbers, e.g. 0.8,0.99")
    return parts[0], parts[1]


_PARSERS: dict[str, Any] = {
    "bool": _bool,
    "int": int,
    "float": float,
    "str": str,
    "float | None": _optional_float,
    "str | None": _optional_path,
    "list[int]": _int_list,
    "tuple[float, float]": _float_pair,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rvc.config.train import DATA_PLACEMENTS, LR_SCHEMES, PRECISIONS, STEP_MODES, TrainConfig

    parser.add_argument("--experiment", required=True, help="experiment name (prepared and extracted)")
    parser.add_argument("--import-from", metavar="OTHER", help="start from another experiment's settings")
    parser.add_argument(
        "--sample-rate", type=int, choices=(32000, 40000, 48000), help="model preset (default: the dataset's rate)"
    )
    parser.add_argument("--tiny-model", action="store_true", help=argparse.SUPPRESS)  # tests and debug runs
    choices = {
        "lr_scheme": LR_SCHEMES,
        "precision": PRECISIONS,
        "step_mode": STEP_MODES,
        "data_placement": DATA_PLACEMENTS,
    }
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        parser.add_argument(
            flag,
            dest=field.name,
            type=_PARSERS[str(field.type)],
            choices=choices.get(field.name),
            default=argparse.SUPPRESS,  # absent flags leave the saved value alone
            metavar=field.name.upper() if field.name not in choices else None,
            help=f"{field.metadata.get('help', '')} (default: {default})",
        )


def run(args: argparse.Namespace, workspace: Workspace) -> int:
    from rvc.config.experiment import ExperimentConfig
    from rvc.config.setup import data_info, default_config
    from rvc.config.train import TrainConfig
    from rvc.config.validate import validate
    from rvc.errors import UserError
    from rvc.experiment.config_file import load_config, save_config
    from rvc.models.config import ModelConfig

    experiment = workspace.experiment(args.experiment)
    if args.import_from:
        config = load_config(workspace.experiment(args.import_from))
    elif experiment.config_json.exists():
        config = load_config(experiment)
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
    if result.memory_estimate_gib is not None:
        gpu = f" of {result.gpu_memory_gib:.1f} GiB" if result.gpu_memory_gib else ""
        print(f"estimated GPU memory: {result.memory_estimate_gib} GiB{gpu}")
    if not result.ok:
        raise UserError("the configuration was not saved:\n  " + "\n  ".join(result.errors))
    save_config(experiment, config)
    changed = ", ".join(f"{k}={v}" for k, v in given.items()) or "defaults"
    print(f"saved {experiment.config_json} ({changed})")
    return 0

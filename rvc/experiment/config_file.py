"""``config.json``: read and write an experiment's settings (``rvc.config.experiment.ExperimentConfig``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rvc.config.experiment import CONFIG_VERSION, DataInfo, ExperimentConfig
from rvc.config.train import TrainConfig
from rvc.errors import UserError
from rvc.experiment import records
from rvc.experiment.folder import Experiment
from rvc.fileio import atomic_write_json
from rvc.models.config import ModelConfig


def _configure_first(experiment: Experiment) -> str:
    return (
        f"run `python -m rvc config --experiment {experiment.name}` (or save the settings in Generate "
        "Configuration) first"
    )


def has_config(experiment: Experiment) -> bool:
    return experiment.config_json.is_file()


def load_config(experiment: Experiment, *, check: bool = True) -> ExperimentConfig:
    """Read the experiment's settings; UserError naming the file and the field when it is missing or damaged.

    Every way the file can be broken (not UTF-8, not JSON, not an object, a section missing, a value of
    the wrong type, a model shape that cannot be built) is refused here, by name. check : also refuse
    training values outside their range (``--batch-size 0``); ``config``, which is how such a value is
    corrected, reads without it and checks after applying its flags.
    """
    path = experiment.config_json
    data = records.read_object(path, _configure_first(experiment), _remedy(experiment))
    config = parse_config(data, path, _remedy(experiment))
    if check:
        problems = config.train.errors()
        if problems:
            raise UserError(
                f"{path} holds training settings outside their range: {'; '.join(problems)}; "
                f"change them with `python -m rvc config --experiment {experiment.name}` and the flags named"
            )
    return config


def parse_config(data: Mapping[str, Any], path: Path, remedy: str) -> ExperimentConfig:
    """Build the settings from ``config.json``'s object, refusing what does not fit with a UserError naming
    ``path`` and the field (``train.epochs: expected int``)."""
    if data.get("version") != CONFIG_VERSION:
        raise records.damaged(path, f"unsupported config version {data.get('version')!r}", remedy)
    if "model" not in data:
        raise records.damaged(path, "no 'model' section", remedy)
    sections: dict[str, Any] = {}
    for name, kind in (("model", ModelConfig), ("train", TrainConfig), ("data", DataInfo)):
        values = data.get(name, {})
        if not isinstance(values, Mapping):
            raise records.damaged(path, f"'{name}' must be an object of settings", remedy)
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(kind)})
        if unknown:
            raise records.damaged(path, f"unknown setting(s) {', '.join(f'{name}.{u}' for u in unknown)}", remedy)
        if name == "data":  # what the reports recorded: no setting's range check reads it
            records.refuse_non_finite(values, path, remedy, name)
        try:
            sections[name] = records.from_json(kind, values, path, remedy, where=f"{name}.")
        except UserError as error:
            if str(error).startswith(str(path)):
                raise
            raise records.damaged(path, f"'{name}': {error}", remedy) from None  # the model's own checks
    return ExperimentConfig(model=sections["model"], train=sections["train"], data=sections["data"])


def find_config(experiment: Experiment, *, check: bool = True) -> ExperimentConfig | None:
    """The settings, or None when none were saved (damaged settings still raise; ``check`` as load_config's)."""
    return load_config(experiment, check=check) if has_config(experiment) else None


def load_model_config(experiment: Experiment) -> ModelConfig:
    """Read only the model's shape (the "model" section): what an export of an older run needs."""
    path = experiment.config_json
    data = records.read_object(path, _configure_first(experiment), _remedy(experiment))
    if not isinstance(data.get("model"), dict):
        raise UserError(f"{path}: no model configuration (a 'model' section); {_configure_first(experiment)}")
    return parse_config({"version": CONFIG_VERSION, "model": data["model"]}, path, _remedy(experiment)).model


def save_config(experiment: Experiment, config: ExperimentConfig) -> None:
    experiment.ensure()
    atomic_write_json(experiment.config_json, config.to_dict())


def _remedy(experiment: Experiment) -> str:
    return (
        f"correct it, or delete it and save the settings again (`python -m rvc config --experiment "
        f"{experiment.name}`, or Generate Configuration)"
    )

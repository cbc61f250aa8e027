"""``config.json``: read and write an experiment's settings (``rvc.config.experiment.ExperimentConfig``)."""

from __future__ import annotations

from rvc.config.experiment import ExperimentConfig
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


def load_config(experiment: Experiment) -> ExperimentConfig:
    """Read the experiment's settings; UserError naming the file when it is missing or damaged."""
    path = experiment.config_json
    data = records.read_object(path, _configure_first(experiment), _remedy(experiment))
    try:
        return ExperimentConfig.from_dict(data, source=str(path))
    except (KeyError, TypeError, ValueError) as error:  # UserError (a named problem) passes through
        raise records.damaged(path, f"{type(error).__name__}: {error}", _remedy(experiment)) from None


def find_config(experiment: Experiment) -> ExperimentConfig | None:
    """The settings, or None when none were saved (damaged settings still raise)."""
    return load_config(experiment) if has_config(experiment) else None


def load_model_config(experiment: Experiment) -> ModelConfig:
    """Read only the model's shape (the "model" section): what an export of an older run needs."""
    path = experiment.config_json
    data = records.read_object(path, _configure_first(experiment), _remedy(experiment))
    if not isinstance(data.get("model"), dict):
        raise UserError(f"{path}: no model configuration (a 'model' section); {_configure_first(experiment)}")
    return ModelConfig.from_dict(data["model"], source=str(path))


def save_config(experiment: Experiment, config: ExperimentConfig) -> None:
    experiment.ensure()
    atomic_write_json(experiment.config_json, config.to_dict())


def _remedy(experiment: Experiment) -> str:
    return f"save the settings again (`python -m rvc config --experiment {experiment.name}`)"

"""What an exported model says of the experiment it came from: its content encoder, pitch method,
dataset length, best epoch and overtraining verdict, read from the experiment's records."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from rvc.errors import UserError
from rvc.experiment import Experiment
from rvc.experiment.config_file import find_config
from rvc.experiment.dataset import DatasetReport
from rvc.experiment.features import FeaturesReport

log = logging.getLogger(__name__)

_Report = TypeVar("_Report", DatasetReport, FeaturesReport)


def _courtesy(read: Callable[[Experiment], _Report | None], experiment: Experiment) -> tuple[_Report | None, bool]:
    """Return (the report or None, whether it was there but damaged)."""
    try:
        return read(experiment), False
    except UserError as error:  # metadata is a courtesy: a damaged report must not stop an export
        where = experiment.config_json.name
        log.warning("warning: %s; the model's metadata takes what it can from %s instead", error, where)
        return None, True


def experiment_metadata(experiment: Experiment) -> dict[str, Any]:
    """Collect export metadata from the experiment's reports: embedder, f0 method, duration, best epoch.

    Where a report is damaged, the values the settings recorded from it (config.json's "data") stand in:
    an export without its content encoder's name would be loaded with the wrong one.
    """
    from rvc.train.run_state import read_run

    features, features_damaged = _courtesy(FeaturesReport.find, experiment)
    dataset, dataset_damaged = _courtesy(DatasetReport.find, experiment)
    data = None
    if features_damaged or dataset_damaged:
        try:
            config = find_config(experiment, check=False)
            data = config.data if config is not None else None
        except UserError:
            data = None
    run = read_run(experiment.progress_jsonl)  # the last run's best epoch, not an earlier run's
    seconds = dataset.total_seconds if dataset else (features.audio_seconds if features else None)
    return {
        "name": experiment.name,
        "embedder": features.embedder if features else (data.embedder if data else None),
        "f0_method": features.f0_method if features else (data.f0_method if data else None),
        "dataset_seconds": seconds if seconds is not None else (data.seconds if data else None),
        "best_epoch": run.best_epoch,
        "overtrain": run.overtrain.payload() if run.overtrain else None,
    }

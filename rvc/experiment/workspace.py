"""``Workspace``: the logs and assets folders every command works from, and the one answer to
"which experiments exist and how far has each come"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rvc.errors import UserError
from rvc.experiment import lock
from rvc.experiment import names as n
from rvc.experiment.assets import AssetDir
from rvc.experiment.folder import Experiment

# How far an experiment has come, in the order the stages run.
Stage = Literal["new", "prepared", "extracted", "configured", "trained", "exported"]


@dataclass(frozen=True)
class ExperimentStatus:
    """What is on disk for one experiment (read in one pass, without loading any file)."""

    experiment: Experiment
    prepared: bool  # a dataset report
    extracted: bool  # a features report
    configured: bool  # saved settings
    has_run: bool  # training events: a run started here at least once
    trained: bool  # at least one generator checkpoint
    training: bool  # a trainer holds the lock now
    exported: bool  # NAME.pth or NAME_best.pth
    indexed: bool  # a FAISS index
    modified: float  # the newest change of the folder, its settings or its events (seconds since the epoch)

    @property
    def name(self) -> str:
        return self.experiment.name

    @property
    def stage(self) -> Stage:
        """The furthest stage reached (a run in progress is ``trained`` once it has saved, with ``training``)."""
        for reached, stage in (
            (self.exported, "exported"),
            (self.trained, "trained"),
            (self.configured, "configured"),
            (self.extracted, "extracted"),
            (self.prepared, "prepared"),
        ):
            if reached:
                return stage  # type: ignore[return-value]
        return "new"


def status_of(experiment: Experiment) -> ExperimentStatus:
    """Read what is on disk for ``experiment``."""
    checkpoints = experiment.root / n.CHECKPOINTS_DIR
    watched = (experiment.root, experiment.config_json, experiment.progress_jsonl)
    stamps = [p.stat().st_mtime for p in watched if p.exists()]
    return ExperimentStatus(
        experiment=experiment,
        prepared=experiment.dataset_report.is_file(),
        extracted=experiment.extract_report.is_file(),
        configured=experiment.config_json.is_file(),
        has_run=experiment.progress_jsonl.is_file(),
        trained=checkpoints.is_dir() and any(checkpoints.glob(n.GENERATOR_PATTERN)),
        training=lock.is_held(experiment.train_lock),
        exported=bool(experiment.exported_models()),
        indexed=bool(experiment.index_files()),
        modified=max(stamps, default=0.0),
    )


@dataclass(frozen=True)
class Workspace:
    """The two roots every command works from."""

    logs_dir: Path
    assets_dir: Path

    def experiment(self, name: str) -> Experiment:
        return Experiment(self.logs_dir, name)

    @property
    def assets(self) -> AssetDir:
        return AssetDir(self.assets_dir)

    def experiments(self) -> list[ExperimentStatus]:
        """Every experiment folder in the logs folder with what it holds, by name.

        Hidden folders (the UI's uploads) and folders whose names are not experiment names are
        not experiments.
        """
        if not self.logs_dir.is_dir():
            return []
        found = []
        for folder in sorted(self.logs_dir.iterdir()):
            if not folder.is_dir():
                continue
            try:
                experiment = self.experiment(folder.name)
            except UserError:
                continue
            found.append(status_of(experiment))
        return found

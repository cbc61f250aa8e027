"""The experiment folder's owner: what each file of ``logs/<name>/`` is, read and written in one place.

- ``names``: every file name of the folder (nobody else spells them) and the safe-name rules;
- ``folder.Experiment``: where each file is;
- the records, typed with ``load``/``save``: ``dataset.DatasetReport`` (``dataset.json``),
  ``features.FeaturesReport`` (``features.json``), ``config_file`` (``config.json``),
  ``checkpoints.Checkpoints`` (the training states: latest, best, complete, can-resume);
- ``workspace.Workspace``: the logs and assets roots, and ``experiments()``: which experiments
  exist and how far each has come.

Importing this package loads no torch: ``checkpoints`` is imported where a state is read.
"""

from rvc.experiment.assets import AssetDir
from rvc.experiment.folder import Experiment
from rvc.experiment.workspace import ExperimentStatus, Workspace

__all__ = ["AssetDir", "Experiment", "ExperimentStatus", "Workspace"]

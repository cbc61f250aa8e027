"""Where the old names still lead: the experiment folder's owner is ``rvc.experiment`` now.

Kept so that work started against ``rvc.paths`` keeps importing; new code imports
``rvc.experiment`` (``Experiment``, ``Workspace``, ``AssetDir``) and ``rvc.experiment.names``.
"""

from rvc.experiment.assets import AssetDir
from rvc.experiment.folder import Experiment
from rvc.experiment.folder import Experiment as ExperimentDir
from rvc.experiment.names import sample_rate_tag, validate_clip_name, validate_experiment_name
from rvc.experiment.workspace import Workspace

__all__ = [
    "AssetDir",
    "Experiment",
    "ExperimentDir",
    "Workspace",
    "sample_rate_tag",
    "validate_clip_name",
    "validate_experiment_name",
]

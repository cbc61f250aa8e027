"""``features.json``: what the extract stage did, read by config, training, export and the web UI."""

from __future__ import annotations

from dataclasses import dataclass, field

from rvc.experiment import records
from rvc.experiment.folder import Experiment

REPORT_VERSION = 1


@dataclass
class FailedClip:
    clip: str
    reason: str


@dataclass
class FeaturesReport:
    """What one extract run did: its settings, the clips computed, cached and failed, and its timings."""

    f0_method: str
    embedder: str  # a known embedder name or the path of a custom one
    device: str = ""
    clip_count: int = 0  # clips listed by the dataset
    f0_computed: int = 0
    content_computed: int = 0
    cached: int = 0
    failed: list[FailedClip] = field(default_factory=list)  # left out of training
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase
    audio_seconds: float = 0.0  # the dataset's, as dataset.json says
    ready_clips: int = 0  # clips with every feature file
    version: int = REPORT_VERSION

    @classmethod
    def load(cls, experiment: Experiment) -> FeaturesReport:
        """Read the experiment's report; UserError naming the file when it is missing or damaged."""
        return records.load(cls, experiment.extract_report, _extract_first(experiment), _REMEDY, REPORT_VERSION)

    @classmethod
    def find(cls, experiment: Experiment) -> FeaturesReport | None:
        """The report, or None when features were never extracted (a damaged report still raises)."""
        return cls.load(experiment) if experiment.extract_report.is_file() else None

    def save(self, experiment: Experiment) -> None:
        records.write(experiment.extract_report, self)

    def failed_clips(self) -> set[str]:
        return {failure.clip for failure in self.failed}


_REMEDY = "extract the features again"


def _extract_first(experiment: Experiment) -> str:
    return (
        f"no extracted features in {experiment.root}: run `python -m rvc extract --experiment "
        f"{experiment.name}` (or Extract features in the web UI) first"
    )

"""The experiment folder's records: each artefact round-trips through its dataclass, and a missing or
damaged file is refused with a UserError that names it; Workspace.experiments() says how far each
experiment has come."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from rvc.config.experiment import ExperimentConfig
from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace
from rvc.experiment.config_file import find_config, load_config, load_model_config, save_config
from rvc.experiment.dataset import ClipRow, DatasetReport, Rejection, SourceRow
from rvc.experiment.features import FailedClip, FeaturesReport
from rvc.models.config import ModelConfig


def _dataset() -> DatasetReport:
    return DatasetReport(
        sample_rate=40000,
        total_seconds=12.5,
        total_hms="00:00:12",
        clip_count=2,
        train_clip_count=1,
        validation_clip_count=1,
        sources=[
            SourceRow("/in/a.wav", "ab" * 32, "ok", None, 2, 12.5, False),
            SourceRow("/in/b.mp3", None, "rejected", "no audio stream", 0, 0.0, False),
        ],
        rejected=[Rejection("/in/b.mp3", "no audio stream")],
        clips=[
            ClipRow("a-000", "/in/a.wav", 0.0, 6.0, 6.0, "train"),
            ClipRow("a-001", "/in/a.wav", 6.0, 12.5, 6.5, "validation"),
        ],
        options={"input": ["/in"], "slice_by_whisper": True},
    )


def test_dataset_report_round_trips(tmp_path: Path) -> None:
    experiment = Experiment(tmp_path, "voice")
    assert DatasetReport.find(experiment) is None
    report = _dataset()
    report.save(experiment)
    again = DatasetReport.load(experiment)
    assert again == report and DatasetReport.find(experiment) == report
    assert again.clip_names() == ["a-000", "a-001"]
    assert again.inputs == [Path("/in")] and again.sliced_by_whisper
    assert json.loads(experiment.dataset_report.read_text())["version"] == 1  # the file keeps its schema


def test_features_report_round_trips(tmp_path: Path) -> None:
    experiment = Experiment(tmp_path, "voice")
    assert FeaturesReport.find(experiment) is None
    report = FeaturesReport(
        "rmvpe", "contentvec", "cpu", 3, 2, 2, 1, [FailedClip("c", "f0: boom")], {"f0": 1.5}, 12.5, 2
    )
    report.save(experiment)
    assert FeaturesReport.load(experiment) == report and report.failed_clips() == {"c"}


def test_config_round_trips_through_the_experiment_package(tmp_path: Path) -> None:
    experiment = Experiment(tmp_path, "voice")
    assert find_config(experiment) is None
    config = ExperimentConfig(model=ModelConfig.tiny())
    config.train.epochs = 7
    save_config(experiment, config)
    loaded = load_config(experiment)
    assert loaded.to_dict() == config.to_dict() and load_model_config(experiment) == config.model


@pytest.mark.parametrize(
    ("load", "path_of"),
    [
        (DatasetReport.load, lambda e: e.dataset_report),
        (FeaturesReport.load, lambda e: e.extract_report),
        (load_config, lambda e: e.config_json),
    ],
)
def test_a_missing_record_names_its_file_and_the_way_to_make_it(tmp_path: Path, load, path_of) -> None:
    experiment = Experiment(tmp_path, "voice")
    with pytest.raises(UserError) as error:
        load(experiment)
    message = str(error.value)
    assert str(path_of(experiment)) in message and "does not exist" in message and "python -m rvc" in message


def _one_clip(**change: object) -> str:
    clip = {"name": "a", "source": "s", "start": 0, "end": 1, "seconds": 1, "split": "train"} | change
    return json.dumps({"sample_rate": 40000, "clips": [clip]})


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"sample_rate": "40k"}', "sample_rate: expected int"),
        ('{"total_seconds": 3}', "sample_rate: expected a value"),
        ('{"sample_rate": 40000, "clips": [{"name": "a"}]}', r"clips\[0\]\.source"),
        (
            '{"sample_rate": 40000, "clips": [{"name": "a", "source": "s", "start": 0, "end": 1, '
            '"seconds": 1, "split": "test"}]}',
            r"split: expected 'train' or 'validation'",
        ),
        ('{"sample_rate": 40000, "version": 9}', "unsupported version 9"),
        # Python's JSON reads these; config said "the dataset's nan minutes" and extract crashed on the name.
        ('{"sample_rate": 40000, "total_seconds": NaN}', "total_seconds: expected a finite number"),
        ('{"sample_rate": 40000, "clips": [{"seconds": 1e999}]}', r"clips\[0\]\.seconds: expected a finite number"),
        (_one_clip(name="../../evil"), r"clips\[0\]\.name '../../evil' is not a clip name"),
        ('{"sample_rate": 12345}', "sample_rate 12345 is none of 32000, 40000, 48000"),  # no preset's, unnamed
        (_one_clip(speaker=-1), r"clips\[0\]\.speaker is -1, below 0"),  # trained as a torch IndexError
    ],
)
def test_a_damaged_dataset_report_is_refused_by_name(tmp_path: Path, content: str, why: str) -> None:
    experiment = Experiment(tmp_path, "voice")
    experiment.ensure()
    experiment.dataset_report.write_text(content)
    with pytest.raises(UserError, match=why) as error:
        DatasetReport.find(experiment)  # present but damaged: an error, not "never prepared"
    assert str(experiment.dataset_report) in str(error.value) and "prepare the dataset again" in str(error.value)


def test_damaged_features_and_config_are_refused_by_name(tmp_path: Path) -> None:
    experiment = Experiment(tmp_path, "voice")
    experiment.ensure()
    experiment.extract_report.write_text('{"f0_method": "rmvpe", "embedder": "contentvec", "failed": [1]}')
    with pytest.raises(UserError, match=r"failed\[0\]: expected an object") as error:
        FeaturesReport.load(experiment)
    assert str(experiment.extract_report) in str(error.value)
    experiment.config_json.write_text('{"version": 1, "model": 3}')
    with pytest.raises(UserError) as error:
        load_config(experiment)
    assert str(experiment.config_json) in str(error.value)


def test_workspace_lists_each_experiment_with_how_far_it_has_come(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    assert workspace.experiments() == []
    new, prepared, trained = (workspace.experiment(n) for n in ("a-new", "b-prepared", "c-trained"))
    new.ensure()
    (workspace.logs_dir / ".try_model").mkdir()  # the UI's uploads: not an experiment
    (workspace.logs_dir / "not a name").mkdir()
    _dataset().save(prepared)
    _dataset().save(trained)
    FeaturesReport("rmvpe", "contentvec").save(trained)
    save_config(trained, ExperimentConfig(model=ModelConfig.tiny()))
    trained.progress_jsonl.write_text("")
    trained.checkpoints.folder.mkdir(parents=True)
    trained.checkpoints.paths(10).generator.write_bytes(b"")
    trained.index_file.write_bytes(b"")

    statuses = {s.name: s for s in workspace.experiments()}
    assert list(statuses) == ["a-new", "b-prepared", "c-trained"]
    assert [s.stage for s in statuses.values()] == ["new", "prepared", "trained"]
    done = statuses["c-trained"]
    assert done.configured and done.has_run and done.indexed and not done.exported and not done.training

    trained.exported_model(best=True).write_bytes(b"")
    with open(trained.train_lock, "a") as lock:  # what a running trainer holds
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = {s.name: s for s in workspace.experiments()}["c-trained"]
        assert done.stage == "exported" and done.training
    assert trained.exported_models() == [trained.exported_model(best=True)]

"""Typed progress events: every kind round-trips, and older and newer records still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rvc.config.experiment import ExperimentConfig
from rvc.train.events import (
    KNOWN,
    BestEvent,
    CheckpointEvent,
    DoneEvent,
    EpochEvent,
    ErrorEvent,
    Event,
    ExportEvent,
    JobEndEvent,
    JobStartEvent,
    LogEvent,
    OvertrainEvent,
    ProgressEvent,
    StartEvent,
    StepEvent,
    UnknownEvent,
    from_json,
)
from rvc.train.progress import format_line, parse_line, read_events
from rvc.train.run_state import RunState

V1_FILE = Path(__file__).parent / "data" / "progress_v1.jsonl"

EXAMPLES: list[Event] = [
    StartEvent(
        config=ExperimentConfig().to_dict(),
        clips=6,
        validation_clips=2,
        dataset_seconds=12.5,
        data_placement="stream",
        steps_per_epoch=3,
        total_steps=9,
        epochs=3,
        start_epoch=2,
        start_step=3,
        device="cuda:0",
        precision="bf16-tail",
        world_size=2,
        step_mode="compiled",
        step_mode_reason="9 steps do not repay a compile",
        compile_s=38.2,
    ),
    StepEvent(
        epoch=2,
        step=4,
        total_steps=9,
        batch=1,
        batches=3,
        lr=9.99e-5,
        metrics={"loss/g/total": 31.2, "loss/d/total": 2.9, "loss/g/mel": None},
        it_s=4.1,
        eta_s=1.2,
        next_save_epoch=3,
        skipped_steps=1,
        gpu={"gpu/util_percent": 97.0},
    ),
    EpochEvent(
        epoch=2,
        step=6,
        epochs=3,
        epoch_s=1.5,
        validation_s=0.2,
        sample_s=0.1,
        save_s=0.05,
        peak_mem_gib=3.25,
        validation={"loss/val/mel": 2.31},
        best_epoch=2,
        epochs_since_best=0,
    ),
    CheckpointEvent(epoch=2, step=6, generator="/x/G_6.pth", discriminator="/x/D_6.pth", removed=[3], write_s=0.4),
    BestEvent(epoch=2, step=6, value=2.31),
    OvertrainEvent(epoch=3, best_epoch=1, epochs_since_best=2, auto_stop=True, message="no better for 2 epochs"),
    ExportEvent(which="best", path="/x/voice_best.pth", epoch=3, step=9),
    ErrorEvent(message="rolling back", recoverable=True, step=8, rollback_to=6, detail="nan"),
    DoneEvent(epoch=3, step=9, stopped=True, stopped_early=False, skipped_steps=1, overtrain={"best_epoch": 2}),
    JobStartEvent(stage="extract", argv=["python", "-m", "rvc", "extract"], pid=123, pid_started=456, experiment="v"),
    ProgressEvent(task="pitch (rmvpe)", done=3, total=10, unit="clip", rate=1.5, eta_s=4.7, elapsed_s=2.0),
    LogEvent(message="extracted f0 for 3 clips"),
    JobEndEvent(status="stopped", message="stopped", exit_code=143),
]


def test_the_examples_cover_every_kind() -> None:
    assert sorted(type(e).__name__ for e in EXAMPLES) == sorted(cls.__name__ for cls in KNOWN)


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_every_kind_round_trips_through_json_and_its_line(event: Event) -> None:
    record = event.to_json()
    assert list(record)[:3] == ["v", "kind", "time"] and record["v"] == 1 and record["kind"] == event.kind
    assert from_json(json.loads(json.dumps(record))) == event
    assert parse_line(format_line(event)) == event


def test_fields_a_newer_trainer_adds_are_ignored_and_wrong_types_read_as_absent() -> None:
    record = StepEvent(epoch=1, step=2, lr=1e-4).to_json() | {"new_field": [1, 2], "it_s": "fast", "lr": True}
    event = from_json(record)
    assert isinstance(event, StepEvent) and event.step == 2
    assert event.it_s is None and event.lr is None  # "fast" is no speed, and JSON's true is no number
    assert from_json(record | {"step": 2.5}) is None  # the identity of a step event must read


def test_a_record_without_the_fields_added_since_reads_with_defaults() -> None:
    # A start event of an early trainer: before step modes, data placement and the config's train section.
    event = from_json({"v": 1, "kind": "start", "time": 1.0, "total_steps": 9, "epochs": 3, "config": {}})
    assert isinstance(event, StartEvent)
    assert event.step_mode is None and event.data_placement == "resident" and event.start_step == 0
    assert event.train_settings() is None


def test_start_reads_the_runs_train_settings_tolerating_unknown_ones() -> None:
    config = ExperimentConfig().to_dict()
    config["train"] |= {"c_mel": 30.0, "a_setting_from_the_future": 1}
    del config["train"]["overtrain_patience"]  # a setting from after this record
    settings = StartEvent(config=config).train_settings()
    assert settings is not None and settings.c_mel == 30.0 and settings.overtrain_patience == 30
    assert settings.betas == (0.8, 0.99)
    config["train"]["c_mel"] = "forty-five"  # a damaged record: no weight to divide by, and no crash
    assert RunState.fold([StartEvent(config=config)]).c_mel is None


def test_unknown_events_keep_their_record() -> None:
    raw = {"v": 1, "kind": "sample", "time": 3.0, "audio": "a.wav"}
    event = from_json(raw)
    assert isinstance(event, UnknownEvent) and event.to_json() == raw


def test_a_progress_file_of_todays_format_reads_typed() -> None:
    """progress_v1.jsonl: written by the trainer before events were typed (a run stopped, resumed, finished)."""
    events, _ = read_events(V1_FILE)
    assert len(events) == len(V1_FILE.read_text().splitlines())  # every line read
    assert not [e for e in events if isinstance(e, UnknownEvent)]
    starts = [e for e in events if isinstance(e, StartEvent)]
    assert [s.start_step for s in starts] == [0, starts[1].start_step] and starts[1].start_step > 0
    settings = starts[0].train_settings()
    assert settings is not None and settings.c_mel == 45.0
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert steps and all(s.metrics.get("loss/g/total") is not None and s.it_s for s in steps)
    done = [e for e in events if isinstance(e, DoneEvent)]
    assert [d.stopped for d in done] == [True, False]
    assert {e.kind for e in events} >= {"start", "step", "epoch", "checkpoint", "best", "export", "done"}
    # Every field the trainer wrote reads back unchanged (writing adds the defaults of fields it lacked).
    for line, event in zip(V1_FILE.read_text().splitlines(), events, strict=True):
        written, record = json.loads(line), event.to_json()
        assert {key: record.get(key) for key in written} == written, event.kind

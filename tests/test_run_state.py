"""The fold of a run's events into its state: new runs, resumes, rollbacks, stops, failures."""

from __future__ import annotations

from pathlib import Path

from rvc.config.experiment import ExperimentConfig
from rvc.train.events import (
    BestEvent,
    CheckpointEvent,
    DoneEvent,
    EpochEvent,
    ErrorEvent,
    Event,
    ExportEvent,
    OvertrainEvent,
    StartEvent,
    StepEvent,
    UnknownEvent,
)
from rvc.train.progress import ProgressWriter, read_events
from rvc.train.run_state import RunState, read_run

V1_FILE = Path(__file__).parent / "data" / "progress_v1.jsonl"
STEPS_PER_EPOCH = 3


def _epochs(first: int, last: int, best: dict[int, float], total_epochs: int = 4) -> list[Event]:
    """The events of epochs ``first``..``last`` as the trainer sends them (a step event per step)."""
    events: list[Event] = []
    total = total_epochs * STEPS_PER_EPOCH
    for epoch in range(first, last + 1):
        for batch in range(1, STEPS_PER_EPOCH + 1):
            step = (epoch - 1) * STEPS_PER_EPOCH + batch
            metrics = {"loss/g/total": 40.0 - step, "loss/d/total": 3.0, "loss/g/mel": 45.0 * (3.0 - step / 10)}
            events.append(
                StepEvent(
                    epoch=epoch,
                    step=step,
                    total_steps=total,
                    batch=batch,
                    batches=STEPS_PER_EPOCH,
                    lr=1e-4,
                    metrics=metrics,
                    it_s=2.0,
                    eta_s=(total - step) / 2.0,
                )
            )
        step = epoch * STEPS_PER_EPOCH
        events.append(
            EpochEvent(epoch=epoch, step=step, epochs=total_epochs, validation={"loss/val/mel": 2.5 - epoch / 10})
        )
        if epoch in best:
            events.append(BestEvent(epoch=epoch, step=step, value=best[epoch]))
    return events


def _start(start_step: int, c_mel: float = 45.0) -> StartEvent:
    config = ExperimentConfig().to_dict()
    config["train"]["c_mel"] = c_mel
    return StartEvent(
        config=config,
        start_step=start_step,
        start_epoch=start_step // STEPS_PER_EPOCH + 1,
        epochs=4,
        total_steps=4 * STEPS_PER_EPOCH,
        steps_per_epoch=STEPS_PER_EPOCH,
    )


def test_a_run_stopped_then_resumed_to_its_end() -> None:
    stopped_run: list[Event] = [
        _start(0),
        *_epochs(1, 2, best={1: 2.4, 2: 2.3}),
        CheckpointEvent(epoch=2, step=6),
        DoneEvent(epoch=2, step=6, stopped=True),
    ]
    state = RunState.fold(stopped_run)
    assert state.stopped and not state.finished and not state.failed
    assert (state.epoch, state.step, state.best_epoch, state.best_value) == (2, 6, 2, 2.3)
    assert state.last_checkpoint is not None and state.last_checkpoint.step == 6
    assert state.losses["loss/g/total"] == 34.0 and state.eta_s == 3.0 and state.it_s == 2.0
    assert state.c_mel == 45.0 and state.held_out_mel == 2.3

    resumed: list[Event] = [
        _start(6),
        *_epochs(3, 4, best={3: 2.2}),
        ExportEvent(which="latest", path="/logs/voice/voice.pth", epoch=4, step=12),
        ExportEvent(which="best", path="/logs/voice/voice_best.pth", epoch=4, step=12),
        DoneEvent(epoch=4, step=12),
    ]
    state.apply(resumed[0])
    # Resuming: not stopped any more, the best and the curves so far kept, the run where it was saved.
    assert not state.stopped and state.done is None and state.best_epoch == 2 and state.step == 6
    assert [p.step for p in state.curves["loss/g/total"]] == list(range(1, 7))
    state.apply_all(resumed[1:])
    assert state.finished and (state.epoch, state.step, state.best_epoch) == (4, 12, 3)
    assert [p.step for p in state.curves["loss/g/total"]] == list(range(1, 13))
    assert [p.step for p in state.curves["loss/val/mel"]] == [3, 6, 9, 12]
    assert state.exports == {"latest": "/logs/voice/voice.pth", "best": "/logs/voice/voice_best.pth"}
    assert state == RunState.fold(stopped_run + resumed)  # incremental or in one go: the same state


def test_a_rollback_forgets_what_the_run_trains_again() -> None:
    state = RunState.fold([_start(0), *_epochs(1, 2, best={1: 2.4})])
    state.apply_all(
        [
            StepEvent(epoch=3, step=7, metrics={"loss/g/total": None}),  # non-finite: nothing drawn
            ErrorEvent(message="5 non-finite steps: rolling back to step 3", recoverable=True, step=7, rollback_to=3),
        ]
    )
    assert not state.failed  # a recoverable error is not a failure
    state.apply(_start(3))
    assert state.step == 3 and state.last_step is None and state.last_epoch is None
    assert [p.step for p in state.curves["loss/g/total"]] == [1, 2, 3] and [p.step for p in state.lr] == [1, 2, 3]
    assert [p.step for p in state.curves["loss/val/mel"]] == [3]
    assert state.best_epoch == 1  # its G_best.pth is still on disk


def test_a_new_run_starts_from_nothing_and_a_failure_is_kept_until_the_next_start() -> None:
    state = RunState.fold(
        [
            _start(0),
            *_epochs(1, 4, best={1: 2.4}),
            OvertrainEvent(epoch=4, best_epoch=1, epochs_since_best=3, message="no better for 3 epochs"),
            ExportEvent(which="latest", path="/x.pth"),
            DoneEvent(epoch=4, step=12, stopped_early=True),
        ]
    )
    assert state.overtrain is not None and state.finished
    state.apply_all([_start(0, c_mel=30.0), UnknownEvent(raw={"v": 1, "kind": "sample"})])
    assert state.best is None and state.overtrain is None and state.exports == {} and state.done is None
    assert all(points == [] for points in state.curves.values()) and state.c_mel == 30.0
    assert state.events == 1 + len(_epochs(1, 4, best={1: 2.4})) + 3 + 2  # unknown kinds count, and change nothing
    state.apply(ErrorEvent(message="the GPU ran out of memory at batch size 8"))
    assert state.failed and state.error is not None and "out of memory" in state.error.message
    state.apply(_start(0))
    assert not state.failed


def test_read_run_folds_a_file_as_it_grows(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    assert read_run(path) == RunState()  # no file yet: nothing happened
    writer = ProgressWriter(path, stream=open("/dev/null", "w"))  # noqa: SIM115 - closed with the test
    events = [_start(0), *_epochs(1, 2, best={2: 2.3}), DoneEvent(epoch=2, step=6, stopped=True)]
    incremental, offset = RunState(), 0
    for event in events:
        writer.emit(event)
        more, offset = read_events(path, offset)
        incremental.apply_all(more)
    writer.stream.close()
    assert incremental == read_run(path) and read_run(path).stopped


def test_a_progress_file_of_todays_format_folds() -> None:
    """progress_v1.jsonl: a real run, stopped, resumed and finished, written before events were typed."""
    state = read_run(V1_FILE)
    assert state.finished and not state.failed and state.start is not None and state.start.start_step > 0
    assert state.step == state.total_steps and state.epoch == state.start.epochs
    assert state.best_epoch is not None and set(state.exports) == {"latest", "best"}
    steps = [p.step for p in state.curves["loss/g/total"]]
    assert steps == sorted(set(steps)) and steps[-1] == state.total_steps  # one line, not two over each other
    # written before batch size auto: the number is the config's, and no reason was given
    assert state.batch_size == state.start.config["train"]["batch_size"] and state.batch_size_reason is None

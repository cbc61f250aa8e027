"""Batch size "auto" (issue 19): the setting, Validate, the trainer's choice, resume and out-of-memory messages."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from rvc.config.batch import dataset_bound, suggested_batch_size
from rvc.config.experiment import DataInfo, ExperimentConfig
from rvc.config.train import TrainConfig
from rvc.config.validate import validate
from rvc.errors import UserError
from rvc.experiment import Experiment
from rvc.experiment import checkpoints as checkpoint
from rvc.experiment.checkpoints import save_torch
from rvc.experiment.config_file import load_config, save_config
from rvc.models.config import ModelConfig
from rvc.train.batch_choice import choose_batch, largest_fitting, resolve_batch
from rvc.train.events import StartEvent, from_json
from rvc.train.progress import ProgressWriter, parse_line
from tests.fake_experiment import make_extracted_experiment, tiny_config, write_tiny_config
from tests.hostile import cli
from tests.test_train import _env, _records, _trainer

# ------------------------------------------------------------------ the setting


def _config_cli(logs: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``python -m rvc config --experiment voice FLAGS`` as a user runs it."""
    command = [sys.executable, "-m", "rvc", "--logs-dir", str(logs), "config", "--experiment", "voice", *flags]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120)


def test_the_config_command_takes_auto_or_a_number_and_refuses_anything_else(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    write_tiny_config(experiment, batch_size=2)  # an existing config with a number keeps working

    auto = _config_cli(logs, "--batch-size", "auto")
    assert auto.returncode == 0, auto.stderr
    assert json.loads(experiment.config_json.read_text())["train"]["batch_size"] == "auto"
    assert load_config(experiment).train.batch_size == "auto"
    # Validate says what auto is expected to choose: 6 clips of 0.6 s suggest at most 4, no GPU here.
    assert "batch size auto: about 4" in auto.stdout and "measures a trial step" in auto.stdout

    number = _config_cli(logs, "--batch-size", "3")
    assert number.returncode == 0, number.stderr
    assert json.loads(experiment.config_json.read_text())["train"]["batch_size"] == 3
    assert "at batch size 3" in number.stdout

    for text, words in (("big", "--batch-size 'big': use auto or a whole number"), ("0", "--batch-size 0 must be")):
        refused = _config_cli(logs, "--batch-size", text)
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert json.loads(experiment.config_json.read_text())["train"]["batch_size"] == 3


def test_a_new_config_leaves_the_batch_to_the_trainer(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    make_extracted_experiment(logs)
    ran = cli(logs, "config", "--experiment", "voice", "--tiny-model")
    assert ran.code == 0, ran.stderr
    assert load_config(Experiment(logs, "voice")).train.batch_size == "auto"


def test_the_memory_estimate_grows_with_the_longest_clip_the_config_records(tmp_path: Path) -> None:
    """The encoders see whole clips, each padded to the longest: 12 s clips cost more than 3 s ones,
    an unrecorded length is read as the 3 s the figures were measured at, and config records it."""
    from rvc.config.memory import clip_scale, estimate_memory_gib, largest_batch

    def config(longest: float) -> ExperimentConfig:
        data = DataInfo(40000, train_clips=200, seconds=3600.0, longest_clip_seconds=longest)
        return ExperimentConfig(ModelConfig.for_sample_rate(40000), TrainConfig(batch_size=8), data)

    assert clip_scale(config(0.0)) == pytest.approx(1.0) == clip_scale(config(3.0))
    assert clip_scale(config(12.0)) == pytest.approx(0.76 + 0.24 * 4)  # the segment's part stays, the rest x4
    assert clip_scale(config(0.3)) == clip_scale(config(0.1)) < 1  # a clip is padded to hold a segment (0.32 s)
    assert estimate_memory_gib(config(12.0), "bf16-tail") > estimate_memory_gib(config(3.0), "bf16-tail")
    assert largest_batch(config(12.0), 6.0, "bf16-tail") < largest_batch(config(3.0), 6.0, "bf16-tail")

    logs = tmp_path / "logs"
    make_extracted_experiment(logs, train_clips=3, validation_clips=1, seconds=0.6)
    assert cli(logs, "config", "--experiment", "voice", "--tiny-model").code == 0
    assert load_config(Experiment(logs, "voice")).data.longest_clip_seconds == pytest.approx(0.6)


def test_the_held_out_pass_converts_at_most_the_training_batch_at_once() -> None:
    from rvc.config.batch import held_out_batch

    assert [held_out_batch(10, batch) for batch in (1, 2, 4, 8, 16)] == [1, 2, 4, 5, 5]  # 5 + 5, not 8 + 2
    assert held_out_batch(3, 16) == 3 and held_out_batch(0, 8) == 0 and held_out_batch(10, 0) == 0


def test_the_estimate_counts_the_dataset_and_the_held_out_pass_beside_a_graphed_step() -> None:
    """12 s clips, 10 held out, batch 2: the held-out pass converts 2 whole clips in fp32 (about 0.9 GiB),
    which a graphed step's pool does not make room for, and an eager step's freed memory does; the padded
    clips on the GPU count unless they stream."""
    from rvc.config.memory import HELD_OUT_BYTES_PER_SAMPLE, dataset_gib, memory_estimate

    def config(step_mode: str = "auto", placement: str = "auto", held_out: int = 10) -> ExperimentConfig:
        data = DataInfo(40000, train_clips=99, validation_clips=held_out, seconds=660.0, longest_clip_seconds=12.0)
        train = TrainConfig(batch_size=2, step_mode=step_mode, data_placement=placement)
        return ExperimentConfig(ModelConfig.for_sample_rate(40000), train, data)

    graphed = memory_estimate(config(), "bf16-tail")
    assert graphed.held_out(2) == pytest.approx(2 * 12 * 40000 * HELD_OUT_BYTES_PER_SAMPLE / 2**30)
    assert 0.85 < graphed.held_out(2) < 0.95 and graphed.held_out(8) == pytest.approx(2.5 * graphed.held_out(2))
    assert graphed.gib(2) == pytest.approx(graphed.step(2) + graphed.held_out(2))
    # 99 + 10 clips of 12 s at 40 kHz: 3148 bytes a frame (audio, fp16 features, pitch), about 0.38 GiB
    assert dataset_gib(config()) == pytest.approx(109 * 1200 * 3148 / 2**30)
    assert graphed.step(2) == pytest.approx(graphed.fixed + dataset_gib(config()) + 2 * graphed.per_clip)
    eager = memory_estimate(config(step_mode="eager"), "bf16-tail")
    assert eager.gib(2) == pytest.approx(eager.step(2))  # the step's own memory is free by then, and larger
    assert memory_estimate(config(placement="stream"), "bf16-tail").dataset == 0.0
    assert memory_estimate(config(), "bf16-tail", gpu_gib=1.0).dataset == 0.0  # over a quarter of it: streamed
    assert memory_estimate(config(held_out=0), "bf16-tail").held_out(2) == 0.0
    # Validate's figure and the batch it would fit on a 6 GiB card follow
    result = validate(config(), "bf16-tail")
    assert result.memory_estimate_gib == pytest.approx(round(graphed.gib(2), 1))
    assert result.memory_parts == (
        "weights and optimizer 1.2, clips on the GPU 0.4, the training step 1.1, held-out clips converted beside it 0.9"
    )
    assert "held-out" not in validate(config(held_out=0), "bf16-tail").memory_parts
    assert graphed.largest_batch(6.0, 0.85) < memory_estimate(config(held_out=0), "bf16-tail").largest_batch(6.0, 0.85)


def test_batch_auto_weighs_the_held_out_pass_beside_the_measured_step() -> None:
    data = DataInfo(40000, train_clips=400, validation_clips=10, seconds=1200, longest_clip_seconds=3.0)
    config = ExperimentConfig(model=ModelConfig.for_sample_rate(40000), data=data)

    def peak(batch: int) -> float:
        return 1.0 + 0.5 * batch

    choice = choose_batch(config, "bf16", clips=400, seconds=1200, peak_of=peak, usable_gib=6.0, device="cuda:0")
    # 8 measures 5.0 GiB and the pass of 5 clips of 3 s adds about 0.6: over 85% of 6 GiB, so 7 (4.5 + 0.6)
    assert choice.size == 7, choice
    measured = "auto: measured 5.1 GiB (with 0.6 estimated for the held-out pass) of 6.0 GiB usable"
    assert choice.reason.startswith(measured), choice.reason
    config.train.step_mode = "eager"  # an eager step's memory is free again when the pass runs
    assert choose_batch(config, "bf16", 400, 1200, peak_of=peak, usable_gib=6.0, device="cuda:0").size == 8


@pytest.mark.parametrize(
    ("value", "words"),
    [("big", "--batch-size 'big': use auto"), (2.5, "--batch-size 2.5: use auto"), (True, "--batch-size True")],
)
def test_a_batch_size_that_is_neither_auto_nor_whole_is_refused_by_name(value: Any, words: str) -> None:
    errors = TrainConfig(batch_size=value).errors()
    assert any(words in error for error in errors), errors


def test_the_form_takes_auto_or_a_number(tmp_path: Path) -> None:
    from webui import config_handlers as handlers
    from webui.paths_guard import PathGuard

    guard = PathGuard(tmp_path, (tmp_path,))
    form = handlers.form_from_train(TrainConfig())
    assert form["batch_size"] == "auto" and handlers.train_from_form(form, guard).batch_size == "auto"
    for typed, parsed in (("8", 8), (" Auto ", "auto"), (12, 12), ("6.0", 6)):
        assert handlers.train_from_form(form | {"batch_size": typed}, guard).batch_size == parsed
    for typed in ("eight", "", None, "2.5"):
        with pytest.raises(UserError, match="'Batch size'"):
            handlers.train_from_form(form | {"batch_size": typed}, guard)
    # a number out of range is refused by Validate, by the field's label
    errors = validate(ExperimentConfig(train=handlers.train_from_form(form | {"batch_size": "0"}, guard))).errors
    assert [handlers.ui_text(e) for e in errors] == ["'Batch size' 0 must be between 1 and 1024"]


# ------------------------------------------------------------------ what auto chooses


def test_the_dataset_bounds_auto_by_its_length_and_its_clips() -> None:
    assert [suggested_batch_size(m) for m in (5, 10, 59, 60)] == [4, 8, 8, 16]
    assert dataset_bound(600, 500).size == 8 and "10.0 minutes suggest at most 8" in dataset_bound(600, 500).why
    few = dataset_bound(3600, 10)
    assert few.size == 10 and "its 10 training clips fill batches of 10" in few.why
    assert dataset_bound(3600, 10, world_size=4).size == 2  # each GPU draws its own batch
    assert dataset_bound(3600, 0).size == 16  # clips not known yet: the length alone


def test_validate_with_auto_estimates_the_batch_it_expects() -> None:
    config = ExperimentConfig(data=DataInfo(seconds=1200, train_clips=5))
    result = validate(config)
    assert result.batch_size == 5 and result.auto_batch is not None
    assert "about 5" in result.auto_batch and "its 5 training clips" in result.auto_batch
    # no suggestions on a batch that auto sized; the estimate is for the batch auto would take
    assert not any("batch size" in s for s in result.suggestions)
    sized = validate(ExperimentConfig(train=TrainConfig(batch_size=5), data=config.data))
    assert result.memory_estimate_gib == sized.memory_estimate_gib


def test_the_search_finds_the_largest_batch_under_the_limit() -> None:
    def linear(batch: int) -> float:  # the estimate's shape: 1.4 GiB fixed, 0.33 GiB a clip
        return 1.4 + 0.33 * batch

    for start in (1, 4, 16, 40):
        best, peaks = largest_fitting(start, 64, linear, limit_gib=5.1, fixed_gib=1.4)
        assert best == 11 and len(peaks) <= 4, (start, peaks)
    assert largest_fitting(8, 8, linear, limit_gib=100)[0] == 8  # the dataset's bound, measured once
    assert largest_fitting(8, 8, linear, limit_gib=100)[1] == {8: linear(8)}

    def oom_above_5(batch: int) -> float | None:
        return None if batch > 5 else 1.0 + batch

    assert largest_fitting(16, 16, oom_above_5, limit_gib=100)[0] == 5
    assert largest_fitting(16, 16, lambda batch: None, limit_gib=100)[0] == 0


def test_choose_batch_on_a_gpu_measures_and_says_what_it_measured() -> None:
    config = ExperimentConfig(model=ModelConfig.for_sample_rate(40000))
    measured: list[int] = []

    def peak(batch: int) -> float:
        measured.append(batch)
        return 1.0 + 0.5 * batch

    choice = choose_batch(config, "bf16", clips=400, seconds=1200, peak_of=peak, usable_gib=6.0, device="cuda:0")
    assert choice.size == 8 and choice.peak_gib == 5.0  # 20 minutes suggest 8, and 8 fits 85% of 6 GiB
    assert choice.reason == "auto: measured 5.0 GiB of 6.0 GiB usable; the dataset's 20.0 minutes suggest at most 8"
    small = choose_batch(config, "bf16", clips=400, seconds=1200, peak_of=peak, usable_gib=4.0, device="cuda:0")
    assert small.size == 4 and small.peak_gib is not None and small.peak_gib <= 0.85 * 4.0
    assert small.reason.endswith("; 5 took 3.5 GiB, over 85% of it"), small.reason
    config.train.batch_size = 6
    assert choose_batch(config, "bf16", 400, 1200, peak_of=peak, usable_gib=6.0).size == 6  # a number: no trial
    assert len(measured) <= 4


def test_the_resolver_on_the_cpu_takes_the_dataset_bound(tmp_path: Path) -> None:
    from rvc.train.data import load_splits
    from rvc.train.mel import Spectrogram
    from rvc.train.models import build_models
    from rvc.train.precision import PLANS

    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=3)
    config = tiny_config(batch_size="auto")
    train_set, _ = load_splits(experiment, config.model)
    models = build_models(config, torch.device("cpu"))
    spectrogram = Spectrogram.for_model(config.model)
    args = (models, spectrogram, None, train_set, PLANS["fp32"], torch.device("cpu"))
    choice = resolve_batch(config, *args)
    assert choice.size == 3 and choice.peak_gib is None  # a few seconds suggest 4, but there are 3 clips
    assert "its 3 training clips fill batches of 3" in choice.reason and "no GPU memory to measure" in choice.reason
    assert resolve_batch(config, *args, resumed_batch=4).size == 4  # a resumed run keeps its batch
    assert resolve_batch(tiny_config(batch_size=5), *args).reason == "set in the configuration"


def test_a_trial_step_trains_nothing(tmp_path: Path) -> None:
    """A trial leaves the weights, the optimizers' moments and steps, the gradients and the RNG as they were:
    a step after it trains exactly as the same step without it."""
    from rvc.train.batch_choice import TrialStep
    from rvc.train.data import load_splits
    from rvc.train.mel import Spectrogram
    from rvc.train.models import build_models
    from rvc.train.step import StepMetrics, TrainStep

    experiment = make_extracted_experiment(tmp_path / "logs")
    config = tiny_config(batch_size=2)
    train_set, _ = load_splits(experiment, config.model)
    spectrogram = Spectrogram.for_model(config.model)
    index = torch.tensor([[0, 3]])
    trained = []
    for trial_first in (False, True):
        torch.manual_seed(0)
        models = build_models(config, torch.device("cpu"))
        step = TrainStep(config, models, spectrogram, train_set, StepMetrics(torch.device("cpu")))
        step(index)  # the optimizers hold moments and a step count before the trial
        if trial_first:
            rng = torch.get_rng_state()
            assert TrialStep(config, models, spectrogram, train_set, step.precision, None)(4) == 0.0
            assert torch.equal(torch.get_rng_state(), rng)
            assert all(p.grad is None for p in models.g_params + models.d_params)
        step(index)
        trained.append((models.generator.state_dict(), models.optimizer_g.state_dict(), step.metrics.read()))
    (weights, moments, metrics), (weights_after_trial, moments_after_trial, metrics_after_trial) = trained
    assert all(torch.equal(weights[name], weights_after_trial[name]) for name in weights)
    for number, state in moments["state"].items():
        assert all(torch.equal(value, moments_after_trial["state"][number][key]) for key, value in state.items())
    assert metrics == metrics_after_trial  # the trial's losses went to its own accumulators


# ------------------------------------------------------------------ the trainer


def _train(logs: Path) -> tuple[int, list[dict], str]:
    """Run the real trainer on the CPU; return its status, its events, and its log lines and errors."""
    result = subprocess.run(_trainer(logs), capture_output=True, text=True, env=_env(), timeout=300)
    return result.returncode, _records(result.stdout), result.stdout + result.stderr


def test_an_auto_run_trains_at_the_batch_it_chose_and_says_why(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    write_tiny_config(experiment, epochs=1, batch_size="auto")

    code, events, output = _train(logs)

    assert code == 0, output
    start = from_json(events[0])
    assert isinstance(start, StartEvent)
    assert start.config["train"]["batch_size"] == 4  # 6 clips of 0.6 s: the short-dataset suggestion
    assert start.batch_size_reason is not None and start.batch_size_reason.startswith("auto: the dataset's")
    assert "no GPU memory to measure on cpu" in start.batch_size_reason
    assert start.batch_trials_s == 0  # nothing measured, nothing waited for
    assert start.steps_per_epoch == 2  # 6 clips in batches of 4
    assert f"batch size 4 ({start.batch_size_reason})" in output  # the trainer's log says it too
    assert json.loads(experiment.config_json.read_text())["train"]["batch_size"] == "auto"  # the file keeps auto


def _saved_batch(experiment: Experiment) -> int | None:
    folder = experiment.root / "checkpoints"
    state = torch.load(checkpoint.state_paths(folder, checkpoint.complete_steps(folder)[-1]).state, weights_only=True)
    return state["train_state"].get("batch_size")


def test_a_resumed_auto_run_keeps_its_batch_when_the_dataset_would_now_suggest_another(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    write_tiny_config(experiment, epochs=1, batch_size="auto")
    code, events, output = _train(logs)
    assert code == 0, output
    assert events[0]["config"]["train"]["batch_size"] == 4 and _saved_batch(experiment) == 4

    # Three clips are left: a new run would choose 3, but the clips' order depends on the batch.
    names = experiment.train_clips.read_text().split()
    experiment.train_clips.write_text("\n".join(names[:3]) + "\n")
    write_tiny_config(experiment, epochs=2, batch_size="auto")
    code, events, output = _train(logs)
    assert code == 0, output
    start = events[0]
    assert start["start_step"] == 2 and start["config"]["train"]["batch_size"] == 4
    assert "kept from the run this one continues" in start["batch_size_reason"]
    assert start["steps_per_epoch"] == 1 and events[-1]["kind"] == "done"

    # A state saved before the batch was recorded: auto chooses afresh, for the clips there are now.
    folder = experiment.root / "checkpoints"
    state_file = checkpoint.state_paths(folder, checkpoint.complete_steps(folder)[-1]).state
    state = torch.load(state_file, weights_only=True)
    del state["train_state"]["batch_size"]
    save_torch(state, state_file)
    write_tiny_config(experiment, epochs=3, batch_size="auto")
    code, events, output = _train(logs)
    assert code == 0, output
    assert events[0]["start_step"] == 3 and events[0]["config"]["train"]["batch_size"] == 3
    assert _saved_batch(experiment) == 3


@pytest.mark.parametrize(
    ("error", "words", "status"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "the GPU ran out of memory", 1),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"), "the computer ran out of memory", 2),
    ],
)
def test_out_of_memory_mid_run_names_the_batch_the_run_chose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, words: str, status: int
) -> None:
    from rvc.train import loop

    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    write_tiny_config(experiment, epochs=2, batch_size="auto")

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(loop.Trainer, "_finish_epoch", out_of_memory)  # after the first epoch's steps
    for variable in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # the trainer sets them in this process
        monkeypatch.setenv(variable, str(tmp_path / variable))
    ran = cli(logs, "train", "--device", "cpu", "--experiment", "voice")

    assert ran.code == status, ran.stderr
    events = [e for line in ran.stdout.splitlines() if (e := parse_line(line))]
    assert isinstance(events[0], StartEvent) and events[0].config["train"]["batch_size"] == 4
    message = events[-1].to_json()["message"]
    assert f"{words} at batch size 4: set" in message and "--batch-size 2" in message, message
    assert "intact" in message


def test_out_of_memory_before_the_start_event_names_the_batch_auto_chose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graph's capture runs after batch "auto" is resolved and before the start event that reports it
    (on an H100 capped at 6 GiB it ran out there): the message names the batch chosen, not "auto"."""
    from rvc.train import loop

    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    write_tiny_config(experiment, epochs=2, batch_size="auto")

    def capture_out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")

    monkeypatch.setattr(loop, "ready_step", capture_out_of_memory)
    for variable in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # the trainer sets them in this process
        monkeypatch.setenv(variable, str(tmp_path / variable))
    ran = cli(logs, "train", "--device", "cpu", "--experiment", "voice")

    assert ran.code == 1, ran.stderr
    events = [e.to_json() for line in ran.stdout.splitlines() if (e := parse_line(line))]
    assert [e["kind"] for e in events] == ["error"]  # no start event: the run never began
    assert "the GPU ran out of memory at batch size 4: set --batch-size 2" in events[0]["message"], events
    assert events[0]["detail"] == "CUDA out of memory. Tried to allocate 20.00 MiB"


def test_a_capture_that_fails_after_an_allocation_failed_is_out_of_memory() -> None:
    """torch.cuda.graph's exit ends the capture after the out-of-memory, and capture_end raises its own
    error with the out-of-memory as context (seen on an H100 capped at 8 GiB): the trial counts it as
    not fitting, the trainer gives the batch-size message; other capture failures stay what they are."""
    from rvc.train.out_of_memory import caused_by_out_of_memory

    capture_end = "CUDA error: operation failed due to a previous error during capture"

    def failing_capture() -> None:
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        finally:
            raise RuntimeError(capture_end)  # as the context manager's exit does

    with pytest.raises(RuntimeError, match="during capture") as failed:
        failing_capture()
    assert caused_by_out_of_memory(failed.value)
    assert caused_by_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert not caused_by_out_of_memory(RuntimeError(capture_end))
    assert not caused_by_out_of_memory(ValueError("Expected all tensors to be on the same device"))


def test_the_out_of_memory_message_reads_only_this_runs_start_event(tmp_path: Path) -> None:
    from rvc.train.out_of_memory import gpu_message, trained_batch_size

    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    config = write_tiny_config(experiment, batch_size="auto")
    progress = ProgressWriter(experiment.progress_jsonl, stream=io.StringIO())
    earlier = tiny_config(batch_size=16).to_dict()
    progress.emit(StartEvent(config=earlier))
    since = experiment.progress_jsonl.stat().st_size
    assert trained_batch_size(experiment, config, since) is None  # auto, failed before choosing: not 16
    assert "with batch size auto: set --batch-size 2" in gpu_message(experiment, config, since)
    progress.emit(StartEvent(config=tiny_config(batch_size=6).to_dict(), batch_size_reason="auto: ..."))
    assert trained_batch_size(experiment, config, since) == 6
    assert "at batch size 6: set --batch-size 3" in gpu_message(experiment, config, since)
    save_config(experiment, tiny_config(batch_size=5))
    assert trained_batch_size(experiment, load_config(experiment), experiment.progress_jsonl.stat().st_size) == 5

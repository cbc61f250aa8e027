"""What keeps a run's wall time down without giving up what protects it: saves written in the
background (complete, atomic, the previous state loadable after a kill mid-write), how steps run
chosen by what a compile costs, and the hand-over from the graphed step to one compiled meanwhile."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from rvc.errors import UserError
from rvc.train import checkpoint
from rvc.train import graph as graph_module
from rvc.train.background_compile import BackgroundCompile, CompileRecord, worth_compiling
from rvc.train.data import load_training_set
from rvc.train.graph import choose_step_mode, set_capturable
from rvc.train.mel import Spectrogram
from rvc.train.models import Models, build_models
from rvc.train.saver import StateSaver
from rvc.train.step import METRIC_NAMES, StepMetrics, TrainStep
from tests.fake_experiment import make_extracted_experiment, tiny_config

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


def _models(seed: int = 0) -> tuple[object, Models]:
    config = tiny_config(batch_size=2)
    torch.manual_seed(seed)
    return config, build_models(config, CPU)


def _extra(step: int) -> dict[str, object]:
    return {"train_state": {"step": step, "history": [{"epoch": 1}]}, "rng_cpu": torch.get_rng_state()}


# --- saving in the background --------------------------------------------------------------------


def test_a_background_save_writes_a_complete_state_in_rvcs_format(tmp_path: Path) -> None:
    _, models = _models()
    written: list[dict] = []
    saver = StateSaver(tmp_path, keep_last=2, device=CPU, on_written=written.append)
    extra = _extra(5)
    seconds = saver.save(models, epoch=2, step=5, learning_rate=1e-4, extra=extra)
    extra["train_state"]["history"].append({"epoch": 2})  # the trainer goes on changing its own copy
    with torch.no_grad():
        for parameter in models.generator.parameters():
            parameter.add_(1.0)  # so does the next step
    saver.close()

    assert seconds >= 0 and checkpoint.complete_steps(tmp_path) == [5]
    assert written[0]["step"] == 5 and written[0]["epoch"] == 2 and written[0]["write_s"] >= 0
    loaded = checkpoint.load_state(tmp_path, 5)
    assert loaded.extra["train_state"] == {"step": 5, "history": [{"epoch": 1}]}
    g = torch.load(tmp_path / "G_5.pth", weights_only=True)
    assert {"model", "iteration", "optimizer", "learning_rate"} <= set(g) and g["iteration"] == 2
    for name, value in models.generator.state_dict().items():  # the weights as they were at the save
        if name in loaded.generator and value.dtype.is_floating_point:
            torch.testing.assert_close(loaded.generator[name] + 1.0, value)
    assert not list(tmp_path.glob(".*tmp"))


def test_the_held_best_is_written_before_the_next_state_and_at_the_end(tmp_path: Path) -> None:
    _, models = _models()
    best_on_disk_when_written: list[bool] = []
    saver = StateSaver(
        tmp_path, 3, CPU, on_written=lambda _: best_on_disk_when_written.append((tmp_path / "G_best.pth").is_file())
    )
    saver.hold_best(models.generator, epoch=1, step=3, learning_rate=1e-4)
    assert not (tmp_path / "G_best.pth").exists()  # held on the host until the next save
    saver.save(models, 2, 6, 1e-4, _extra(6))
    saver.wait()
    assert best_on_disk_when_written == [True]
    assert torch.load(tmp_path / "G_best.pth", weights_only=True)["iteration"] == 1

    saver.hold_best(models.generator, epoch=3, step=9, learning_rate=1e-4)
    best = saver.best_generator()
    assert best is not None and best.epoch == 3 and not best.written
    saver.close()
    assert torch.load(tmp_path / "G_best.pth", weights_only=True)["iteration"] == 3
    assert not (tmp_path / "D_best.pth").exists()  # the best state is the generator alone


def test_a_kill_during_a_background_write_leaves_the_previous_state_loadable(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        import torch
        from rvc.train.models import build_models
        from rvc.train.saver import StateSaver
        from tests.fake_experiment import tiny_config

        models = build_models(tiny_config(), torch.device("cpu"))
        saver = StateSaver(Path({str(folder)!r}), 3, torch.device("cpu"))
        saver.save(models, 1, 1, 1e-4, {{"train_state": {{"step": 1}}}})
        saver.wait()
        real_fsync = os.fsync
        def slow_fsync(fd):  # every file of the next state lingers, written but not yet renamed
            time.sleep(2)
            real_fsync(fd)
        os.fsync = slow_fsync
        saver.save(models, 2, 2, 1e-4, {{"train_state": {{"step": 2}}}})
        print("saving", flush=True)
        time.sleep(60)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "saving"
        deadline = time.monotonic() + 30
        while not list(folder.glob(".G_2.pth.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(folder.glob(".G_2.pth.*.tmp")), "the second state's write never started"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    assert checkpoint.complete_steps(folder) == [1]
    assert checkpoint.load_state(folder, 1).extra["train_state"]["step"] == 1
    assert checkpoint.prune_states(folder, 3) == [] and not list(folder.glob(".*tmp"))  # strays go at the next save


# --- how steps run ---------------------------------------------------------------------------------


def test_step_modes_follow_what_a_compile_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(graph_module, "compile_available", lambda: True)
    assert choose_step_mode("auto", CPU, 10_000, 240.0).mode == "eager"
    assert choose_step_mode("eager", cuda, 10_000, 240.0).mode == "eager"
    assert choose_step_mode("compiled", cuda, 10, 240.0).mode == "compiled"  # asked for: up front
    short = choose_step_mode("auto", cuda, 500, 240.0)
    assert short.mode == "graph" and not short.compile_in_background
    # 5,000 steps (a default 200-epoch run of ten minutes): graphed at once, compiled meanwhile
    long_run = choose_step_mode("auto", cuda, 5_000, 200.0)
    assert long_run.mode == "graph" and long_run.compile_in_background and "background" in long_run.why
    # a warm cache makes the compile pay sooner
    assert choose_step_mode("auto", cuda, 1_500, 30.0).compile_in_background
    assert not choose_step_mode("auto", cuda, 1_500, 240.0).compile_in_background
    # several processes must switch together: they compile up front, when that repays the wait
    assert choose_step_mode("auto", cuda, 50_000, 240.0, world_size=2).mode == "compiled"
    assert choose_step_mode("auto", cuda, 5_000, 240.0, world_size=2).mode == "graph"
    monkeypatch.setattr(graph_module, "compile_available", lambda: False)
    assert not choose_step_mode("auto", cuda, 50_000, 30.0).compile_in_background
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        choose_step_mode("graph", CPU, 10, 240.0)
    with pytest.raises(UserError, match="unknown step mode"):
        choose_step_mode("turbo", cuda, 10, 240.0)


def test_a_compile_pays_only_when_it_finishes_with_steps_to_spare() -> None:
    assert not worth_compiling(steps_left=1000, graph_steps_per_s=20, expected_compile_s=60)  # ends first
    assert not worth_compiling(steps_left=1300, graph_steps_per_s=20, expected_compile_s=60)  # 5 s left: too few
    assert worth_compiling(steps_left=5000, graph_steps_per_s=20, expected_compile_s=200)


def test_measured_compile_times_are_kept_per_setting_and_a_damaged_record_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "compile_times.json"
    first, second = CompileRecord(path, "torch 2 | H100 | bf16-tail"), CompileRecord(path, "torch 2 | H100 | fp32")
    assert first.seconds() is None
    first.write(212.4)
    second.write(35.0)
    assert first.seconds() == 212.4 and second.seconds() == 35.0
    path.write_text("{not json")
    assert first.seconds() is None
    first.write(30.0)  # a damaged record is replaced, not a reason to fail a run
    assert first.seconds() == 30.0


def test_the_compiled_step_takes_over_the_run_exactly_where_the_plain_one_was(tmp_path: Path) -> None:
    # Dynamo's tracing and AOTAutograd as on the GPU, PyTorch's kernels to run them (no Inductor
    # C++ build on this CPU), no CUDA graph: what a GPU adds is in test_train_gpu.py.
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs, train_clips=4, validation_clips=1)
    config, models = _models(seed=0)
    data = load_training_set(experiment, "train", config.model.sample_rate, config.model.hop_length)
    spectrogram = Spectrogram.for_model(config.model)
    metrics = StepMetrics(CPU)
    live = TrainStep(config, models, spectrogram, data, metrics)
    torch.manual_seed(1)
    for i in range(2):
        live(torch.tensor([[i % 4, (i + 1) % 4]]))
    models.scheduler_g.step()
    models.scheduler_d.step()

    with torch.random.fork_rng():
        _, spare = _models(seed=7)  # other weights: the hand-over must bring the run's own
    set_capturable(spare, CPU, True)
    compiling = BackgroundCompile(
        TrainStep(config, spare, spectrogram, data, StepMetrics(CPU)), torch.tensor([[0, 1]]), backend="aot_eager"
    )
    before = copy.deepcopy(models.generator.state_dict())
    compiling.start()
    deadline = time.monotonic() + 300
    while compiling.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert compiling.ready(), compiling.error
    assert compiling.seconds > 0
    for name, value in models.generator.state_dict().items():  # the dry steps trained nothing of the run's
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)

    reference = copy.deepcopy(models)  # where the plain step would go on from
    metrics.read()
    handed, handed_models, seconds = compiling.hand_over(models, metrics, skipped_steps=0, graphed=False)
    assert seconds >= 0 and handed_models is spare and handed.metrics is metrics
    assert spare.scheduler_g.last_epoch == models.scheduler_g.last_epoch
    assert float(spare.optimizer_g.param_groups[0]["lr"]) == pytest.approx(
        float(models.optimizer_g.param_groups[0]["lr"])
    )
    for name, value in models.generator.state_dict().items():
        torch.testing.assert_close(spare.generator.state_dict()[name], value, rtol=0, atol=0)

    reference_metrics = StepMetrics(CPU)
    plain = TrainStep(config, reference, spectrogram, data, reference_metrics)
    for step in (plain, handed):
        torch.manual_seed(2)
        for i in range(2):
            step(torch.tensor([[(i + 2) % 4, (i + 3) % 4]]))
    expected, _, _ = reference_metrics.read()
    got, _, _ = metrics.read()
    for name in METRIC_NAMES:  # the moments and step counts came along: the updates agree
        assert got[name] == pytest.approx(expected[name], rel=1e-4, abs=1e-6), name

"""What keeps a run's wall time down without giving up what protects it: saves written in the
background (complete, atomic, the previous state loadable after a kill mid-write), and how steps
run chosen by what a compile costs here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from rvc.errors import UserError
from rvc.experiment import checkpoints as checkpoint
from rvc.train import graph as graph_module
from rvc.train.compile_cost import CostRecord, ModeCost
from rvc.train.events import CheckpointEvent
from rvc.train.graph import choose_step_mode
from rvc.train.models import Models, build_models
from rvc.train.precision import PLANS
from rvc.train.saver import StateSaver
from tests.fake_experiment import tiny_config

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
    written: list[CheckpointEvent] = []
    saver = StateSaver(tmp_path, keep_last=2, device=CPU, on_written=written.append)
    extra = _extra(5)
    seconds = saver.save(models, epoch=2, step=5, learning_rate=1e-4, extra=extra)
    extra["train_state"]["history"].append({"epoch": 2})  # the trainer goes on changing its own copy
    with torch.no_grad():
        for parameter in models.generator.parameters():
            parameter.add_(1.0)  # so does the next step
    saver.close()

    assert seconds >= 0 and checkpoint.complete_steps(tmp_path) == [5]
    assert written[0].step == 5 and written[0].epoch == 2 and written[0].write_s >= 0
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


def test_a_new_best_during_a_write_does_not_wait_for_it_and_each_state_keeps_its_own_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, models = _models()
    writing, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def held_fsync(fd: int) -> None:  # the state's files wait here until the test lets them go
        if threading.current_thread() is not threading.main_thread():
            writing.set()
            release.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", held_fsync)
    saver = StateSaver(tmp_path, 3, CPU)
    saver.hold_best(models.generator, epoch=1, step=3, learning_rate=1e-4)
    first_best = {k: v.clone() for k, v in checkpoint.plain_state(models.generator).items()}
    saver.save(models, 2, 6, 1e-4, _extra(6))
    assert writing.wait(30), "the write never started"

    with torch.no_grad():
        for parameter in models.generator.parameters():
            parameter.add_(1.0)
    started = time.monotonic()
    saver.hold_best(models.generator, epoch=3, step=9, learning_rate=1e-4)  # while G_best.pth is written
    assert time.monotonic() - started < 5  # it did not wait for the write (the write waits 30 s)
    release.set()
    saver.wait()

    written = torch.load(tmp_path / "G_best.pth", weights_only=True)
    assert written["iteration"] == 1  # the best of the state being written, not the newer one
    expected = checkpoint.rvc_payload(first_best, {}, 1, 3, 1e-4)["model"]
    assert written["model"].keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(written["model"][name], value)
    best = saver.best_generator()
    assert best is not None and best.epoch == 3 and not best.written
    saver.close()
    assert torch.load(tmp_path / "G_best.pth", weights_only=True)["iteration"] == 3


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
        process.communicate(timeout=30)  # reaps it and closes its pipe

    assert checkpoint.complete_steps(folder) == [1]
    assert checkpoint.load_state(folder, 1).extra["train_state"]["step"] == 1
    assert checkpoint.prune_states(folder, 3) == [] and not list(folder.glob(".*tmp"))  # strays go at the next save


# --- how steps run ---------------------------------------------------------------------------------


def test_auto_takes_the_step_mode_that_finishes_soonest_by_what_each_cost_here(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(graph_module, "compile_available", lambda: True)
    graph_20 = {"graph": ModeCost(15.0, 20.0)}
    assert choose_step_mode("auto", CPU, 10_000, {}).mode == "eager"
    assert choose_step_mode("eager", cuda, 10_000, graph_20).mode == "eager"
    assert choose_step_mode("compiled", cuda, 10, graph_20).mode == "compiled"  # asked for
    assert choose_step_mode("regional", cuda, 10, graph_20).mode == "regional"
    first = choose_step_mode("auto", cuda, 5_000, {})  # nothing on record: the graph is captured and timed first
    assert first.mode == "graph" and not first.final
    # 5,000 steps (a default 200-epoch run of ten minutes) at 20 steps/s: 250 s graphed, against a cold
    # compile's 200 s + 179 s; a warm one (40 s) finishes sooner
    cold = choose_step_mode("auto", cuda, 5_000, graph_20)
    assert cold.final and cold.mode == "graph" and "compiled ~379 s" in cold.why and "cold compile" in cold.why
    warm = choose_step_mode("auto", cuda, 5_000, graph_20 | {"compiled": ModeCost(40.0, None)})
    assert warm.mode == "compiled" and "measured here: 40 s" in warm.why
    assert choose_step_mode("auto", cuda, 50_000, graph_20).mode == "compiled"  # a pretrain maker's run
    # a slower GPU (a T4's graphed step at 3 steps/s) repays even a cold compile within 5,000 steps
    assert choose_step_mode("auto", cuda, 5_000, {}, graph_steps_per_s=3.0).mode == "compiled"
    # a compiled step measured here slower than the H100's speed-up does not repay a warm compile
    slow_compiled = graph_20 | {"compiled": ModeCost(40.0, 21.0)}
    assert choose_step_mode("auto", cuda, 5_000, slow_compiled).mode == "graph"
    # regional compilation is weighed once it has run here, preparation and speed both measured
    regional = graph_20 | {"regional": ModeCost(60.0, 27.0)}
    assert choose_step_mode("auto", cuda, 5_000, regional).mode == "regional"
    assert choose_step_mode("auto", cuda, 5_000, graph_20 | {"regional": ModeCost(60.0, None)}).mode == "graph"
    monkeypatch.setattr(graph_module, "compile_available", lambda: False)
    assert choose_step_mode("auto", cuda, 50_000, {}).mode == "graph"
    with pytest.raises(UserError, match="needs Triton"):
        choose_step_mode("regional", cuda, 10, {})
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        choose_step_mode("graph", CPU, 10, {})
    with pytest.raises(UserError, match="unknown step mode"):
        choose_step_mode("turbo", cuda, 10, {})


def test_auto_times_the_graph_first_and_moves_to_a_compile_only_where_it_finishes_sooner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ready_step's order on one GPU, with the preparations and their timings stood in for (CUDA graphs
    need a GPU; tests/test_train_gpu.py runs them): the graph first, its speed kept, a compile where the
    sum says so, the graph again where that compile fails."""
    monkeypatch.setattr(graph_module, "compile_available", lambda: True)
    speeds = {"graph": 3.0, "compiled": 4.5, "regional": 4.0}  # a slow GPU: a cold compile pays
    failing: set[str] = set()
    prepared: list[str] = []

    class Timed(graph_module.GraphedStep):
        def __init__(self, mode: str) -> None:
            self.mode, self.graph = mode, object()

        def steps_per_s(self, skipped_before: int = 0, replays: int = 10) -> float:
            return speeds[self.mode]

    def prepare(step, choice, world_size, skipped, log):  # type: ignore[no-untyped-def]
        prepared.append(choice.mode)
        if choice.mode in failing:
            return graph_module.PreparedStep(step, "eager", f"{choice.mode} failed")
        return graph_module.PreparedStep(Timed(choice.mode), choice.mode, choice.why, 10.0)

    monkeypatch.setattr(graph_module, "prepare_step", prepare)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "H100")
    config = tiny_config(batch_size=2)
    step = type("Step", (), {"config": config, "device": torch.device("cuda"), "precision": PLANS["bf16-tail"]})()
    records = tmp_path / "compile_times.json"

    def ready(steps: int, world_size: int = 1) -> graph_module.PreparedStep:
        prepared.clear()
        return graph_module.ready_step(step, world_size, steps, 0, records, lambda line: None)  # type: ignore[arg-type]

    first = ready(5_000)
    assert prepared == ["graph", "compiled"] and first.mode == "compiled" and first.prepare_s == 20.0
    record = CostRecord.for_setting(records, config, "bf16-tail", torch.device("cuda"))
    assert record.costs() == {"graph": ModeCost(10.0, 3.0), "compiled": ModeCost(10.0, 4.5)}
    assert ready(5_000).mode == "compiled" and prepared == ["compiled"]  # judged by the record: no graph first
    assert ready(10).mode == "graph" and prepared == ["graph"]  # too few steps to repay even a warm compile
    records.unlink()
    failing.add("compiled")
    fell_back = ready(5_000)
    assert prepared == ["graph", "compiled", "graph"] and fell_back.mode == "graph"
    assert "compiled failed" in fell_back.why
    records.unlink()
    several = ready(5_000, world_size=2)  # every rank chooses alike: nothing timed, nothing written
    assert prepared == ["graph"] and several.steps_per_s is None and not records.exists()


def test_measured_step_costs_are_kept_per_setting_and_a_damaged_record_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "compile_times.json"
    first, second = CostRecord(path, "torch 2 | H100 | bf16-tail"), CostRecord(path, "torch 2 | H100 | fp32")
    assert first.costs() == {}
    first.write("compiled", 212.4, 28.7)
    second.write("graph", 15.0, 19.9)
    assert first.costs() == {"compiled": ModeCost(212.4, 28.7)} and second.costs() == {"graph": ModeCost(15.0, 19.9)}
    first.write("compiled", 38.0, None)  # a compile whose step was not timed keeps the speed on record
    assert first.costs() == {"compiled": ModeCost(38.0, 28.7)}
    path.write_text(json.dumps({first.key: {"compile_s": 41.5}, second.key: {"graph": {"steps_per_s": "fast"}}}))
    assert first.costs() == {"compiled": ModeCost(41.5, None)}  # a record written before speeds were kept
    assert second.costs() == {"graph": ModeCost(None, None)}  # a hand-edited value is no measure
    path.write_text("{not json")
    assert first.costs() == {}
    first.write("graph", 14.0, 20.1)  # a damaged record is replaced, not a reason to fail a run
    assert first.costs() == {"graph": ModeCost(14.0, 20.1)}


def test_the_cuda_libraries_are_found_in_the_wheels_and_read_through(tmp_path, monkeypatch) -> None:
    from rvc.train import warm_libraries

    nvidia, torch_dir = tmp_path / "nvidia", tmp_path / "torch"
    wanted = [
        nvidia / "cudnn/lib/libcudnn_engines_precompiled.so.9",
        nvidia / "cu13/lib/libcublasLt.so.13",
        nvidia / "cu13/lib/libcufft.so.12",
        torch_dir / "lib/libtorch_cuda.so",
    ]
    unwanted = [
        nvidia / "cu13/lib/libnvrtc.alt.so.13",
        nvidia / "cudnn/lib/libcudnn_adv.so.9",
        nvidia / "nccl/lib/libnccl.so.2",
    ]
    for i, path in enumerate(wanted + unwanted):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (1000 * (i + 1)))
    dirs = {"nvidia": [nvidia], "torch": [torch_dir]}
    monkeypatch.setattr(warm_libraries, "_package_dirs", lambda name: dirs[name])
    files = warm_libraries.cuda_library_files()
    assert set(files) == set(wanted) and files[0] == wanted[-1]  # largest first
    assert warm_libraries.read_through([*files, tmp_path / "gone.so"]) == sum(p.stat().st_size for p in wanted)

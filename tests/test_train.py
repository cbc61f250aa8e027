"""The trainer as users run it: the real process, its progress events, its files, stop and resume."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rvc.experiment import Experiment
from rvc.experiment import checkpoints as checkpoint
from rvc.experiment.config_file import load_config, save_config
from rvc.train.progress import parse_line, read_events
from tests.fake_experiment import make_extracted_experiment, tiny_config, write_tiny_config

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        # a GPU test that runs as if on a smaller card (rvc.devices.MEMORY_CAP_VARIABLE)
        **{name: os.environ[name] for name in ("RVC_GPU_MEMORY_GIB",) if name in os.environ},
    }


def _trainer(logs: Path, *extra: str, device: str = "cpu") -> list[str]:
    """The trainer's module and arguments (after the interpreter or a launcher)."""
    return [
        sys.executable,
        "-m",
        "rvc.train",
        "--experiment",
        "voice",
        "--device",
        device,
        "--logs-dir",
        str(logs),
        *extra,
    ]


def _run(logs: Path, timeout: float = 240, device: str = "cpu") -> tuple[int, list[dict], str]:
    result = subprocess.run(_trainer(logs, device=device), capture_output=True, text=True, env=_env(), timeout=timeout)
    return result.returncode, _records(result.stdout), result.stderr


def _records(stdout: str) -> list[dict]:
    """The progress events a trainer printed, as the JSON objects on the wire."""
    return [e.to_json() for line in stdout.splitlines() if (e := parse_line(line))]


def _start(logs: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(_trainer(logs), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())


def _wait_for(process: subprocess.Popen[str], kind: str, timeout: float = 180) -> list[dict]:
    """Read the process's output until an event of ``kind``; return the events seen."""
    events = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"trainer exited before a {kind!r} event: {events[-3:]}")
        event = parse_line(line)
        if event:
            events.append(event.to_json())
            if event.kind == kind:
                return events
    raise AssertionError(f"no {kind!r} event within {timeout} s")


def test_training_run_reports_progress_and_writes_states(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    write_tiny_config(experiment, epochs=3, keep_last=2)

    code, events, stderr = _run(logs)

    assert code == 0, stderr
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert {"step", "epoch", "checkpoint", "best", "export"} <= set(kinds)
    exports = {e["which"]: e["path"] for e in events if e["kind"] == "export"}
    assert exports == {"latest": str(experiment.root / "voice.pth"), "best": str(experiment.root / "voice_best.pth")}
    start = events[0]
    assert start["clips"] == 6 and start["validation_clips"] == 2 and start["total_steps"] == 9
    steps = [e for e in events if e["kind"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 10))
    for step in steps:
        assert set(step["metrics"]) >= {"loss/g/total", "loss/d/total", "loss/g/mel", "loss/g/kl", "loss/g/fm"}
        assert step["it_s"] > 0 and step["eta_s"] >= 0 and step["next_save_epoch"] >= step["epoch"]
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and all("loss/val/mel" in e["validation"] for e in epochs)
    # progress.jsonl holds exactly what stdout carried
    saved, _ = read_events(experiment.progress_jsonl)
    assert [e.to_json() for e in saved] == events
    # keep-last-N holds, the best state is kept apart, no temporaries are left
    folder = experiment.root / "checkpoints"
    assert checkpoint.complete_steps(folder) == [6, 9]
    assert (folder / "G_best.pth").is_file() and not list(folder.glob(".*tmp"))
    g = torch.load(folder / "G_9.pth", weights_only=True)
    assert {"model", "iteration", "optimizer", "learning_rate"} <= set(g) and g["iteration"] == 3 and g["step"] == 9
    assert any(k.endswith("weight_g") for k in g["model"]) and not any("parametrizations" in k for k in g["model"])


def test_tensorboard_gets_rvc_tags(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs, train_clips=4, validation_clips=1)
    write_tiny_config(experiment, epochs=1)
    code, _, stderr = _run(logs)
    assert code == 0, stderr

    accumulator = EventAccumulator(str(experiment.root / "tensorboard"))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    expected = {
        "loss/g/total",
        "loss/d/total",
        "loss/g/mel",
        "loss/g/kl",
        "loss/g/fm",
        "learning_rate",
        "grad_norm_g",
        "grad_norm_d",
        "loss/val/mel",
    }
    assert expected <= tags
    assert {"slice/mel_org", "slice/mel_gen"} <= set(accumulator.Tags()["images"])
    assert "audio/validation" in accumulator.Tags()["audio"]  # the held-out pass's first clip, at the save


def test_sigterm_saves_and_resume_continues_the_step_count(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    write_tiny_config(experiment, epochs=200, save_every=100)
    process = _start(logs)
    events = _wait_for(process, "step")
    events += _wait_for(process, "step")
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and time.monotonic() - started < 20
    tail = _records(rest)
    assert tail[-1]["kind"] == "done" and tail[-1]["stopped"] is True
    saved_step = tail[-1]["step"]
    assert saved_step in checkpoint.complete_steps(experiment.root / "checkpoints")

    config = load_config(experiment)
    config.train.epochs = max(2, saved_step // 3 + 2)
    save_config(experiment, config)
    code, events, stderr = _run(logs)
    assert code == 0, stderr
    assert events[0]["start_step"] == saved_step
    assert next(e for e in events if e["kind"] == "step")["step"] == saved_step + 1
    # resumed mid-epoch at the next batch: the run ends exactly at epochs x steps per epoch
    assert events[-1]["kind"] == "done" and events[-1]["step"] == config.train.epochs * 3


def test_kill_9_leaves_the_newest_complete_state_loadable(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    write_tiny_config(experiment, epochs=200, save_every=1, keep_last=2)
    process = _start(logs)
    _wait_for(process, "checkpoint")
    _wait_for(process, "step")
    process.kill()
    process.communicate(timeout=30)  # waits, and closes the pipe (wait() alone leaves it to a ResourceWarning)

    folder = experiment.root / "checkpoints"
    newest = checkpoint.complete_steps(folder)[-1]
    loaded = checkpoint.load_state(folder, newest)
    assert loaded.extra["train_state"]["step"] == newest
    config = load_config(experiment)
    config.train.epochs = newest // 3 + 1
    save_config(experiment, config)
    code, events, stderr = _run(logs)
    assert code == 0, stderr
    assert events[0]["start_step"] == newest


def test_a_nan_in_a_batch_is_skipped_and_reported(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    poisoned = experiment.clip_features("clip-0002")
    features = np.load(poisoned)
    features[3, :] = np.nan
    np.save(poisoned, features)
    write_tiny_config(experiment, epochs=2)

    result = subprocess.run(_trainer(logs), capture_output=True, text=True, env=_env(), timeout=240)

    assert result.returncode == 0, result.stderr
    events = _records(result.stdout)
    done = events[-1]
    assert done["kind"] == "done" and done["skipped_steps"] == 2  # the poisoned clip is in one batch per epoch
    assert f"warning: {poisoned} holds 768 NaN" in result.stdout  # named when the clips are loaded
    steps = [e for e in events if e["kind"] == "step"]
    assert all(v is None or np.isfinite(v) for e in steps for v in e["metrics"].values())
    state = checkpoint.load_state(experiment.root / "checkpoints", done["step"])
    assert all(torch.isfinite(t).all() for t in state.generator.values())


def test_the_loss_falls_on_a_tiny_overfit_set(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs, train_clips=2, validation_clips=1)
    write_tiny_config(experiment, epochs=40, batch_size=2, save_every=40, lr=1e-3)
    code, events, stderr = _run(logs)
    assert code == 0, stderr
    mel = [e["metrics"]["loss/g/mel"] for e in events if e["kind"] == "step"]
    assert np.mean(mel[-5:]) < 0.85 * np.mean(mel[:5])


def test_a_pretrain_of_another_sample_rate_is_refused_by_name(tmp_path: Path) -> None:
    from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
    from rvc.models.weights import to_rvc_spelling

    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    wrong = tiny_config(sample_rate=48000)
    g_path = tmp_path / "f0G48k.pth"
    g_state = to_rvc_spelling(SynthesizerTrnMs768NSFsid(wrong.model).state_dict())
    torch.save({"model": g_state, "iteration": 1, "optimizer": {}, "learning_rate": 1e-4}, g_path)
    write_tiny_config(experiment, pretrained_g=str(g_path), pretrained_d=str(g_path))

    code, events, _ = _run(logs)

    assert code == 2
    error = next(e for e in events if e["kind"] == "error")["message"]
    assert "f0G48k.pth" in error and "48k" in error and "dec.ups" in error


def test_config_cli_changes_only_the_given_fields(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    write_tiny_config(experiment, epochs=3, batch_size=2)
    command = [
        sys.executable,
        "-m",
        "rvc",
        "--logs-dir",
        str(logs),
        "config",
        "--experiment",
        "voice",
        "--epochs",
        "7",
        "--lr-scheme",
        "cosine",
        "--auto-stop",
        "true",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    config = json.loads(experiment.config_json.read_text())
    assert config["train"]["epochs"] == 7 and config["train"]["lr_scheme"] == "cosine"
    assert config["train"]["auto_stop"] is True and config["train"]["batch_size"] == 2
    assert config["model"]["hidden_channels"] == 16  # the tiny model stays
    assert config["data"]["train_clips"] == 6 and config["data"]["validation_clips"] == 2


def test_two_gloo_processes_train_in_step_through_a_c10d_rendezvous(tmp_path: Path) -> None:
    # What several hosts run (README), on one: torchrun --nnodes with the c10d rendezvous.
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs, train_clips=8)
    write_tiny_config(experiment, epochs=2, batch_size=2)
    port = 29500 + os.getpid() % 1000
    rendezvous = ["--nnodes", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}"]
    launcher = [sys.executable, "-m", "torch.distributed.run", *rendezvous, "--nproc-per-node", "2"]
    result = subprocess.run([*launcher, *_trainer(logs)[1:]], capture_output=True, text=True, env=_env(), timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    events = _records(result.stdout)
    start = events[0]
    assert start["world_size"] == 2 and start["steps_per_epoch"] == 2  # 8 clips / (2 ranks x batch 2)
    done = events[-1]
    assert done["kind"] == "done" and done["step"] == 4
    assert done["ranks_agree"] is True  # both ranks hold the same weights after 4 steps
    assert checkpoint.complete_steps(Experiment(logs, "voice").root / "checkpoints")[-1] == 4


def test_auto_stop_ends_every_process_of_a_ddp_run(tmp_path: Path) -> None:
    # Only rank 0 validates; the others must stop with it, not wait in the next all-reduce.
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs, train_clips=8)
    write_tiny_config(experiment, epochs=4, batch_size=2, auto_stop=True, overtrain_patience=0)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command = [*launcher, "--master-port", str(29500 + (os.getpid() + 1) % 1000), *_trainer(logs)[1:]]
    result = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    events = _records(result.stdout)
    done = events[-1]
    assert done["kind"] == "done" and done["epoch"] == 1 and done["stopped_early"]


@pytest.mark.parametrize("scheme", ["exponential", "multistep", "cosine"])
def test_lr_schemes(scheme: str) -> None:
    from rvc.config.train import TrainConfig
    from rvc.train.schedule import lr_factor

    config = TrainConfig(lr_scheme=scheme, lr_milestones=[2, 4], cosine_period=4, cosine_restart_decay=0.5)
    factors = [lr_factor(config)(epoch) for epoch in range(9)]
    assert factors[0] == pytest.approx(1.0)
    if scheme == "exponential":
        assert factors[3] == pytest.approx(0.999875**3)
    if scheme == "multistep":
        assert factors[1:6] == pytest.approx([1.0, 0.5, 0.5, 0.25, 0.25])
    if scheme == "cosine":
        assert (
            factors[2] < factors[1] < factors[0]
            and factors[4] == pytest.approx(0.5)
            and factors[8] == pytest.approx(0.25)
        )


def test_steps_that_keep_diverging_roll_back_with_a_lower_lr_then_stop(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    write_tiny_config(experiment, epochs=1)
    assert _run(logs)[0] == 0
    for clip in (f"clip-{i:04d}" for i in range(6)):
        # Finite on disk (an all-NaN file is refused when it loads), infinite in the fp16 training set.
        np.save(experiment.clip_features(clip), np.full_like(np.load(experiment.clip_features(clip)), 1e30))
    config = load_config(experiment)
    config.train.epochs = 20
    save_config(experiment, config)

    code, events, _ = _run(logs)

    assert code == 3
    rollbacks = [e for e in events if e["kind"] == "error" and e.get("recoverable")]
    starts = [e for e in events if e["kind"] == "start"]
    assert len(rollbacks) == 4 and len(starts) == 4
    assert "rolling back to step" in rollbacks[0]["message"] and "diverged" in events[-1]["message"]
    # each restart resumes from the state the previous run rolled back to
    assert [s["start_step"] for s in starts[1:]] == [r["rollback_to"] for r in rollbacks[:-1]]
    newest = checkpoint.complete_steps(experiment.root / "checkpoints")[-1]
    assert newest == rollbacks[-1]["rollback_to"]
    state = checkpoint.load_state(experiment.root / "checkpoints", newest)
    assert state.extra["train_state"]["lr_scale"] == pytest.approx(0.5**4)
    # each restart trains at half the learning rate of the one before (not compounded twice)
    first_lrs = [next(e for e in events[events.index(start) :] if e["kind"] == "step")["lr"] for start in starts]
    for before, after in itertools.pairwise(first_lrs):
        assert after / before == pytest.approx(0.5, rel=1e-2)
    assert all(torch.isfinite(t).all() for t in state.generator.values())


def test_multiscale_mel_loss_trains_and_is_zero_for_identical_audio(tmp_path: Path) -> None:
    from rvc.train.mel import MultiScaleMel

    audio = torch.randn(2, 12800)
    loss = MultiScaleMel(40000).loss(audio, audio)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    assert float(MultiScaleMel(40000).loss(audio, 0.5 * audio)) > 0.1

    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs, train_clips=2, validation_clips=1)
    write_tiny_config(experiment, epochs=1, multiscale_mel=True)
    code, events, stderr = _run(logs)
    assert code == 0, stderr
    assert all(np.isfinite(e["metrics"]["loss/g/mel"]) for e in events if e["kind"] == "step")


def test_mlflow_asked_for_but_missing_warns_and_trains(tmp_path: Path) -> None:
    hidden = tmp_path / "no_mlflow" / "mlflow"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('mlflow is hidden for this test')\n")
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs, train_clips=2, validation_clips=1)
    write_tiny_config(experiment, epochs=1, mlflow=True)
    env = _env() | {"PYTHONPATH": f"{hidden.parent}{os.pathsep}{REPO}"}
    result = subprocess.run(_trainer(logs), capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "mlflow is not installed (pip install mlflow)" in result.stdout


def test_mlflow_gets_the_training_scalars(tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="mlflow-skinny is in requirements-dev.txt")
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs, train_clips=2, validation_clips=1)
    write_tiny_config(experiment, epochs=2, mlflow=True)
    store = tmp_path / "mlruns"
    env = _env() | {"MLFLOW_TRACKING_URI": store.as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"}
    result = subprocess.run(_trainer(logs), capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    metric_files = {p.name for p in store.rglob("metrics/*")}
    assert {"loss_g_total", "loss_d_total", "loss_g_mel", "learning_rate", "loss_val_mel"} <= metric_files
    assert any(p.name == "train.batch_size" for p in store.rglob("params/*"))


def test_auto_stop_ends_the_run_when_held_out_loss_stops_improving(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs)
    # a vanishing learning rate: the held-out loss cannot improve after the first epoch
    write_tiny_config(experiment, epochs=30, lr=1e-12, overtrain_patience=2, auto_stop=True, save_every=100)
    code, events, stderr = _run(logs)
    assert code == 0, stderr
    warning = next(e for e in events if e["kind"] == "overtrain")
    assert warning["best_epoch"] == 1 and warning["epochs_since_best"] == 2 and warning["auto_stop"] is True
    done = events[-1]
    assert done["kind"] == "done" and done["epoch"] == 3 and done["stopped_early"] is True
    assert done["overtrain"]["overtraining"] is True
    assert checkpoint.complete_steps(experiment.root / "checkpoints") == [9]  # the state where it stopped
    assert (experiment.root / "voice_best.pth").is_file()


def test_config_import_from_another_experiment(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    source = make_extracted_experiment(logs, name="first")
    write_tiny_config(source, epochs=11, batch_size=3, lr_scheme="multistep", lr_milestones=[5])
    target = make_extracted_experiment(logs, name="second", train_clips=4, validation_clips=1)
    command = [
        sys.executable,
        "-m",
        "rvc",
        "--logs-dir",
        str(logs),
        "config",
        "--experiment",
        "second",
        "--import-from",
        "first",
        "--epochs",
        "12",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    config = json.loads(target.config_json.read_text())
    assert config["train"]["epochs"] == 12 and config["train"]["batch_size"] == 3
    assert config["train"]["lr_milestones"] == [5] and config["data"]["train_clips"] == 4


def test_validate_accepts_a_fitting_pretrain_in_rvc_spelling(tmp_path: Path) -> None:
    from rvc.config.validate import validate
    from rvc.models.discriminator import MultiPeriodDiscriminatorV2
    from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
    from rvc.models.weights import to_rvc_spelling

    config = tiny_config()
    paths = {}
    for name, model in (
        ("G", SynthesizerTrnMs768NSFsid(config.model)),
        ("D", MultiPeriodDiscriminatorV2(divisor=config.model.discriminator_divisor)),
    ):
        paths[name] = tmp_path / f"f0{name}40k.pth"
        state = to_rvc_spelling(model.state_dict())
        torch.save({"model": state, "iteration": 1, "optimizer": {}, "learning_rate": 1e-4}, paths[name])
    config.train.pretrained_g, config.train.pretrained_d = str(paths["G"]), str(paths["D"])
    assert validate(config).errors == []
    config.train.pretrained_g, config.train.pretrained_d = str(paths["D"]), str(paths["G"])
    assert len(validate(config).errors) == 2


def test_a_streamed_training_set_trains_exactly_as_one_held_in_memory(tmp_path: Path) -> None:
    losses = {}
    for placement in ("gpu", "stream"):
        logs = tmp_path / placement / "logs"
        experiment = make_extracted_experiment(logs)
        write_tiny_config(experiment, epochs=2, data_placement=placement)
        code, events, stderr = _run(logs)
        assert code == 0, stderr
        assert events[0]["data_placement"] == {"gpu": "resident", "stream": "stream"}[placement]
        losses[placement] = [e["metrics"] for e in events if e["kind"] == "step"]
        losses[placement].append(next(e for e in reversed(events) if e["kind"] == "epoch")["validation"])
    assert losses["stream"] == losses["gpu"]

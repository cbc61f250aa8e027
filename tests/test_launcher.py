"""The trainer launcher and the TensorBoard server: real processes, started, watched and stopped."""

from __future__ import annotations

import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace
from rvc.train import launcher
from rvc.train.events import DoneEvent
from rvc.train.progress import read_events
from rvc.train.tensorboard import start_tensorboard
from tests.browser import processes_mentioning
from tests.fake_experiment import make_extracted_experiment, write_tiny_config


def group_members(pgid: int) -> list[int]:
    """Return the live (not zombie) processes of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def wait_for_event(experiment: Experiment, kind: str, timeout: float = 180) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [e.to_json() for e in read_events(experiment.progress_jsonl)[0]]
        if any(event["kind"] == kind for event in events):
            return events
        time.sleep(0.3)
    log = launcher.train_log_path(experiment)
    raise AssertionError(f"no {kind!r} event in {timeout} s; train.log:\n{log.read_text()[-3000:]}")


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "logs", tmp_path / "assets")


def test_train_command_picks_python_or_torchrun(workspace: Workspace) -> None:
    plain = launcher.train_command(workspace, "voice", device="cpu")
    assert plain.argv[:3] == [sys.executable, "-m", "rvc.train"]
    assert plain.argv[plain.argv.index("--device") + 1] == "cpu"
    assert plain.argv[plain.argv.index("--logs-dir") + 1] == str(workspace.logs_dir)

    one_gpu = launcher.train_command(workspace, "voice", gpus=(1,))
    assert one_gpu.argv[one_gpu.argv.index("--device") + 1] == "cuda:1"
    assert "CUDA_VISIBLE_DEVICES" not in one_gpu.env

    two_gpus = launcher.train_command(workspace, "voice", gpus=(2, 3))
    assert two_gpus.argv[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc-per-node=2" in two_gpus.argv
    assert two_gpus.argv[two_gpus.argv.index("--device") + 1] == "cuda"
    assert two_gpus.env["CUDA_VISIBLE_DEVICES"] == "2,3"


def test_bad_gpu_ids_and_names_are_refused(workspace: Workspace) -> None:
    assert launcher.parse_gpu_ids("") == ()
    assert launcher.parse_gpu_ids(" 0, 1 ") == (0, 1)
    with pytest.raises(UserError, match="numbers separated by commas"):
        launcher.parse_gpu_ids("cuda:0")
    with pytest.raises(UserError, match="once"):
        launcher.parse_gpu_ids("1,1")
    with pytest.raises(UserError, match="invalid experiment name"):
        launcher.train_command(workspace, "../escape")


def test_start_refuses_a_second_run_and_stop_saves_and_leaves_no_process(workspace: Workspace) -> None:
    experiment = make_extracted_experiment(workspace.logs_dir)
    write_tiny_config(experiment, epochs=500, log_every_seconds=0.2)
    command = launcher.train_command(workspace, "voice", device="cpu")
    process = launcher.start(workspace, "voice", command)
    try:
        wait_for_event(experiment, "step")
        assert launcher.is_running(experiment)
        assert launcher.running_pid(experiment) == process.pid
        with pytest.raises(UserError, match="already training"):
            launcher.start(workspace, "voice", command)
        # Stop as a restarted app would: without the Popen, through the lock file's pid.
        assert launcher.stop(experiment) is True
    finally:
        launcher.stop(experiment, process, timeout=20)
    assert process.wait(timeout=30) == 0
    assert not launcher.is_running(experiment)
    assert processes_mentioning(str(workspace.logs_dir)) == []
    last = read_events(experiment.progress_jsonl)[0][-1]
    assert isinstance(last, DoneEvent) and last.stopped
    log = launcher.train_log_path(experiment).read_text()
    assert "=== " in log and "saving and stopping" in log
    assert launcher.stop(experiment) is False  # nothing left to stop


def test_stop_kills_a_process_group_that_ignores_sigterm(workspace: Workspace) -> None:
    experiment = workspace.experiment("stubborn")
    experiment.ensure()
    # A parent and a grandchild that both ignore SIGTERM: only the SIGKILL of the group ends them.
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    command = launcher.TrainCommand([sys.executable, "-c", script], {})
    process = launcher.start(workspace, "stubborn", command)
    log = launcher.train_log_path(experiment)
    deadline = time.monotonic() + 60
    while "ready" not in log.read_text() or len(group_members(process.pid)) < 2:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    assert launcher.stop(experiment, process, timeout=2) is True
    assert process.returncode is not None
    deadline = time.monotonic() + 10
    while group_members(process.pid) and time.monotonic() < deadline:  # init reaps the grandchild
        time.sleep(0.1)
    assert group_members(process.pid) == []


def test_torchrun_stop_ends_every_worker(workspace: Workspace) -> None:
    experiment = make_extracted_experiment(workspace.logs_dir, train_clips=8)
    write_tiny_config(experiment, epochs=500, log_every_seconds=0.2)
    command = launcher.train_command(workspace, "voice", device="cpu", processes=2)
    process = launcher.start(workspace, "voice", command)
    try:
        events = wait_for_event(experiment, "step", timeout=240)
        assert events[0]["world_size"] == 2
        assert len(processes_mentioning(str(workspace.logs_dir))) >= 3  # torchrun and its two workers
    finally:
        launcher.stop(experiment, process, timeout=60)
    assert processes_mentioning(str(workspace.logs_dir)) == []
    last = read_events(experiment.progress_jsonl)[0][-1]
    assert isinstance(last, DoneEvent) and last.stopped  # saved, not killed


def test_tensorboard_serves_and_moves_off_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        server = start_tensorboard(tmp_path / "logs", taken, tmp_path / "tb.log")
        try:
            assert server.port != taken
            with urllib.request.urlopen(server.url, timeout=10) as response:
                assert response.status == 200
        finally:
            server.stop()
    assert server.process.poll() is not None
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)

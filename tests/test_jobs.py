"""Stage jobs: the launcher (start, stop of the process tree, kill -9, re-attach), the CLI's progress."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from rvc.cli.argv import option_values, stage_args, stage_parser
from rvc.cli.prepare import options_from_args
from rvc.data.options import PrepareOptions
from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.features.extract import ExtractOptions
from rvc.jobs import launcher, process
from rvc.jobs.state import JobWatch, read_job
from rvc.train.events import JobEndEvent, JobStartEvent, LogEvent, ProgressEvent
from rvc.train.progress import append_event, parse_line, read_events
from tests.browser import processes_mentioning
from tests.fake_experiment import save_tiny_hubert
from tests.synth import harmonic_tone
from tests.test_extract import _fake_prepared
from webui.stage_jobs import StageJobs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "logs", tmp_path / "assets")


def _extract_args(embedder: Path, method: str = "harvest") -> list[str]:
    return ["--experiment", "voice", "--f0", method, "--embedder", str(embedder), "--device", "cpu", "--workers", "1"]


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s")


def test_json_progress_prints_the_events_and_a_plain_run_a_bar_with_an_eta(workspace: Workspace) -> None:
    experiment = workspace.experiment("voice")
    _fake_prepared(experiment, [1.0] * 6)
    embedder = save_tiny_hubert(workspace.assets_dir / "embedders" / "tiny")
    events_file = workspace.logs_dir / "events.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = launcher.stage_command(workspace, "extract", _extract_args(embedder, "pm"), events_file)  # as a job runs
    base = command[: command.index("extract")]  # python -m rvc --logs-dir ... --assets-dir ...
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    events = [event for line in result.stdout.splitlines() if (event := parse_line(line)) is not None]
    start, end = events[0], events[-1]
    assert isinstance(start, JobStartEvent) and start.stage == "extract" and start.experiment == "voice"
    assert "--json-progress" in start.argv and start.pid is not None
    progress = [event for event in events if isinstance(event, ProgressEvent)]
    assert {event.task for event in progress} == {"pitch (pm)", "content (tiny)"}
    last = [event for event in progress if event.task == "pitch (pm)"][-1]
    assert (last.done, last.total, last.unit) == (6, 6, "clip") and last.rate and last.eta_s == 0
    assert any(isinstance(event, LogEvent) and "extracted f0 for 6" in event.message for event in events)
    assert isinstance(end, JobEndEvent) and end.status == "done" and end.message.startswith("features ready")
    assert [e.to_json() for e in read_events(events_file)[0]] == [e.to_json() for e in events]  # the same events

    # Without --json-progress: a tqdm bar on stderr with its ETA ("00:01<00:00"), the summary on stdout
    # (shown by a prepare, which starts in a second where an extract loads torch).
    recordings = workspace.logs_dir.parent / "recordings"
    recordings.mkdir()
    for i in range(3):
        sf.write(recordings / f"take{i}.wav", harmonic_tone(2.0, 16000, f0_start=150.0 + 30 * i, seed=i), 16000)
    prepare = ["prepare", "--experiment", "plain", "--input", str(recordings), "--workers", "1"]
    plain = subprocess.run([*base, *prepare], capture_output=True, text=True, env=env, timeout=300)
    assert plain.returncode == 0, plain.stderr
    assert "@@rvc" not in plain.stdout and "prepared 3 source(s)" in plain.stdout
    assert re.search(r"prepare: 100%.*\d\d:\d\d<\d\d:\d\d", plain.stderr), plain.stderr


def test_a_stopped_extract_job_leaves_no_process_and_the_next_one_continues(workspace: Workspace) -> None:
    experiment = workspace.experiment("voice")
    clips = 60  # harvest on 0.5 s clips, one worker, chunks of 15: ~9 s of pitch, a chunk every ~2 s
    _fake_prepared(experiment, [0.5] * clips)
    embedder = save_tiny_hubert(workspace.assets_dir / "embedders" / "tiny")
    job, child = launcher.start(workspace, "voice", "extract", _extract_args(embedder))
    try:
        start = read_job(job.events)[0].start
        assert start is not None and start.pid == child.pid and start.argv[-2:] == ["--events-file", str(job.events)]
        # One extract at a time on an experiment; a prepare is refused too, naming what runs.
        with pytest.raises(UserError, match="extract is running on experiment 'voice'"):
            launcher.start(workspace, "voice", "prepare", ["--experiment", "voice"])

        # A second registry (a restarted app: no Popen) finds the running job from its events file.
        other = StageJobs(workspace)
        _wait(lambda: any(t.done for t in read_job(job.events)[0].tasks.values()), 120, "no clip done")
        assert other.pick(None) == job and other.pick("voice") == job
        view = other.view(job)
        assert view.status == "running" and "data-task='pitch (harvest)'" in view.html
        assert "--json-progress" in view.log  # the log starts with the command line

        started = time.monotonic()
        assert other.stop(str(job.events), wait=True)  # from the registry that did not start it
        assert time.monotonic() - started < 10  # the pitch worker is killed, not waited for
    finally:
        launcher.stop(job, child, timeout=5)
    state, status = read_job(job.events)
    assert status == "stopped" and state.end is not None and state.end.exit_code == 143
    assert not processes_mentioning(str(workspace.logs_dir))
    done = state.tasks["pitch (harvest)"].done
    assert 0 < done < clips

    # The per-clip cache kept what the stopped job finished (the next run skips those: tests/test_extract.py).
    manifest = json.loads(experiment.extract_manifest.read_text())
    assert sum(1 for entry in manifest["entries"].values() if entry["f0_key"]) == done


def test_a_killed_job_is_seen_dead_with_its_reason(workspace: Workspace) -> None:
    experiment = workspace.experiment("voice")
    _fake_prepared(experiment, [1.0] * 4)
    job, child = launcher.start(workspace, "voice", "extract", _extract_args(workspace.assets_dir / "missing"))
    watch = JobWatch(job.events)
    watch.refresh()
    assert watch.status() == "running"
    os.kill(child.pid, signal.SIGKILL)
    _wait(lambda: watch.status() == "died", 10, "not seen dead")  # no end event, the process gone (a zombie)
    assert "ended without reporting" in watch.died_message()
    code = child.wait()
    launcher.record_exit(job, code)  # what the app that started it writes when it reaps it
    state, status = read_job(job.events)
    assert status == "died" and state.end is not None and "SIGKILL" in state.end.message
    launcher.stop(job, child, timeout=1)


def test_a_job_whose_process_is_gone_reads_as_died_and_a_prepare_is_refused_while_training(
    workspace: Workspace,
) -> None:
    experiment = workspace.experiment("voice")
    experiment.ensure()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    events = experiment.jobs.events("prepare", "20240101-000000-000")
    events.parent.mkdir(parents=True)
    append_event(events, JobStartEvent(stage="prepare", argv=["x"], pid=gone.pid, pid_started=1, experiment="voice"))
    state, status = read_job(events)
    assert status == "died" and state.end is None
    assert launcher.jobs_of(experiment)[0].stage == "prepare"

    import fcntl

    with open(experiment.train_lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(UserError, match="experiment 'voice' is training: prepare would change"):
            launcher.start(workspace, "voice", "prepare", ["--experiment", "voice"])
        launcher.refuse_collision(experiment, "export")  # export only reads: it may run beside training
    assert not experiment.jobs.root.joinpath("prepare").exists()


def test_training_is_refused_while_a_prepare_of_the_experiment_runs(workspace: Workspace) -> None:
    from rvc.train import launcher as train_launcher
    from rvc.train.__main__ import run_trainer
    from tests.fake_experiment import make_extracted_experiment, write_tiny_config

    experiment = make_extracted_experiment(workspace.logs_dir, "busy")
    write_tiny_config(experiment)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the prepare's process
    try:
        events = experiment.jobs.events("prepare", "20240101-000000-000")
        events.parent.mkdir(parents=True, exist_ok=True)
        started = process.start_ticks(running.pid)
        append_event(
            events, JobStartEvent(stage="prepare", argv=["x"], pid=running.pid, pid_started=started, experiment="busy")
        )
        with pytest.raises(UserError, match=r"prepare is running on experiment 'busy'.*before starting train"):
            train_launcher.start(workspace, "busy")  # the Train tab's way
        assert run_trainer(workspace, "busy", "cpu") == 2  # the CLI's and a script's: refused once it holds the lock
        kinds = [event.kind for event in read_events(experiment.progress_jsonl)[0]]
        assert kinds == ["error"]  # said to the Train tab; no training started
    finally:
        running.kill()
        running.wait()


def test_stage_args_round_trip_through_the_stages_parsers(tmp_path: Path) -> None:
    options = PrepareOptions(sample_rate=48000, chunk=4.0, highpass=False, validation=3, workers=2)
    values = {"experiment": "voice", "input": [tmp_path / "a", tmp_path / "b"], "url": []} | option_values(options)
    args = stage_parser("prepare").parse_args(stage_args("prepare", values))
    assert options_from_args(args) == options and args.input == [tmp_path / "a", tmp_path / "b"]

    extract = ExtractOptions(f0_method="pm", embedder="/x/hub", batch_size=3, f0_min=60.0)
    args = stage_parser("extract").parse_args(stage_args("extract", {"experiment": "v"} | option_values(extract)))
    assert (args.f0_method, args.embedder, args.batch_size, args.f0_min) == ("pm", "/x/hub", 3, 60.0)
    with pytest.raises(ValueError, match="no option for nonsense"):
        stage_args("extract", {"nonsense": 1})


def test_process_tree_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'], start_new_session=True)\n"
        "print('re' + 'ady', flush=True)\n"  # the log's first line holds the script: not "ready" itself
        "time.sleep(600)\n"
    )
    log = tmp_path / "tree.log"
    child = process.spawn([sys.executable, "-c", script, str(tmp_path)], log)
    _wait(lambda: "\nready" in log.read_text(), 30, "the tree did not start")
    tree = process.ProcessTree(child.pid, child.pid)
    assert len(tree.alive()) == 2  # the grandchild left the group (its own session) but is a descendant
    assert process.stop_tree(child.pid, child, timeout=1, orphan_grace=1)
    assert tree.alive() == [] and child.returncode == -signal.SIGKILL


def _kill_stage_and_wait_for_its_workers(tmp_path: Path, script: str, timeout: float) -> None:
    """Run ``script`` (a stage that starts a pool and prints its workers' pids), kill -9 it, and wait
    for every worker to exit on its own."""
    stage_script = tmp_path / "stage.py"
    stage_script.write_text(
        "import multiprocessing, os, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from rvc.data.pool import _init_worker\n" + script + "    time.sleep(600)\n"
    )
    stage = subprocess.Popen(
        [sys.executable, str(stage_script)], stdout=subprocess.PIPE, text=True, env=process.child_env({})
    )
    workers = [int(pid) for pid in stage.stdout.readline().split()] if stage.stdout else []
    assert workers and all(process.is_alive(pid) for pid in workers)
    stage.kill()
    stage.wait()
    _wait(lambda: not any(process.is_alive(pid) for pid in workers), timeout, "the orphaned workers did not exit")


def test_pool_workers_end_when_their_stage_is_killed(tmp_path: Path) -> None:
    """kill -9 of a stage cannot stop its pool: its workers notice they are orphans and exit."""
    script = (
        "def pid(_):\n"
        "    time.sleep(0.2)\n"
        "    return os.getpid()\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(2, multiprocessing.get_context('spawn'), _init_worker, (1, os.getpid()))\n"
        "    print(' '.join(map(str, sorted(set(pool.map(pid, range(6)))))), flush=True)\n"
    )
    _kill_stage_and_wait_for_its_workers(tmp_path, script, 15)


def test_pool_workers_still_starting_when_their_stage_is_killed_exit_too(tmp_path: Path) -> None:
    """A worker still importing (torch takes seconds) when its stage is killed -9 must not read init's pid as
    its parent's and watch init forever: the stage passes its own pid to the initializer."""
    script = (
        "def slow_init(threads, parent):\n"
        "    time.sleep(3)  # the stage is killed meanwhile\n"
        "    _init_worker(threads, parent)\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(2, multiprocessing.get_context('spawn'), slow_init, (1, os.getpid()))\n"
        "    pool.submit(os.getpid)\n"
        "    print(' '.join(map(str, pool._processes)), flush=True)\n"
    )
    _kill_stage_and_wait_for_its_workers(tmp_path, script, 20)

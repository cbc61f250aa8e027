"""Stage jobs in a real browser: re-attach after a reload and an app restart, Stop, kill -9."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from rvc.experiment import Experiment, Workspace
from rvc.jobs import launcher
from rvc.jobs.state import read_job
from tests.browser import RunningApp, open_tab, screenshot, start_app, stop_app
from tests.fake_experiment import save_tiny_hubert
from tests.synth import speech_like
from tests.test_extract import _fake_prepared

pytest_plugins = ["tests.browser"]

CLIPS = 40  # harvest on 1 s clips: ~0.3 s each per core, reported a chunk at a time: outlives a reload


def _task(page: Any) -> dict[str, Any]:
    """Return the first progress bar of the job panel: its job, status, task, done and total."""
    return page.evaluate(
        """() => {
            const job = document.querySelector('.rvc-job');
            const task = document.querySelector('.rvc-job-task');
            return {events: job && job.dataset.events, status: job && job.dataset.status,
                    task: task && task.dataset.task, done: task ? +task.dataset.done : -1,
                    total: task ? +task.dataset.total : -1};
        }"""
    )


def _wait_for(page: Any, condition: str, timeout_s: float = 90) -> dict[str, Any]:
    """Wait until ``condition`` (JS over ``t``, the first bar as _task returns it) holds; return the bar."""
    page.wait_for_function(
        f"""() => {{
            const job = document.querySelector('.rvc-job');
            const task = document.querySelector('.rvc-job-task');
            const t = {{events: job && job.dataset.events, status: job && job.dataset.status,
                       done: task ? +task.dataset.done : -1, total: task ? +task.dataset.total : -1}};
            return {condition};
        }}""",
        timeout=timeout_s * 1000,
    )
    return _task(page)


def _log(page: Any) -> str:
    return str(page.get_by_label("Progress").input_value())


def _extract(page: Any, embedder: Path) -> None:
    page.get_by_label("Pitch (f0) method").click()
    page.get_by_role("option", name="harvest", exact=True).click()
    page.get_by_label("Content embedder").fill(str(embedder))
    page.get_by_label("Content embedder").press("Enter")
    page.get_by_role("button", name="Extract features").click()


def test_extract_job_survives_a_reload_stops_and_the_next_one_continues(page: Any, app: RunningApp) -> None:
    _fake_prepared(Experiment(app.logs_dir, "job-voice"), [1.0] * CLIPS)
    embedder = save_tiny_hubert(app.assets_dir / "embedders" / "tiny-hubert")

    open_tab(page, "Prepare Dataset")
    page.get_by_label("Experiment name").fill("job-voice")
    _extract(page, embedder)
    first = _wait_for(page, "t.status === 'running' && t.done > 0")
    assert first["task"] == "pitch (harvest)" and first["total"] == CLIPS

    # A reload draws the same job, still advancing, with its log (the command line opens it).
    page.reload()
    open_tab(page, "Prepare Dataset")
    again = _wait_for(page, f"t.events === '{first['events']}' && t.done > {first['done']}")
    assert again["status"] == "running"
    log = page.get_by_label("Progress").element_handle()
    page.wait_for_function("el => el.value.includes('--json-progress')", arg=log)
    assert page.get_by_label("Experiment name").input_value() == "job-voice"  # the reloaded page names it
    screenshot(page, "stage_job_running")

    asked = time.monotonic()
    page.get_by_role("button", name="Stop", exact=True).click()
    stopped = _wait_for(page, "t.status === 'stopped'", timeout_s=30)
    assert time.monotonic() - asked < 20
    assert "⏹ stopped" in _log(page)
    assert 0 < stopped["done"] < CLIPS
    state, status = read_job(app.logs_dir / "job-voice" / "jobs" / stopped["events"])
    assert status == "stopped" and state.start is not None
    deadline = time.monotonic() + 10  # it reported "stopped" on its way out
    while _alive(state.start.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(state.start.pid)

    # The second Extract computes only the pitch the stopped one had not finished.
    _extract(page, embedder)  # the reloaded form shows the defaults again
    second = _wait_for(page, f"t.events !== '{first['events']}' && t.total > 0")
    assert second["total"] == CLIPS - stopped["done"]
    _wait_for(page, "t.status === 'done'", timeout_s=120)
    assert f"✅ features ready: f0 computed for {CLIPS - stopped['done']}, content for {CLIPS}" in _log(page)


def test_a_killed_job_says_so(page: Any, app: RunningApp) -> None:
    experiment = Experiment(app.logs_dir, "job-killed")
    _fake_prepared(experiment, [1.0] * 4)
    embedder = app.assets_dir / "embedders" / "tiny-hubert"
    if not embedder.exists():
        save_tiny_hubert(embedder)
    open_tab(page, "Prepare Dataset")
    page.get_by_label("Experiment name").fill("job-killed")
    _extract(page, embedder)
    running = _wait_for(page, "t.status === 'running' && t.events.startsWith('extract-')")
    state, _ = read_job(experiment.jobs_dir / running["events"])
    assert state.start is not None and state.start.pid is not None
    os.kill(state.start.pid, signal.SIGKILL)
    _wait_for(page, "t.status === 'died'", timeout_s=20)
    assert "killed by signal 9 (SIGKILL" in _log(page)
    assert not page.get_by_role("button", name="Stop", exact=True).is_visible()
    screenshot(page, "stage_job_killed")


def _alive(pid: int | None) -> bool:
    from rvc.jobs.process import is_alive

    return pid is not None and is_alive(pid)


def _recordings(folder: Path, count: int, seconds: float) -> None:
    """Write ``count`` different recordings of ``seconds`` each (one synthesised, the rest altered copies)."""
    folder.mkdir(parents=True)
    base = speech_like(16000, phrases=(seconds / 2, seconds / 2), gap_seconds=0.5, seed=0)
    for i in range(count):
        audio = base.copy()
        audio[i] += np.float32(1e-3)  # another file to prepare's hashes
        sf.write(folder / f"take{i:03d}.wav", audio, 16000, subtype="PCM_16")


def test_an_app_restart_reattaches_to_a_running_prepare(browser: Any, tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    _recordings(tmp_path / "recordings", count=40, seconds=30.0)  # with denoise on the CPU: ~20 s of work
    first = start_app(root)
    second: RunningApp | None = None
    try:
        workspace = Workspace(first.logs_dir, first.assets_dir)
        args = ["--experiment", "restarted", "--input", str(tmp_path / "recordings"), "--denoise", "--device", "cpu"]
        job, _ = launcher.start(workspace, "restarted", "prepare", [*args, "--workers", "1"])
        stop_app(first, leave_jobs=True)  # the job runs in its own session: the app's end is not its end
        assert read_job(job.events)[1] == "running"
        second = start_app(root)
        page = browser.new_page()
        page.goto(second.url)
        open_tab(page, "Prepare Dataset")
        seen = _wait_for(page, f"t.events === '{job.events.name}' && t.status === 'running' && t.done > 0")
        assert seen["total"] == 40
        assert page.get_by_label("Experiment name").input_value() == "restarted"
        screenshot(page, "stage_job_after_restart")
        page.get_by_role("button", name="Stop", exact=True).click()  # a Stop from the app that did not start it
        _wait_for(page, "t.status === 'stopped'", timeout_s=30)
        page.close()
    finally:
        stop_app(second or first)

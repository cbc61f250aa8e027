"""Stage jobs in a real browser: re-attach after a reload and an app restart, Stop, kill -9."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
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

CLIPS = 200  # harvest on 0.5 s clips in one worker: ~30 s of pitch, far longer than a reload and a Stop take


# The open tab's job panel (every tab's content is in the page; the others' are hidden).
SHOWN_JOB = "[...document.querySelectorAll('.rvc-job')].find(e => e.offsetParent !== null)"


def _task(page: Any) -> dict[str, Any]:
    """Return the first progress bar of the open tab's job panel: its job, status, task, done and total."""
    return page.evaluate(
        f"""() => {{
            const job = {SHOWN_JOB};
            const task = job && job.querySelector('.rvc-job-task');
            return {{events: job && job.dataset.events, status: job && job.dataset.status,
                    task: task && task.dataset.task, done: task ? +task.dataset.done : -1,
                    total: task ? +task.dataset.total : -1}};
        }}"""
    )


def _wait_for(page: Any, condition: str, timeout_s: float = 90) -> dict[str, Any]:
    """Wait until ``condition`` (JS over ``t``, the first bar as _task returns it) holds; return the bar."""
    page.wait_for_function(
        f"""() => {{
            const job = {SHOWN_JOB};
            const task = job && job.querySelector('.rvc-job-task');
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
    workers = page.get_by_label("Pitch worker processes")
    if not workers.is_visible():
        page.get_by_text("More extraction options").click()
    workers.fill("1")
    page.get_by_label("Pitch (f0) method").click()
    page.get_by_role("option", name="harvest", exact=True).click()
    page.get_by_label("Content embedder").fill(str(embedder))
    page.get_by_label("Content embedder").press("Enter")
    page.get_by_role("button", name="Extract features").click()


def test_an_extract_job_survives_a_reload_stops_the_next_continues_and_a_kill_is_reported(
    page: Any, app: RunningApp
) -> None:
    _fake_prepared(Experiment(app.logs_dir, "job-voice"), [0.5] * CLIPS)
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
    stopped = _wait_for(page, "t.status === 'stopped'", timeout_s=60)
    assert time.monotonic() - asked < 10  # the pitch worker is killed, not waited for
    assert "Stopped; what was finished is kept" in _log(page)
    assert 0 < stopped["done"] < CLIPS
    state, status = read_job(app.logs_dir / "job-voice" / "jobs" / stopped["events"])
    assert status == "stopped" and state.start is not None
    _wait_until(lambda: not _alive(state.start.pid), "the stopped job's process still runs")  # type: ignore[union-attr]

    # The second Extract computes only the pitch the stopped one had not finished (the per-clip cache).
    _extract(page, embedder)  # the reloaded form shows the defaults again
    second = _wait_for(page, f"t.events !== '{first['events']}' && t.status === 'running' && t.total > 0")
    assert second["task"] == "pitch (harvest)" and second["total"] == CLIPS - stopped["done"]

    # kill -9 its process: the page says it died, and how.
    state, _ = read_job(app.logs_dir / "job-voice" / "jobs" / second["events"])
    assert state.start is not None and state.start.pid is not None
    os.kill(state.start.pid, signal.SIGKILL)
    _wait_for(page, "t.status === 'died'", timeout_s=60)
    assert "killed by signal 9 (SIGKILL" in _log(page)
    assert not page.get_by_role("button", name="Stop", exact=True).is_visible()
    screenshot(page, "stage_job_killed")


def _wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _alive(pid: int | None) -> bool:
    from rvc.jobs.process import is_alive

    return pid is not None and is_alive(pid)


def _recordings(folder: Path, count: int, seconds: float) -> None:
    """Write ``count`` different 8 kHz recordings of ``seconds`` each (one synthesised, the rest altered copies)."""
    folder.mkdir(parents=True)
    base = speech_like(8000, phrases=(seconds / 2, seconds / 2), gap_seconds=0.5, seed=0)
    for i in range(count):
        audio = base.copy()
        audio[i] += np.float32(1e-3)  # another file to prepare's hashes
        sf.write(folder / f"take{i:03d}.wav", audio, 8000, subtype="PCM_16")


# Last in the module: it ends the module's app, replaced by the restarted one.
def test_an_app_restart_reattaches_to_a_running_prepare(browser: Any, app: RunningApp, tmp_path: Path) -> None:
    # 8 kHz in, 48 kHz out, denoised: ~0.15 s a file in one process, ~45 s in all when the machine is idle.
    # The restart needs ~5 s, but the old app's stop may take up to 30 s on a busy machine, and the job must
    # still be running when the new page looks (it is stopped as soon as it is seen: the length costs nothing).
    _recordings(tmp_path / "recordings", count=300, seconds=30.0)
    restarted = start_app(app.logs_dir.parent)  # up before the prepare starts: only the old app's end is timed
    try:
        workspace = Workspace(app.logs_dir, app.assets_dir)
        args = ["--experiment", "restarted", "--input", str(tmp_path / "recordings"), "--sample-rate", "48000"]
        job, _ = launcher.start(
            workspace, "restarted", "prepare", [*args, "--denoise", "--device", "cpu", "--workers", "1"]
        )
        stop_app(app, leave_jobs=True)  # the job runs in its own session: the app's end is not its end
        assert read_job(job.events)[1] in ("starting", "running")
        page = browser.new_page()
        page.goto(restarted.url)
        open_tab(page, "Prepare Dataset")
        seen = _wait_for(page, f"t.events === '{job.events.name}' && t.status === 'running' && t.done > 0")
        assert seen["total"] == 300
        assert page.get_by_label("Experiment name").input_value() == "restarted"
        screenshot(page, "stage_job_after_restart")
        page.get_by_role("button", name="Stop", exact=True).click()  # a Stop from the app that did not start it
        _wait_for(page, "t.status === 'stopped'", timeout_s=60)
        page.close()
    finally:
        stop_app(restarted)

"""The web app in a real browser: the Train tab trains, plots, re-attaches and stops.

One app per module (started with --auth, so the same app also shows that every
route needs the login), a tiny model on the CPU, and the job registry's pieces
tested on their own below the browser tests. That every tab renders is in test_webui_newcomer.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.browser")  # before its import: its fixtures' asserts explain themselves

from rvc.experiment import Experiment, Workspace  # noqa: E402
from rvc.train.events import DoneEvent, EpochEvent, ErrorEvent, StartEvent, StepEvent  # noqa: E402
from rvc.train.launcher import TrainCommand  # noqa: E402
from rvc.train.progress import format_line, read_events  # noqa: E402
from rvc.train.run_state import Point, RunState  # noqa: E402
from tests.browser import RunningApp, open_tab, processes_mentioning, screenshot  # noqa: E402
from tests.fake_experiment import make_extracted_experiment, tiny_config, write_tiny_config  # noqa: E402
from webui.jobs import JobRegistry  # noqa: E402
from webui.run_view import console_line, decimate, progress_rows, tail_lines  # noqa: E402

pytest_plugins = ["tests.browser"]

USER, PASSWORD = "tester", "pw-123"
STORED_LOGIN = "boss:topsecret99"  # in the settings file; --auth wins over it


@pytest.fixture(scope="module")
def settings_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("settings") / "rvc_studio_settings.json"
    path.write_text(json.dumps({"auth": STORED_LOGIN, "console_lines": 100}))
    return path


@pytest.fixture(scope="module")
def app_args(settings_file: Path) -> list[str]:
    return ["--settings", str(settings_file), "--auth", f"{USER}:{PASSWORD}"]


@pytest.fixture(scope="module")
def experiment(app: RunningApp) -> Experiment:
    """An experiment ready to train a tiny model for longer than the test watches it."""
    experiment = make_extracted_experiment(app.logs_dir, "voice")
    write_tiny_config(experiment, epochs=1000, save_every=1000, log_every_seconds=0.2, batch_size="auto")
    return experiment


def points(page: Any, plot: str) -> int:
    """Return how many data points the plot with elem_id ``plot`` draws (Vega labels each one)."""
    return page.locator(f"#{plot} [aria-label^='step:']").count()


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def http_status(url: str, data: bytes | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


# --- the browser ------------------------------------------------------------------------------


def test_train_tab_trains_plots_reattaches_stops_and_resumes(
    app: RunningApp, experiment: Experiment, page: Any
) -> None:
    open_tab(page, "Train")
    status = page.locator("#train-status")
    status.filter(has_text="voice: not trained yet").wait_for()  # the app's current experiment, made after its start
    page.get_by_role("button", name="Start", exact=True).click()
    status.filter(has_text="training").wait_for(timeout=180_000)
    wait_until(lambda: points(page, "plot-adversarial") >= 3 and points(page, "plot-lr") >= 3, 180, "plot points")
    # Batch size auto: the trainer's choice and why (6 short clips: the smallest suggestion, 4).
    page.locator("#train-progress").filter(has_text="4 (auto: the dataset's").wait_for()
    screenshot(page, "train_running")

    # A second Start on a running experiment says it runs, and starts nothing.
    page.get_by_role("button", name="Start", exact=True).click()
    page.locator("#train-message").filter(has_text="already training").wait_for()

    # A reload re-attaches: the points are drawn again from progress.jsonl.
    before = points(page, "plot-adversarial")
    page.reload()
    open_tab(page, "Train")
    wait_until(lambda: points(page, "plot-adversarial") >= before, 60, "the points after a reload")
    assert "voice: training" in status.inner_text()

    # TensorBoard: a real server, linked from the tab.
    page.get_by_text("TensorBoard", exact=True).click()
    page.get_by_role("button", name="Open TensorBoard").click()
    link = page.locator("#train-tensorboard a")
    link.wait_for(timeout=120_000)
    assert http_status(link.get_attribute("href") or "") == 200
    assert page.locator("#train-tensorboard iframe").count() == 1

    # Stop: the trainer saves and exits, and no process of the run is left.
    page.get_by_role("button", name="Stop", exact=True).click()
    status.filter(has_text="stopped at step").wait_for(timeout=120_000)
    assert [line for line in processes_mentioning(str(app.logs_dir)) if "rvc.train" in line] == []
    assert list((experiment.root / "checkpoints").glob("G_*.pth"))
    page.get_by_role("button", name="Start", exact=True).click()  # Start again: it points to Resume
    page.locator("#train-message").filter(has_text="click Resume to continue it").wait_for()

    # Resume continues from the saved step (the plot goes on past it), and stops again.
    saved = max(int(p.stem.split("_")[1]) for p in (experiment.root / "checkpoints").glob("G_[0-9]*.pth"))
    page.get_by_role("button", name="Resume", exact=True).click()
    status.filter(has_text="training").wait_for(timeout=180_000)

    def last_step() -> int:
        steps = [e.step for e in read_events(experiment.progress_jsonl)[0] if isinstance(e, StepEvent)]
        return steps[-1]

    wait_until(lambda: last_step() > saved, 180, "a step after the saved one")
    starts = [e for e in read_events(experiment.progress_jsonl)[0] if isinstance(e, StartEvent)]
    assert starts[-1].start_step == saved
    page.get_by_role("button", name="Stop", exact=True).click()
    status.filter(has_text="stopped at step").wait_for(timeout=120_000)

    # After the run: export and index, each a stage job drawn in the tab's job panel, offered for download.
    page.get_by_role("button", name="Export", exact=True).click()
    page.locator("#train-message").filter(has_text="Exported the best state").wait_for(timeout=120_000)
    page.locator("#train-model .rvc-job[data-status='done']").filter(has_text="export on voice").wait_for()
    page.get_by_role("button", name="Build index").click()
    page.locator("#train-message").filter(has_text="Built voice.index").wait_for(timeout=120_000)
    # A reload draws the ended job again: its panel, and what it wrote.
    page.reload()
    open_tab(page, "Train")
    page.locator("#train-message").filter(has_text="Built voice.index").wait_for(timeout=30_000)
    page.locator("#train-model .rvc-job[data-status='done']").filter(has_text="index on voice").wait_for()
    files = page.locator("#train-files")
    files.locator("[aria-label='voice.index']").wait_for()
    assert files.locator("[aria-label='voice_best.pth']").count() == 1
    for link in files.locator("a[download]").all():  # the download links answer (with the login's cookie)
        assert page.request.get(link.get_attribute("href") or "").ok
    screenshot(page, "train_stopped")


def test_settings_tab_saves_and_refuses_bad_values(settings_file: Path, page: Any) -> None:
    open_tab(page, "Settings")
    lines = page.get_by_label("Console lines")
    lines.fill("5")
    page.get_by_role("button", name="Save", exact=True).click()
    message = page.locator("#settings-message")
    message.filter(has_text="'Console lines': use 10 to 10000 lines").wait_for()
    lines.fill("300")
    page.get_by_role("button", name="Save", exact=True).click()
    message.filter(has_text="Saved to").wait_for()
    saved = json.loads(settings_file.read_text())
    assert saved["console_lines"] == 300 and saved["auth"] == STORED_LOGIN  # an empty login field keeps it
    assert STORED_LOGIN not in page.content()  # the stored login never reaches the browser
    screenshot(page, "settings_saved")


# --- plain HTTP ---------------------------------------------------------------------------------


def test_every_route_needs_the_login(app: RunningApp) -> None:
    url = app.url
    for route in ("config", "gradio_api/info", "gradio_api/file=" + str(app.log_path)):
        assert http_status(url + route) in (401, 403), route
    for route in ("gradio_api/queue/join", "gradio_api/upload", "gradio_api/run/predict"):
        assert http_status(url + route, data=b"{}") in (401, 403), route
    with urllib.request.urlopen(url, timeout=10) as response:
        page = response.read().decode()
    assert "auth_required" in page  # the login page, not the app
    # Nothing of the app leaks before the login: no tab, no default value, no secret.
    assert "Generate Configuration" not in page and "Console lines" not in page and "topsecret99" not in page
    assert http_status(url + "login", data=b"username=tester&password=wrong") == 400


# --- the registry's parts ----------------------------------------------------------------------


def test_run_state_folds_events_and_forgets_what_a_restart_redoes() -> None:
    state = RunState()
    state.apply(StartEvent(start_step=0, epochs=3, config={"train": {"c_mel": 45.0}}))
    for step in (1, 2, 3, 4):
        state.apply(StepEvent(epoch=1, step=step, lr=1e-4, metrics={"loss/g/total": 30.0 - step}))
    state.apply(EpochEvent(epoch=1, step=4, validation={"loss/val/mel": 2.5}))
    state.apply(ErrorEvent(recoverable=True, message="rolling back"))
    assert state.error is None  # a recoverable error is not a failure
    state.apply(StartEvent(start_step=2, epochs=3))  # a rollback to step 2
    assert [p.step for p in state.curves["loss/g/total"]] == [1, 2]
    assert state.curves["loss/val/mel"] == [] and [p.step for p in state.lr] == [1, 2]
    state.apply(DoneEvent(epoch=3, step=9, stopped=True))
    assert state.done is not None and state.stopped


def test_registry_reports_a_trainer_that_dies_before_training(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    experiment = make_extracted_experiment(workspace.logs_dir, "voice")
    write_tiny_config(experiment)
    jobs = JobRegistry(workspace)
    assert jobs.experiments() == ["voice"] and jobs.job("voice").view(10, False).status == "not started"
    crash = [sys.executable, "-c", "import sys; print('cannot import something'); sys.exit(3)"]
    jobs.start("voice", TrainCommand(crash, {}))
    wait_until(lambda: not jobs.job("voice").running(), 30, "the process to end")
    view = jobs.job("voice").view(10, False)
    assert view.status == "failed" and "exited with status 3" in view.headline
    assert view.console[-1] == "cannot import something"


def test_registry_says_a_stop_came_while_the_trainer_was_starting(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    write_tiny_config(make_extracted_experiment(workspace.logs_dir, "voice"))
    jobs = JobRegistry(workspace)
    loading = [sys.executable, "-c", "import time; print('loading', flush=True); time.sleep(60)"]  # no handler yet
    jobs.start("voice", TrainCommand(loading, {}))
    assert jobs.stop("voice", wait=True)
    wait_until(lambda: not jobs.job("voice").running(), 30, "the process to end")
    view = jobs.job("voice").view(10, False)
    assert view.status == "stopped while starting" and view.finished
    assert "nothing was trained or saved" in view.headline


def test_decimate_keeps_the_last_point() -> None:
    many = [Point(i, float(i)) for i in range(10_001)]
    kept = decimate(many, limit=1000)
    assert len(kept) <= 1002 and kept[0] == many[0] and kept[-1] == many[-1]
    assert decimate(many[:10]) == many[:10]


def test_console_shows_events_in_words_and_reads_only_the_tail(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    step = StepEvent(epoch=2, step=40, total_steps=100, lr=1e-4, it_s=3.2, metrics={"loss/g/total": 31.5})
    lines = [f"line {i}" for i in range(100_000)] + [format_line(step)]
    log.write_text("\n".join(lines) + "\n")
    tail = tail_lines(log, 3, console_line)
    assert tail[:2] == ["line 99998", "line 99999"]
    assert re.fullmatch(r"epoch 2 step 40/100: g=31.5 d=– mel=– lr=0\.0001 3\.2 it/s", tail[2])
    assert tail_lines(log, 2) == ["line 99999", format_line(step)]
    assert console_line("") is None


def test_the_status_and_the_console_say_the_batch_the_trainer_chose() -> None:
    config = tiny_config(batch_size=8).to_dict()
    reason = "auto: measured 4.1 GiB of 6.0 GiB usable; the dataset's 20.0 minutes suggest at most 8"
    state = RunState()
    state.apply(StartEvent(config=config, batch_size_reason=reason, device="cuda:0"))
    assert state.batch_size == 8 and state.batch_size_reason == reason
    assert dict(progress_rows(state, running=True))["Batch size"] == f"8 ({reason})"
    line = console_line(format_line(StartEvent(config=config, batch_size_reason=reason)))
    assert line is not None and f"batch 8 ({reason})" in line
    older = RunState()
    older.apply(StartEvent(config=config))  # a trainer before batch size auto said no reason
    assert dict(progress_rows(older, running=True))["Batch size"] == "8"


def test_the_status_says_how_the_step_runs_and_where_the_clips_live() -> None:
    state = RunState()
    state.apply(
        StartEvent(
            start_step=0,
            epochs=3,
            device="cuda:0",
            precision="bf16-tail",
            world_size=1,
            step_mode="compiled",
            compile_s=38.2,
            step_mode_reason="4000 steps to train repay the compile",
            data_placement="stream",
        )
    )
    rows = dict(progress_rows(state, running=True))
    assert rows["Device"].startswith("cuda:0 · bf16-tail · 1 process(es)") and "streamed" in rows["Device"]
    assert rows["Step"] == "compiled CUDA graph step, ready in 38.2 s (4000 steps to train repay the compile)"


def test_the_gpu_rows_say_the_memory_the_last_epoch_used_and_held(tmp_path: Path) -> None:
    """A graphed step's memory sits in its pool, not in use between steps: the row says both figures."""
    from webui.run_view import train_view

    state = RunState()
    state.apply(StartEvent(config=tiny_config().to_dict(), device="cuda:0"))
    state.apply(StepEvent(epoch=1, step=1, gpu={"gpu/util_percent": 97.0}))
    state.apply(EpochEvent(epoch=1, step=1, peak_mem_gib=2.24, peak_reserved_gib=5.61))
    view = train_view("voice", "running", True, state, None, tmp_path / "train.log", 10, False, version=0)
    assert dict(view.gpu)["Peak memory (last epoch)"] == "2.2 GiB in use, 5.6 GiB held"
    state.apply(EpochEvent(epoch=2, step=2, peak_mem_gib=2.24))  # a trainer before the held figure
    view = train_view("voice", "running", True, state, None, tmp_path / "train.log", 10, False, version=0)
    assert dict(view.gpu)["Peak memory (last epoch)"] == "2.2 GiB in use"

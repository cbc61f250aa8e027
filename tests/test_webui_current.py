"""The app-wide pieces of the web app, without a browser: the current experiment, the content encoders
offered, Train from recordings' job, the Train tab's words for a run that has ended or runs on a CPU.

The browser flow over all of them is test_webui_newcomer.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rvc.cli.argv import stage_parser
from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.experiment.workspace import status_of
from rvc.train.events import DoneEvent, EpochEvent, StartEvent, StepEvent
from rvc.train.progress import append_event, format_line
from rvc.train.run_state import Point, RunState
from tests.fake_experiment import make_extracted_experiment, save_tiny_hubert, write_tiny_config
from webui import current, one_click
from webui.context import AppContext
from webui.encoders import encoder_choices, found_encoders
from webui.run_view import TrainView, console_line, progress_rows
from webui.settings import Settings
from webui.stage_jobs import ending_line
from webui.train_handlers import export_choices, export_model
from webui.train_poll import MIN_STEP_SPAN, lr_frame, mel_title, step_range


def _context(tmp_path: Path) -> AppContext:
    return AppContext.create(Workspace(tmp_path / "logs", tmp_path / "assets"), Settings(), tmp_path / "settings.json")


# --- the current experiment -------------------------------------------------------------------


def test_a_page_opens_on_the_stored_experiment_else_a_busy_one_else_the_newest(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    assert current.pick("gone", []) == ""
    assert "No experiment yet" in current.header_text("", [])
    old = make_extracted_experiment(workspace.logs_dir, "old")
    make_extracted_experiment(workspace.logs_dir, "new")
    (workspace.logs_dir / "new" / "touched").write_text("")  # its folder changes last
    statuses = current.listing(workspace)
    assert [s.name for s in statuses] == ["new", "old"]
    assert current.pick("old", statuses) == "old"
    assert current.pick("gone", statuses) == "new"  # a stored experiment deleted since: no stale name
    assert current.pick("../x", statuses) == "new" and current.valid_name("../x") is None
    assert current.header_text("old", statuses) == (
        "Experiment: **old**: clips prepared. Next: extract its features (Prepare Dataset, step 2)."
    )
    assert "new: nothing on disk yet" in current.header_text("fresh", statuses)

    before = current.signature("old", statuses)
    assert current.signature("new", statuses) != before  # another current experiment
    write_tiny_config(old)  # configured: a new state
    after = current.listing(workspace)
    assert current.signature("old", after) != before
    assert "Next: start training (Train)" in current.header_text("old", after)
    assert status_of(old).stage == "configured"


def test_a_dropdown_shows_the_current_experiment_among_its_choices() -> None:
    follower = current.dropdown_follower(None, lambda statuses: ["a", "b"])  # type: ignore[arg-type]
    assert follower.show("c", []) == {"__type__": "update", "choices": ["c", "a", "b"], "value": "c"}
    # the current experiment stays listed (its value is the current one, or was until a choice the watch missed)
    assert follower.relist(None, "c", []) == {"__type__": "update", "choices": ["c", "a", "b"]}
    assert follower.relist(None, "a", []) == {"__type__": "update", "choices": ["a", "b"]}
    assert not follower.relist_reads_value  # a value outside its choices would fail Gradio's check of the input
    assert follower.name_of("b") == "b" and follower.name_of("") is None


def test_the_watch_mends_a_dropdown_whose_value_a_late_tick_left_unlisted(tmp_path: Path) -> None:
    """A tick that read "no experiment" can land after the user chose one: the dropdown then shows a value its
    choices lack. Gradio refuses such a value as an input, so the watch never takes the dropdown as one (it
    failed every tick in the browser test, and the header and lists froze), and its next tick lists the value."""
    import gradio as gr

    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    make_extracted_experiment(workspace.logs_dir, "voice")
    with gr.Blocks() as app:
        watch = current.CurrentExperiment(workspace)
        dropdown = gr.Dropdown(choices=[], label="Experiment")
        watch.follow(current.dropdown_follower(dropdown, lambda statuses: [s.name for s in statuses]))
        watch.wire(app)
    tick = next(fn for fn in app.fns.values() if fn.name == "_watch")
    assert dropdown not in tick.inputs and dropdown in tick.outputs
    _, header, relisted = watch._watch("stale", "voice")
    assert relisted["choices"] == ["voice"] and "Experiment: **voice**" in header


def test_a_configuration_form_never_loaded_for_the_chosen_experiment_loads_when_the_tab_opens(tmp_path: Path) -> None:
    """Choosing an experiment in another tab sets Generate Configuration's chooser before that tab is drawn, and
    choosing the same name there sends no change: the tab's select and the watch load a form that never loaded
    (a CI run waited a minute for the suggestions there). A saved form the user may be editing stays."""
    import gradio as gr

    from webui.tabs.generate_config import NOT_CHOSEN, _Handlers

    ctx = _context(tmp_path)
    make_extracted_experiment(ctx.workspace.logs_dir, "voice")
    on = _Handlers(ctx, ["epochs"])
    untouched = [gr.skip()] * 4  # the rate, the one field, the source line, the pretrain note
    assert on.reload_if_stale("voice", NOT_CHOSEN, None)[-2].startswith("Suggested settings for the dataset")
    assert on.reload_if_stale(None, NOT_CHOSEN, None) == untouched  # no experiment chosen: nothing to load
    shown = f"Loaded the saved settings of {ctx.workspace.experiment('voice').config_json}."
    assert on.reload_if_stale("voice", shown, None) == untouched  # loaded, not saved since: edits stay


# --- content encoders --------------------------------------------------------------------------


def test_every_usable_encoder_in_the_assets_folder_is_offered(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    embedders = workspace.assets.embedders_dir
    hf = save_tiny_hubert(embedders / "my-hubert", hidden_size=768, layers=1)
    (embedders / "fairseq").mkdir()
    torch.save({}, embedders / "fairseq" / "hubert_base.pt")
    torch.save({}, embedders / "loose.pt")
    (embedders / "empty").mkdir()
    (embedders / "weights-only").mkdir()
    shutil.copy(hf / "config.json", embedders / "weights-only" / "config.json")  # no weights: not offered
    assert [p.name for p in found_encoders(workspace.assets)] == ["fairseq", "loose.pt", "my-hubert"]
    choices = encoder_choices(workspace.assets)
    assert ("contentvec (downloads on first use)", "contentvec") in choices
    assert (f"my-hubert (in {embedders})", str(hf)) in choices


# --- Train from recordings ---------------------------------------------------------------------


def test_train_from_recordings_is_the_clis_run_as_one_job(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    ctx.tiny_model = True
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    hubert = save_tiny_hubert(ctx.workspace.assets.embedders_dir / "tiny", hidden_size=768, layers=1)
    form = {
        "experiment": "voice", "folders": str(recordings), "uploads": None, "sample_rate": 48000,
        "f0_method": "pm", "embedder": str(hubert), "epochs": 3, "pretrain": one_click.NO_PRETRAIN,
    }  # fmt: skip
    request = one_click.chain_request(ctx, form)
    args = stage_parser("run").parse_args(request.args)
    assert (request.experiment, request.stage) == ("voice", "run")
    assert args.input == [str(recordings)] and args.sample_rate == 48000 and args.epochs == 3
    assert args.tiny_model and args.embedder == str(hubert) and args.pretrained_g is None
    with pytest.raises(UserError, match=r"^'Epochs': give a whole number"):
        one_click.chain_request(ctx, form | {"epochs": 0.5})
    assert "--epochs" not in one_click.chain_request(ctx, form | {"epochs": 0}).args  # 0 (a reloaded form): chosen
    with pytest.raises(UserError, match=r"'Voice name'"):
        one_click.chain_request(ctx, form | {"experiment": ""})
    with pytest.raises(UserError, match="outside the folders this app may use"):
        one_click.chain_request(ctx, form | {"embedder": str(tmp_path / "elsewhere")})
    assert one_click.outcome(ctx, "voice") == ("",)  # no chain yet: nothing to say


# --- the Train tab: a run that has ended, a run on the CPU ------------------------------------


def _run(device: str = "cpu", resumed_at: int = 0) -> RunState:
    state = RunState()
    state.apply(
        StartEvent(
            device=device, epochs=4, steps_per_epoch=10, total_steps=40, start_step=resumed_at,
            start_epoch=resumed_at // 10 + 1, config={"train": {"c_mel": 45.0}},
        )
    )  # fmt: skip
    step = resumed_at + 5
    state.apply(StepEvent(epoch=step // 10 + 1, step=step, it_s=0.5, next_save_epoch=2, metrics={"loss/g/mel": 90.0}))
    return state


def test_a_finished_run_says_nothing_of_what_comes_next_and_a_part_epoch_says_so() -> None:
    state = _run()
    state.apply(EpochEvent(epoch=1, step=10, epochs=4, epoch_s=1432.4))
    running = dict(progress_rows(state, running=True))
    assert running["Next save"] == "epoch 2" and running["Speed"] == "0.50 it/s"
    assert running["Last epoch took"] == "23 min 52 s"
    assert running["On the CPU"] == "2.00 s a step (measured): 30 steps left take about 1 min 00 s"
    state.apply(DoneEvent(epoch=1, step=10, stopped=True))
    ended = dict(progress_rows(state, running=False))
    assert ended["Next save"] == ended["Speed"] == ended["Time left"] == "–"
    assert ended["On the CPU"] == "2.00 s a step (measured)"

    resumed = _run(resumed_at=14)  # stopped at batch 4 of epoch 2, resumed there
    resumed.apply(EpochEvent(epoch=2, step=20, epochs=4, epoch_s=3.0))
    assert dict(progress_rows(resumed, running=True))["Last epoch took"] == "3.0 s (only the part after the resume)"
    on_gpu = dict(progress_rows(_run(device="cuda:0"), running=True))
    assert "On the CPU" not in on_gpu


def test_the_console_shows_the_mel_distance_the_plot_draws_and_durations_in_words() -> None:
    step = format_line(StepEvent(epoch=1, step=5, total_steps=40, metrics={"loss/g/mel": 90.0}, lr=1e-4, it_s=2.0))
    assert "mel L1=2 " in (console_line(step, c_mel=45.0) or "")
    epoch = format_line(EpochEvent(epoch=1, step=10, epochs=4, epoch_s=1370.0, validation={"loss/val/mel": 2.1}))
    assert console_line(epoch) == "epoch 1/4 done in 22 min 50 s, held-out mel L1 2.1"


def _view(curves: dict[str, list[Point]]) -> TrainView:
    return TrainView("voice", "running", True, "", [], [], curves, [], [], {}, 0)


def test_the_mel_plot_says_how_much_held_out_loss_there_is_and_few_steps_get_whole_ticks() -> None:
    assert "held-out after the first validation" in mel_title(_view({}))
    assert "no held-out clips to compare" in mel_title(replace(_view({}), held_out_clips=0))
    once = mel_title(_view({"loss/val/mel": [Point(10, 2.25)]}))
    assert once.endswith("held-out checked once so far (2.25 at step 10)")
    assert "and held-out" in mel_title(_view({"loss/val/mel": [Point(10, 2.2), Point(20, 2.1)]}))
    assert step_range(lr_frame([Point(1, 1e-4), Point(3, 1e-4)])) == [1, 1 + MIN_STEP_SPAN]
    assert step_range(lr_frame([Point(1, 1e-4), Point(300, 1e-4)])) is None


def test_export_offers_the_states_that_exist_and_refuses_in_the_tabs_words(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    experiment = make_extracted_experiment(ctx.workspace.logs_dir, "voice")
    assert export_model(ctx, "voice", "latest").startswith("**voice** has no saved state to export yet")
    paths = experiment.checkpoints.paths(7)
    paths.generator.parent.mkdir(parents=True)
    for path in (paths.generator, paths.discriminator, paths.state):  # a complete state, as the saver leaves it
        torch.save({"model": {}, "iteration": 7}, path)
    assert export_choices(ctx, "voice")["choices"] == ["latest"]  # stopped before the first held-out check
    refusal = export_model(ctx, "voice", "best")
    assert refusal.startswith("Not exported: **voice** has no best state yet") and "python -m" not in refusal
    assert "Choose **latest**" in refusal


def test_an_index_job_that_ended_before_its_start_message_was_drawn_still_says_it_was_built(tmp_path: Path) -> None:
    """Under load the click's "Building the index ..." reached the page after the panel's timer had shown the
    finished job, and stayed: the Train tab's chain after the click now shows the outcome of a job already ended."""
    import gradio as gr

    from rvc.train.events import JobEndEvent, JobStartEvent
    from webui.train_handlers import STARTED, outcome_after_start

    ctx = _context(tmp_path)
    experiment = make_extracted_experiment(ctx.workspace.logs_dir, "voice")
    events = experiment.jobs.events("index", "20261208-001013-658")
    events.parent.mkdir(parents=True)
    append_event(events, JobStartEvent(stage="index", argv=["python", "-m", "rvc", "index"], experiment="voice"))
    append_event(events, JobEndEvent(status="done", message=f"{experiment.index_file}: IVF4,Flat, 174 vectors"))
    message, _ = outcome_after_start(ctx, "voice", "Building the index of **voice**" + STARTED)
    assert message == "Built `voice.index`: IVF4,Flat, 174 vectors."
    assert outcome_after_start(ctx, "voice", "Not started: index is running") == (gr.skip(), gr.skip())


def test_a_jobs_last_line_begins_with_a_word_not_an_emoji() -> None:
    assert ending_line("done", "prepared 2 source(s)") == "Done: prepared 2 source(s)"
    assert ending_line("stopped", "stopped; what was finished is kept") == "Stopped; what was finished is kept"
    assert ending_line("died", "the job's process ended") == "Died: the job's process ended"
    assert ending_line("error", "bad input") == "Error: bad input"


def test_validate_on_a_cpu_says_training_takes_hours_with_the_step_time_measured_here(tmp_path: Path) -> None:
    from webui import config_handlers as handlers
    from webui.paths_guard import PathGuard

    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    guard = PathGuard(tmp_path, (workspace.logs_dir, workspace.assets_dir))
    experiment = make_extracted_experiment(workspace.logs_dir, "voice")  # 6 training clips
    form = handlers.load_form(workspace, "voice").values | {"epochs": 10, "batch_size": 2}
    report = handlers.validate_form(workspace, guard, "voice", 40000, form, device="cpu")
    assert "training runs on the CPU, which takes hours.** These settings train 30 steps" in report
    assert "Start measures the time of a step" in report
    append_event(experiment.progress_jsonl, StartEvent(device="cpu", epochs=10, total_steps=30))
    append_event(experiment.progress_jsonl, StepEvent(epoch=1, step=1, it_s=0.25))
    report = handlers.validate_form(workspace, guard, "voice", 40000, form, device="cpu")
    assert "at 4.00 s a step (measured on this machine by its last run), about 2 min 00 s" in report

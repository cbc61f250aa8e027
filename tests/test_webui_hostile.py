"""The web app's handlers fed what a careless user or a stale browser tab sends: every case ends in a message
naming the field or file and what to do; none in a traceback, and nothing is made, lost or half-written.

The handlers are called directly, as the tabs call them (no browser): each case takes milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rvc.config.train import TrainConfig
from rvc.experiment import Workspace
from webui import config_handlers, publish_section, train_handlers
from webui.context import AppContext
from webui.settings import Settings


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    return AppContext.create(Workspace(tmp_path / "logs", tmp_path / "assets"), Settings(), tmp_path / "settings.json")


# ------------------------------------------------------------------ an experiment deleted since the page listed it


def test_a_stale_page_does_not_bring_a_deleted_experiment_back(ctx: AppContext) -> None:
    """Index and Publish started a job that made logs/gone/jobs/ (the experiment was listed again, and the index
    job said to run prepare); Save in Generate Configuration wrote logs/gone/config.json and said 'Saved'."""
    ctx.workspace.logs_dir.mkdir(parents=True)
    guard = ctx.paths
    form = config_handlers.form_from_train(TrainConfig())
    messages = {
        "index": train_handlers.build_index(ctx, "gone"),
        "publish": publish_section.start_publish(ctx, "gone", "me/voice", True, False),
        "export": train_handlers.export_model(ctx, "gone", "latest"),
        "start": train_handlers.start_training(ctx, "gone", "", False),
        "resume": train_handlers.start_training(ctx, "gone", "", True),
        "save": config_handlers.save_form(ctx.workspace, guard, "gone", 40000, form),
        "validate": config_handlers.validate_form(ctx.workspace, guard, "gone", 40000, form),
    }
    for action, message in messages.items():
        assert "gone" in message and "does not exist" in message, f"{action}: {message}"
    assert list(ctx.workspace.logs_dir.iterdir()) == []


def test_the_train_tab_says_what_is_wrong_with_a_name_it_cannot_use(ctx: AppContext) -> None:
    """Export with a name that is no experiment name raised its UserError out of the handler (a traceback)."""
    assert "invalid experiment name" in train_handlers.export_model(ctx, "../x", "latest")
    assert train_handlers.model_files(ctx, None) == [] and train_handlers.model_files(ctx, "../x") == []


def test_generate_configuration_names_a_sample_rate_that_is_none_of_the_presets(ctx: AppContext) -> None:
    """No rate chosen (None), text or NaN ended Validate and Save in int()'s TypeError or ValueError."""
    from tests.fake_experiment import make_extracted_experiment

    make_extracted_experiment(ctx.workspace.logs_dir, "voice", train_clips=2, validation_clips=0, seconds=0.3)
    form = config_handlers.form_from_train(TrainConfig())
    for rate in (None, "", "abc", float("nan"), 44100):
        saved = config_handlers.save_form(ctx.workspace, ctx.paths, "voice", rate, form)  # type: ignore[arg-type]
        assert saved == "Not saved: 'Sample rate': choose one of 32k, 40k, 48k", rate
    assert not ctx.workspace.experiment("voice").config_json.exists()

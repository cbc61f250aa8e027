"""The web app's handlers fed careless or hostile input, a second sweep (the first is test_webui_hostile.py):
the Train tab's GPU ids, Settings, Try Model's encoder, Model tools' blend, the pretrain lists and paths that
name another user's home. Each case ends in a message naming the field and what to do, never a traceback, and
a refused request leaves nothing on disk.

The handlers are called directly, as the tabs call them (no browser).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rvc.errors import UserError
from rvc.experiment import Workspace
from webui.context import AppContext
from webui.settings import Settings


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    return AppContext.create(Workspace(tmp_path / "logs", tmp_path / "assets"), Settings(), tmp_path / "settings.json")


# ------------------------------------------------------------------ a path naming the home of no user


def test_a_path_beginning_with_the_home_of_no_user_is_said_by_field(ctx: AppContext, tmp_path: Path) -> None:
    """'~nosuchuser/x' in any path field ended in Path.expanduser's RuntimeError 'Could not determine home
    directory.': a traceback from Prepare's and Train from recordings' folders, Convert folder's folders and
    Settings' folders; Try Model's index said 'conversion failed (RuntimeError ...)'."""
    from webui import one_click
    from webui.tabs import settings as settings_tab

    form = {"experiment": "voice", "folders": "~nosuchuser/recordings", "sample_rate": 40000, "f0_method": "pm"}
    form |= {"embedder": "contentvec", "pretrain": one_click.NO_PRETRAIN}
    words = r"'~nosuchuser/recordings' begins with ~nosuchuser, the home folder of a user this machine does not have"
    with pytest.raises(UserError, match=f"^'Folder\\(s\\) of recordings on the server': {words}"):
        one_click.chain_request(ctx, form)
    with pytest.raises(UserError, match="write the full path"):
        ctx.paths.resolve("~nosuchuser/out", "'Output folder'")
    values = [getattr(ctx.settings, name) for name in settings_tab.FIELD_ORDER]
    values[settings_tab.FIELD_ORDER.index("logs_dir")] = "~nosuchuser/logs"
    message = settings_tab.save(ctx, *values, False)[0]
    assert message.startswith("Not saved.") and "~nosuchuser, the home folder of a user" in message, message
    assert not ctx.settings_path.exists() and not ctx.workspace.logs_dir.exists()


# ------------------------------------------------------------------ Try Model's content encoder


def test_try_model_reads_its_encoder_field_as_the_other_tabs_do(ctx: AppContext, tmp_path: Path) -> None:
    """An emptied encoder dropdown (None) said 'conversion failed (AttributeError: 'NoneType' object has no
    attribute 'strip')'; Convert folder with '-x' typed there raised stage_args' ValueError (a traceback), and a
    typed path reached the job without the path guard that Train from recordings' same field has."""
    import soundfile as sf

    from tests.synth import speech_like
    from tests.test_blend import _model
    from webui import try_model_handlers
    from webui.tabs.try_model import _Handlers

    model = _model(ctx.workspace.logs_dir / "voice" / "voice.pth", 0)
    sf.write(clip := tmp_path / "clip.wav", speech_like(16000, (0.5,), gap_seconds=0.1), 16000)
    (recordings := tmp_path / "recordings").mkdir()
    on = _Handlers(ctx, try_model_handlers.ConverterCache(ctx.workspace))
    progress = lambda fraction, desc: None  # noqa: E731 (gr.Progress, outside a request)
    knobs = (0, "pm", 0.5, 0.33, 0.25)
    shown = on.on_convert(str(model), "", None, str(clip), *knobs, False, [], progress=progress)[0]
    assert "AttributeError" not in shown and "contentvec" in shown, shown  # the model's own encoder, not here
    words = "outside the folders this app may use"
    for typed in ("-x", "/etc"):
        started = on.on_convert_folder(str(model), "", typed, str(recordings), "", *knobs)
        assert started.startswith("Not started: 'Content encoder'") and words in started, started
        shown = on.on_convert(str(model), "", typed, str(clip), *knobs, False, [], progress=progress)[0]
        assert shown.startswith("Not converted: 'Content encoder'") and words in shown, shown
    assert not (ctx.workspace.logs_dir / "voice" / "jobs").exists()


# ------------------------------------------------------------------ the Train tab's GPU ids


def test_gpu_ids_the_machine_does_not_have_or_cannot_read_are_refused_before_a_start(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'99' (or '0' on a machine without CUDA) started a trainer that failed once started, saying '--device
    cuda:0 was asked for ...; use --device cpu' (a flag this tab has not); 50 ids started torchrun with 50
    processes; '²' and 10,000 zeros raised int()'s ValueError out of the handler; '٣' trained on GPU 3."""
    from rvc.train.launcher import parse_gpu_ids
    from webui import train_handlers

    monkeypatch.setattr(train_handlers, "cuda_device_count", lambda: 2)
    for text, words in (
        ("99", "this machine has 2 GPU(s), ids 0 to 1"),
        (",".join(map(str, range(50))), "this machine has 2 GPU(s)"),
        ("٣", "give numbers separated by commas"),
        ("0" * 10_000, "give numbers separated by commas"),
        ("0;1", "give numbers separated by commas"),
        ("0, 0", "each GPU may appear once"),
    ):
        message = train_handlers.start_training(ctx, "voice", text, False)
        assert message.startswith("Not started: GPU ids '") and words in message and len(message) < 300, message
    monkeypatch.setattr(train_handlers, "cuda_device_count", lambda: 0)
    assert "PyTorch sees no GPU here" in train_handlers.start_training(ctx, "voice", "0", False)
    assert parse_gpu_ids("１，０\n²", present=3) == (1, 0, 2)  # an input method's full-width digits and comma
    assert not ctx.workspace.logs_dir.exists()


# ------------------------------------------------------------------ Settings


def test_settings_names_its_fields_by_label_and_saves_nothing_the_next_start_refuses(ctx: AppContext) -> None:
    """The tab named fields by the file's keys ('auth: use USER:PASS', 'console_lines: ...'); a port of 400 digits
    raised float()'s OverflowError out of the handler; a checkbox sent as null or "yes" and the device 'cuda:１'
    (full-width) were saved, and the app then refused to start on the file, or the trainer on the device."""
    from webui.settings import load_settings
    from webui.tabs import settings as settings_tab

    def save(**changes: object) -> str:
        values = [changes.get(name, getattr(ctx.settings, name)) for name in settings_tab.FIELD_ORDER]
        return settings_tab.save(ctx, *values, False)[0]

    for changes, words in (
        ({"auth": ":b"}, "- 'Login': use USER:PASS"),
        ({"console_lines": 5}, "- 'Console lines': use 10 to 10000 lines"),
        ({"default_device": "cuda:１"}, "- 'Default device': use auto, cpu, cuda or cuda:N"),
        ({"share": True}, "- 'Public share link (gradio.live)': a public link lets anyone"),
        ({"tensorboard_port": 10**400}, "Not saved: 'TensorBoard port': give a whole number (got one of 401 digits)"),
        ({"verbose": None}, "Not saved: 'Verbose console (also the @@rvc progress lines)': tick it or leave it"),
        ({"share": "yes"}, "Not saved: 'Public share link (gradio.live)': tick it or leave it empty (got 'yes')"),
    ):
        assert words in save(**changes), changes
    assert not ctx.settings_path.exists()
    assert save(auth="me:pass:word", default_device="cuda:1").startswith("Saved")  # a ':' in the password is fine
    assert load_settings(ctx.settings_path).auth_pair() == ("me", "pass:word")


# ------------------------------------------------------------------ the pretrain lists with no rate chosen


@pytest.mark.parametrize("rate", [None, "abc", float("nan")])
def test_pretrain_lists_of_no_sample_rate_offer_scratch_and_say_to_choose_one(ctx: AppContext, rate: object) -> None:
    """Generate Configuration's pretrain lists (redrawn when its tab opens, on Refresh and on a rate change) and
    Train from recordings' (on the page's load) ended in int()'s TypeError or ValueError with no rate chosen: an
    'Error' toast, and the lists stayed as they were."""
    from webui.config_pretrains import NO_PRETRAIN, pretrain_choices
    from webui.tabs import train_from_recordings

    choices = pretrain_choices(ctx.workspace, rate, None, None)
    assert [value for _, value in choices.generators] == [NO_PRETRAIN] and choices.generator == NO_PRETRAIN
    assert choices.note == "'Sample rate': choose one of 32k, 40k, 48k to list its pretrains"
    update = train_from_recordings._pretrains(ctx, rate)  # type: ignore[arg-type]
    assert update["value"] == NO_PRETRAIN and [value for _, value in update["choices"]] == [NO_PRETRAIN]


# ------------------------------------------------------------------ Model tools: blend


def test_blend_reads_only_models_in_the_apps_folders_and_offers_no_flag(ctx: AppContext, tmp_path: Path) -> None:
    """Model A or B sent as any file of the server (/etc/passwd) started a blend job that made logs/NAME/ and read
    it; a name taken by a blend said 'choose another name, or overwrite it (--overwrite)', a flag this tab has not."""
    from webui.tabs.model_tools import start_blend

    a, b = (ctx.workspace.logs_dir / name / f"{name}.pth" for name in ("a", "b"))
    for model in (a, b):
        model.parent.mkdir(parents=True)
        model.write_bytes(b"")
    (elsewhere := tmp_path / "elsewhere.pth").write_bytes(b"")
    blended = start_blend(ctx, str(elsewhere), str(b), 0.5, "duet")
    assert blended.startswith("Not started: 'Model A'") and "outside the folders this app may use" in blended
    assert not (ctx.workspace.logs_dir / "duet").exists()
    blended = start_blend(ctx, str(a), str(b), 0.5, "a")
    assert blended == f"Not started: {a} exists: choose another name", blended


# ------------------------------------------------------------------ the Train tab's model buttons


def test_export_with_no_state_chosen_asks_for_one(ctx: AppContext) -> None:
    """An emptied 'State to export' (None) with a saved state raised the job's TypeError ('sequence item 11:
    expected str instance, NoneType found') out of Export."""
    from rvc.experiment.checkpoints import state_paths
    from tests.fake_experiment import make_extracted_experiment
    from webui import train_handlers

    make_extracted_experiment(ctx.workspace.logs_dir, "voice", train_clips=2, validation_clips=0, seconds=0.3)
    experiment = ctx.workspace.experiment("voice")
    experiment.checkpoints.folder.mkdir(parents=True, exist_ok=True)
    for path in vars(state_paths(experiment.checkpoints.folder, 100)).values():
        path.write_bytes(b"")
    message = train_handlers.export_model(ctx, "voice", None)  # type: ignore[arg-type]
    assert message == "Not exported: choose the 'State to export' (best or latest), then **Export**.", message
    assert not experiment.jobs.root.exists()


# ------------------------------------------------------------------ clips given as recordings


def test_the_logs_folder_or_another_experiments_folder_is_no_dataset_folder(ctx: AppContext) -> None:
    """Prepare's folders took the logs folder, or another experiment's, and the job read its clips as recordings
    (only the experiment's own folder was refused, by the job, in command-line words)."""
    from tests.fake_experiment import make_extracted_experiment
    from webui import prepare_handlers

    other = make_extracted_experiment(ctx.workspace.logs_dir, "other")
    clips = other.clip_audio("clip-0000", 40000).parent
    refusals = ((ctx.workspace.logs_dir, "is the experiments folder"), (clips, "is inside experiment 'other''s"))
    for folder, words in refusals:
        form = prepare_handlers.defaults() | {"experiment": "voice", "folders": str(folder)}
        with pytest.raises(UserError, match=f"^'Dataset folder\\(s\\) on the server': {folder} {words}"):
            prepare_handlers.prepare_request(ctx.workspace, ctx.paths, form)
    assert not ctx.workspace.experiment("voice").root.exists()

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


# ------------------------------------------------------------------ numbers that are no whole number


NOT_WHOLE = (float("nan"), float("inf"), "-inf", "nan")


def test_a_whole_number_field_refuses_nan_and_infinity_by_its_label(ctx: AppContext, tmp_path: Path) -> None:
    """int() of NaN or infinity raised ValueError/OverflowError out of every handler with a whole-number field:
    Prepare's workers and sample rate, Generate Configuration's epochs, Train from recordings' epochs, Settings."""
    from rvc.errors import UserError
    from tests.fake_experiment import make_extracted_experiment
    from webui import one_click, prepare_handlers
    from webui.tabs import settings as settings_tab

    (recordings := tmp_path / "recordings").mkdir()
    prepare_form = prepare_handlers.defaults() | {"experiment": "voice", "folders": str(recordings)}
    make_extracted_experiment(ctx.workspace.logs_dir, "voice", train_clips=2, validation_clips=0, seconds=0.3)
    config_form = config_handlers.form_from_train(TrainConfig())
    settings_form = [getattr(ctx.settings, name) for name in settings_tab.FIELD_ORDER]
    port = settings_tab.FIELD_ORDER.index("tensorboard_port")
    chain_form = {"experiment": "voice", "folders": str(recordings), "sample_rate": 40000, "f0_method": "pm"}
    chain_form |= {"embedder": "contentvec", "pretrain": one_click.NO_PRETRAIN}
    for value in NOT_WHOLE:
        for field, label in (("workers", "'Worker processes'"), ("sample_rate", "'Sample rate'")):
            with pytest.raises(UserError, match=f"^{label}: enter a whole number"):
                prepare_handlers.prepare_request(ctx.workspace, ctx.paths, prepare_form | {field: value})
        saved = config_handlers.save_form(ctx.workspace, ctx.paths, "voice", 40000, config_form | {"epochs": value})
        assert saved.startswith("Not saved: 'Epochs': enter a whole number"), saved
        with pytest.raises(UserError, match=r"^'Epochs': give a whole number between 1 and \d+, or leave it empty"):
            one_click.chain_request(ctx, chain_form | {"epochs": value})
        settings_form[port] = value
        message = settings_tab.save(ctx, *settings_form, False)[0]
        assert message.startswith("Not saved: 'TensorBoard port': give a whole number"), message
    settings_form[port] = 6006.7  # was saved as 6006
    assert settings_tab.save(ctx, *settings_form, False)[0].endswith("give a whole number (got 6006.7)")
    with pytest.raises(UserError, match=r"^'Epochs': give a whole number between 1 and"):  # the run refused it later
        one_click.chain_request(ctx, chain_form | {"epochs": 10**12})
    assert not ctx.settings_path.exists()


@pytest.mark.parametrize("rate", [None, "abc", 44100, -1])
def test_train_from_recordings_refuses_a_sample_rate_no_preset_trains_at(ctx: AppContext, rate: object) -> None:
    """'abc' raised int()'s ValueError; 44100 and -1 were handed to the run job, which refused them later (None was
    read as 40000)."""
    from rvc.errors import UserError
    from webui import one_click

    form = {"experiment": "voice", "folders": str(ctx.paths.base), "sample_rate": rate, "f0_method": "pm"}
    with pytest.raises(UserError, match=r"^'Sample rate': "):
        one_click.chain_request(ctx, form | {"embedder": "contentvec", "pretrain": one_click.NO_PRETRAIN})


def test_adding_a_pair_with_no_rate_chosen_says_to_choose_one(ctx: AppContext, tmp_path: Path) -> None:
    from webui.tabs.download_pretrained import add_uploaded_pair

    (g := tmp_path / "G_x.pth").write_bytes(b"")
    added = add_uploaded_pair(ctx.workspace.assets, str(g), str(g), "mine", None)  # type: ignore[arg-type]
    assert added.startswith("Not added: choose the rate the pair was trained at"), added


# ------------------------------------------------------------------ uploaded recordings


def _prepare_with_uploads(ctx: AppContext, tmp_path: Path, uploads: list[str]) -> object:
    from webui import prepare_handlers

    form = prepare_handlers.defaults() | {"experiment": "voice", "uploads": uploads}
    return prepare_handlers.prepare_request(ctx.workspace, ctx.paths, form)


def test_an_upload_the_server_no_longer_has_or_a_folder_is_refused_by_name(ctx: AppContext, tmp_path: Path) -> None:
    """A page left open past Gradio's clean-up sent paths of files gone from the server: FileNotFoundError from
    shutil.copyfile (a traceback), after the uploads before it had been copied; a folder: IsADirectoryError."""
    from rvc.errors import UserError

    (good := tmp_path / "good.wav").write_bytes(b"RIFF")
    (folder := tmp_path / "folder").mkdir()
    (loop := tmp_path / "loop.wav").symlink_to(loop)
    for bad, words in ((tmp_path / "gone.wav", "gone.wav is not on the server any more"), (folder, "is a folder"),
                       (loop, "loop.wav is not on the server any more"),
                       (tmp_path / ("x" * 300 + ".wav"), "File name too long")):  # fmt: skip
        with pytest.raises(UserError, match=f"^'Upload audio files': .*{words}"):
            _prepare_with_uploads(ctx, tmp_path, [str(good), str(bad)])
    assert not ctx.workspace.experiment("voice").root.exists()  # checked before anything was copied


def test_two_uploads_of_one_name_are_refused_unless_they_are_the_same_file(ctx: AppContext, tmp_path: Path) -> None:
    """Two takes named take.wav from two folders: the second replaced the first, and the report counted two."""
    from rvc.errors import UserError
    from webui.prepare_handlers import uploads_dir

    for folder, data in (("a", b"first"), ("b", b"second"), ("c", b"first")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "take.wav").write_bytes(data)
    with pytest.raises(UserError, match=r"two different files are named take\.wav: rename one"):
        _prepare_with_uploads(ctx, tmp_path, [str(tmp_path / "a/take.wav"), str(tmp_path / "b/take.wav")])
    request = _prepare_with_uploads(ctx, tmp_path, [str(tmp_path / "a/take.wav"), str(tmp_path / "c/take.wav")])
    assert "1 uploaded file(s)" in request.title  # type: ignore[attr-defined]
    kept = uploads_dir(ctx.workspace.experiment("voice"))
    assert [(p.name, p.read_bytes()) for p in kept.iterdir()] == [("take.wav", b"first")]


def test_an_upload_that_cannot_be_copied_leaves_no_part_of_it(
    ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk mid-copy left half a recording under its own name, which the prepare then read as damaged."""
    import errno
    import shutil

    from rvc.errors import UserError
    from webui.prepare_handlers import uploads_dir

    (take := tmp_path / "take.wav").write_bytes(b"RIFF" * 1000)

    def half_then_full(source: Path, target: Path) -> None:
        Path(target).write_bytes(b"RIFF")
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(shutil, "copyfile", half_then_full)
    with pytest.raises(UserError, match=r"could not keep take\.wav: .*the disk is full"):
        _prepare_with_uploads(ctx, tmp_path, [str(take)])
    assert list(uploads_dir(ctx.workspace.experiment("voice")).iterdir()) == []


# ------------------------------------------------------------------ paths the system refuses


def test_a_path_field_with_a_name_the_system_refuses_says_so(ctx: AppContext, tmp_path: Path) -> None:
    """A folder line or an output folder with a 300-character name ended in OSError 'File name too long' from
    is_dir() (a traceback); Settings' folders with one, or with a NUL byte, in OSError or ValueError."""
    from rvc.errors import UserError
    from webui import prepare_handlers
    from webui.tabs import settings as settings_tab

    long_name = str(tmp_path / ("a" * 300) / "recordings")
    form = prepare_handlers.defaults() | {"experiment": "voice", "folders": long_name}
    with pytest.raises(UserError, match=r"^'Dataset folder.*File name too long; choose a shorter name"):
        prepare_handlers.prepare_request(ctx.workspace, ctx.paths, form)
    with pytest.raises(UserError, match="File name too long"):
        ctx.paths.resolve(long_name, "'Output folder'")
    values = [getattr(ctx.settings, name) for name in settings_tab.FIELD_ORDER]
    for folder, words in ((long_name, "File name too long"), ("logs\x00", "is not a usable folder path")):
        values[settings_tab.FIELD_ORDER.index("logs_dir")] = folder
        message = settings_tab.save(ctx, *values, False)[0]
        assert message.startswith("Not saved.") and words in message, message
    assert not ctx.settings_path.exists()


def test_a_links_line_that_is_not_a_web_address_is_refused_and_no_value_passes_as_a_flag(
    ctx: AppContext, tmp_path: Path
) -> None:
    """Each line of the links field became a --url value of the prepare job: a line '--input=/elsewhere' was read
    as a flag there, and prepared a server folder the path guard never saw."""
    from rvc.cli.argv import stage_args
    from rvc.errors import UserError
    from webui import prepare_handlers

    for line in ("--input=/root/private", "file:///etc/passwd", "youtube.com/watch?v=x", "https://a b"):
        form = prepare_handlers.defaults() | {"experiment": "voice", "urls": f"https://example.com/a\n{line}"}
        with pytest.raises(UserError, match=r"^'Links \(yt-dlp\)': .* is not a link: give a web address"):
            prepare_handlers.prepare_request(ctx.workspace, ctx.paths, form)
    form = prepare_handlers.defaults() | {"experiment": "voice", "urls": " https://example.com/a \n\n"}
    args = prepare_handlers.prepare_request(ctx.workspace, ctx.paths, form).args
    assert args[args.index("--url") + 1] == "https://example.com/a"
    with pytest.raises(ValueError, match="would be read as a flag"):  # the last guard, for every stage's values
        stage_args("prepare", {"experiment": "voice", "input": [tmp_path, "--url=x"]})


# ------------------------------------------------------------------ Try Model and Model tools


def test_try_model_names_a_knob_that_holds_no_number(ctx: AppContext) -> None:
    """An emptied knob (None) or text ended Convert in 'conversion failed (TypeError: float() argument ...); the
    app's log has the details' and Convert folder in a traceback."""
    from webui import try_model_handlers
    from webui.tabs.try_model import _Handlers

    (model := ctx.workspace.logs_dir / "voice" / "voice.pth").parent.mkdir(parents=True)
    model.write_bytes(b"")  # the knobs are read before the model
    on = _Handlers(ctx, try_model_handlers.ConverterCache(ctx.workspace))
    for knobs, label in (((None, 0.5, 0.33, 0.25), "'Pitch shift"), ((0, "abc", 0.33, 0.25), "'Index rate")):
        shown = on.on_convert(str(model), "", "", None, knobs[0], "pm", *knobs[1:], False, [], progress=None)[0]
        assert shown.startswith(f"Not converted: {label}") and "number" in shown, shown
        started = on.on_convert_folder(str(model), "", "", str(ctx.paths.base), "", knobs[0], "pm", *knobs[1:])
        assert started.startswith(f"Not started: {label}"), started


def test_try_model_says_its_own_field_for_an_encoder_the_model_does_not_name(ctx: AppContext, tmp_path: Path) -> None:
    """A model trained with a custom encoder said 'pass the same encoder with --embedder PATH' in the tab, which has
    no command line: it names the tab's 'Content encoder' field."""
    import soundfile as sf

    from tests.synth import speech_like
    from tests.test_blend import _model
    from webui import try_model_handlers
    from webui.tabs.try_model import _Handlers

    model = _model(ctx.workspace.logs_dir / "voice" / "voice.pth", 0, embedder="/elsewhere/my-hubert")
    sf.write(clip := tmp_path / "clip.wav", speech_like(16000, (0.5,), gap_seconds=0.1), 16000)
    on = _Handlers(ctx, try_model_handlers.ConverterCache(ctx.workspace))
    progress = lambda fraction, desc: None  # noqa: E731 (gr.Progress, outside a request)
    shown = on.on_convert(str(model), "", "", str(clip), 0, "pm", 0.5, 0.33, 0.25, False, [], progress=progress)[0]
    assert shown.startswith(f"Not converted: {model}: the model records its content encoder as '/elsewhere/my-hubert'")
    assert "the 'Content encoder' field" in shown and "--embedder" not in shown, shown


def test_a_model_deleted_since_the_list_was_drawn_is_said_before_any_job(ctx: AppContext, tmp_path: Path) -> None:
    """Convert folder and Blend started a job on a model that was gone (Blend's made logs/NAME/jobs/ for it); Blend
    with an emptied ratio box raised TypeError from check_ratio."""
    from rvc.errors import UserError
    from rvc.infer.options import ConvertOptions
    from webui.tabs.model_tools import blend_request, start_blend
    from webui.try_model_folder import folder_request

    a, b = (ctx.workspace.logs_dir / name / f"{name}.pth" for name in ("a", "b"))
    for model in (a, b):
        model.parent.mkdir(parents=True)
        model.write_bytes(b"")
    with pytest.raises(UserError, match=r"^the ratio is the share of model A, a number from 0 to 1"):
        blend_request(ctx, str(a), str(b), None, "duet")  # type: ignore[arg-type]
    b.unlink()
    blended = start_blend(ctx, str(a), str(b), 0.5, "duet")
    assert blended.startswith("Not started: model B") and "Refresh models" in blended, blended
    assert not (ctx.workspace.logs_dir / "duet").exists()
    with pytest.raises(UserError, match="does not exist"):
        folder_request(ctx, str(b), None, None, str(tmp_path), None, ConvertOptions(f0_method="pm"))


def test_an_emptied_encoder_dropdown_asks_for_one_and_a_stop_of_no_job_stops_nothing(ctx: AppContext) -> None:
    """None from an emptied dropdown was read as the word: "<app folder>/None does not exist; give a Hugging Face
    model folder ..."."""
    from rvc.errors import UserError
    from tests.fake_experiment import make_extracted_experiment
    from webui import prepare_handlers

    make_extracted_experiment(ctx.workspace.logs_dir, "voice", train_clips=2, validation_clips=0, seconds=0.3)
    form = prepare_handlers.defaults() | {"experiment": "voice", "embedder": None}
    with pytest.raises(UserError, match=r"^'Content embedder': choose one of contentvec"):
        prepare_handlers.extract_request(ctx.workspace, ctx.paths, form)
    # Already fine, kept so: a Stop for no job, another folder's file or a job that ended.
    assert not ctx.stage_jobs.stop("") and not ctx.stage_jobs.stop("/etc/passwd")
    assert train_handlers.stop_training(ctx, "voice") == "**voice** is not training."

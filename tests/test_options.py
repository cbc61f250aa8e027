"""Options declared once (rvc.settings): the CLI's flags and the web UI's labels come from one declaration each."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rvc.cli import build_parser
from rvc.data.options import PrepareOptions
from rvc.data.whisper_options import WhisperOptions
from rvc.errors import UserError
from rvc.features.extract import ExtractOptions
from rvc.infer.options import ConvertOptions
from rvc.settings import cli_message, setting_of, settings_of, ui_help
from webui import prepare_handlers
from webui.paths_guard import PathGuard

ROOT = Path(__file__).resolve().parents[1]

# Each options dataclass and the command whose flags it generates.
DECLARED: list[tuple[type, str]] = [
    (PrepareOptions, "prepare"),
    (WhisperOptions, "prepare"),
    (ExtractOptions, "extract"),
    (ConvertOptions, "infer"),
]

# The flags and defaults of the commands before they were generated from the declarations.
FLAGS: list[tuple[str, str, Any]] = [
    ("prepare", "--sample-rate", 40000), ("prepare", "--cut", "automatic"), ("prepare", "--chunk", 3.0),
    ("prepare", "--overlap", 0.3), ("prepare", "--threshold", -42.0), ("prepare", "--min-length", 1.5),
    ("prepare", "--min-interval", 0.4), ("prepare", "--hop", 0.015), ("prepare", "--max-silence-kept", 0.5),
    ("prepare", "--min-clip", 0.5), ("prepare", "--highpass", True), ("prepare", "--normalize", "post"),
    ("prepare", "--denoise", False), ("prepare", "--denoise-strength", 1.0), ("prepare", "--device", "auto"),
    ("prepare", "--trim-silence", False), ("prepare", "--wav-format", "float32"), ("prepare", "--validation", "auto"),
    ("prepare", "--validation-min-seconds", 0.0), ("prepare", "--workers", 0),
    ("prepare", "--whisper-model", "base"), ("prepare", "--language", None), ("prepare", "--retranscribe", False),
    ("prepare", "--slice-by-whisper", False), ("prepare", "--slice-start-offset", 0.0),
    ("prepare", "--slice-end-offset", 0.0),
    ("extract", "--f0", "rmvpe"), ("extract", "--embedder", "contentvec"), ("extract", "--device", "auto"),
    ("extract", "--batch-size", 16), ("extract", "--precision", "auto"), ("extract", "--workers", 0),
    ("extract", "--f0-min", 50.0), ("extract", "--f0-max", 1100.0), ("extract", "--only", "all"),
    ("infer", "--f0", "rmvpe"), ("infer", "--pitch", 0.0), ("infer", "--index-rate", 0.75),
    ("infer", "--protect", 0.33), ("infer", "--rms-mix", 1.0), ("infer", "--f0-file", None),
    ("infer", "--output-rate", None), ("infer", "--seed", None),
]  # fmt: skip
CHOICES: list[tuple[str, str, tuple[Any, ...]]] = [
    ("prepare", "--sample-rate", (32000, 40000, 48000)),
    ("prepare", "--cut", ("automatic", "simple", "none")),
    ("prepare", "--normalize", ("none", "pre", "post")),
    ("prepare", "--wav-format", ("float32", "pcm16")),
    ("extract", "--f0", ("rmvpe", "crepe", "crepe-tiny", "fcpe", "harvest", "dio", "pm")),
    ("extract", "--precision", ("auto", "fp32", "fp16", "bf16")),
    ("extract", "--only", ("all", "f0", "content")),
    ("infer", "--f0", ("rmvpe", "crepe", "crepe-tiny", "fcpe", "harvest", "dio", "pm")),
    ("infer", "--precision", ("auto", "fp32", "fp16", "bf16")),
]


def _actions(stage: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[stage]
    return {flag: action for action in sub._actions for flag in action.option_strings}


@pytest.mark.parametrize(("options", "stage"), DECLARED)
def test_every_option_has_a_flag_and_a_label_from_one_declaration(options: type, stage: str) -> None:
    actions = _actions(stage)
    for option in settings_of(options):
        assert option.label and option.help, option.name
        if not option.cli:
            continue
        action = actions[option.flag]
        assert action.dest == option.name
        assert action.default == option.default
        assert (action.help or "").replace("%%", "%").startswith(option.help.split("$")[0])
        if option.choices:
            assert tuple(action.choices or ()) == option.choices


@pytest.mark.parametrize(("stage", "flag", "default"), FLAGS)
def test_flags_and_defaults_are_as_they_were(stage: str, flag: str, default: Any) -> None:
    assert _actions(stage)[flag].default == default


@pytest.mark.parametrize(("stage", "flag", "choices"), CHOICES)
def test_choices_are_as_they_were(stage: str, flag: str, choices: tuple[Any, ...]) -> None:
    assert tuple(_actions(stage)[flag].choices or ()) == choices


def test_the_prepare_tab_labels_and_help_come_from_the_declarations() -> None:
    keys = prepare_handlers.EXTRACT_KEYS
    for option in settings_of(PrepareOptions):
        assert prepare_handlers.LABELS[option.name] == option.label
        assert prepare_handlers.HELP[option.name] == ui_help(option)
        assert prepare_handlers.defaults()[option.name] == (
            str(option.default) if option.name == "validation" else option.default
        )
    for name in prepare_handlers.EXTRACT_FIELDS:
        option = next(s for s in settings_of(ExtractOptions) if s.name == name)
        assert prepare_handlers.LABELS[keys.get(name, name)] == option.label
    for name in prepare_handlers.WHISPER_FIELDS:  # the Whisper section's too
        key = prepare_handlers.WHISPER_KEYS.get(name, name)
        option = setting_of(WhisperOptions, name)
        assert (prepare_handlers.LABELS[key], prepare_handlers.HELP[key]) == (option.label, ui_help(option))
    # a mention of another option reads as that option's label in the UI and as its flag in the CLI
    assert "'Silence kept at cuts (s)'" in prepare_handlers.HELP["trim_silence"]
    assert "--max-silence-kept" in (_actions("prepare")["--trim-silence"].help or "")


def test_the_try_model_sliders_are_built_from_the_declarations() -> None:
    from webui.option_widgets import dropdown, slider

    for name in ("pitch", "index_rate", "protect", "rms_mix"):
        option = setting_of(ConvertOptions, name)
        widget = slider(option)
        assert (widget.minimum, widget.maximum, widget.step) == (option.minimum, option.maximum, option.step)
        assert (widget.value, widget.label, widget.info) == (option.default, option.label, ui_help(option))
    assert setting_of(ConvertOptions, "pitch").maximum == 24  # two octaves each way, as the slider always offered
    method = dropdown(setting_of(ConvertOptions, "f0_method"), value="pm")
    assert method.value == "pm" and [value for _, value in method.choices][:2] == ["rmvpe", "crepe"]


def test_an_error_names_its_field_as_each_front_end_does() -> None:
    with pytest.raises(UserError) as error:
        PrepareOptions(chunk=0.2).check()
    assert (error.value.field, error.value.options) == ("chunk", PrepareOptions)
    assert cli_message(error.value) == "--chunk 0.2 must be at least --min-clip (0.5 s)"
    assert (
        prepare_handlers.ui_text(error.value) == "'Chunk length (s)' 0.2 must be at least 'Shortest clip (s)' (0.5 s)"
    )
    assert str(error.value) == "chunk 0.2 must be at least min_clip (0.5 s)"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rvc", "--logs-dir", str(cwd / "logs"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "cli", "form", "ui"),
    [
        (
            ["prepare", "--experiment", "voice", "--input", ".", "--overlap", "5"],
            "error: --overlap 5.0 must be at least 0 and shorter than --chunk (3.0)",
            {"overlap": 5},
            "'Chunk overlap (s)' 5.0 must be at least 0 and shorter than 'Chunk length (s)' (3.0)",
        ),
        (
            ["prepare", "--experiment", "voice", "--input", ".", "--hop", "0.6"],
            "error: --min-length 1.5 must be at least --min-interval (0.4), which must be at least --hop (0.6)",
            {"hop": 0.6},
            "'Shortest slice (s)' 1.5 must be at least 'Shortest silence to cut at (s)' (0.4), "
            "which must be at least 'Slicer hop (s)' (0.6)",
        ),
        (
            ["extract", "--experiment", "voice", "--batch-size", "0"],
            "error: --batch-size 0 must be at least 1",
            {"batch_size": 0},
            "'Batch size' 0 must be at least 1",
        ),
    ],
)
def test_a_bad_value_is_named_by_its_flag_in_the_cli_and_by_its_label_in_the_ui(
    tmp_path: Path, args: list[str], cli: str, form: dict[str, Any], ui: str
) -> None:
    result = _cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert cli in result.stderr

    values = prepare_handlers.defaults(device="cpu") | form
    with pytest.raises(UserError) as error:
        if args[0] == "prepare":
            prepare_handlers.prepare_options(values)
        else:
            prepare_handlers.extract_options(values, PathGuard(tmp_path, ()))
    assert prepare_handlers.ui_text(error.value) == ui


def test_every_train_setting_has_a_config_flag_and_a_form_label() -> None:
    from rvc.config.train import TrainConfig
    from webui import config_handlers

    actions = _actions("config")
    specs = {spec.name: spec for spec in config_handlers.field_specs()}
    for option in settings_of(TrainConfig):
        action = actions[option.flag]
        assert action.dest == option.name and action.default == argparse.SUPPRESS  # absent: the saved value stays
        assert (action.help or "").endswith(f"(default: {option.default})")
        assert specs[option.name].label == config_handlers.LABELS[option.name] == option.label
        assert specs[option.name].choices == option.choices


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["config", "--experiment", "v", "--lr-milestones", "a,b"], "expected whole numbers separated by commas"),
        (["config", "--experiment", "v", "--betas", "x"], "expected numbers separated by commas, e.g. 0.8,0.99"),
        (["infer", "--model", "m.pth", "--input", "a.wav", "--seed", "0x10"], "invalid int value: '0x10'"),
    ],
)
def test_a_value_of_the_wrong_kind_is_named_without_python_internals(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse named the converter: 'invalid functools.partial(<function numbers_from_text at 0x...>) value'."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(args)
    error = capsys.readouterr().err
    assert said in error and "functools" not in error and "<function" not in error

"""Prepare Dataset tab handlers: real prepare / extract runs on synthetic audio, the report, the streaming."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from rvc.errors import UserError
from rvc.experiment import Workspace
from tests.fake_experiment import make_extracted_experiment, save_tiny_hubert
from tests.synth import speech_like
from tests.tiny_whisper import save_tiny_whisper
from webui import prepare_handlers as handlers
from webui.paths_guard import PathGuard
from webui.prepare_report import (
    load_dataset_report,
    note_name,
    pitch_figure,
    pitch_histogram,
    report_view,
    summary_markdown,
)
from webui.stage_jobs import ending_line

pytest_plugins = ["tests.browser"]


def _workspace(tmp_path: Path) -> tuple[Workspace, PathGuard]:
    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    return workspace, PathGuard(tmp_path, (workspace.logs_dir, workspace.assets_dir))


def _recordings(folder: Path, count: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        audio = speech_like(16000, phrases=(2.0, 1.5), gap_seconds=0.5, seed=i)
        sf.write(folder / f"take{i}.wav", audio, 16000, subtype="PCM_16")
    (folder / "notes.txt").write_text("not audio")
    return folder


def _form(**values: Any) -> dict[str, Any]:
    return handlers.defaults(device="cpu") | {"workers": 1} | values


@dataclass
class StageOutcome:
    """How a stage the form asked for ended: the texts the tab shows (title, log lines, ending)."""

    texts: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _stage(workspace: Workspace, build: Any) -> StageOutcome:
    """Build the form's request and run its stage here, as its job would (``--json-progress`` into a file)."""
    from rvc.cli import main
    from rvc.jobs.state import read_job

    try:
        request = build()
    except UserError as error:
        return StageOutcome([f"Error: {error}"], str(error))
    events = workspace.experiment(request.experiment).jobs.events(request.stage, "20240101-000000-000")
    events.unlink(missing_ok=True)
    folders = ["--logs-dir", str(workspace.logs_dir), "--assets-dir", str(workspace.assets_dir)]
    main([*folders, request.stage, *request.args, "--json-progress", "--events-file", str(events)])
    state, status = read_job(events)
    assert state.end is not None
    ending = ending_line(status, state.end.message)
    text = "\n".join([request.title, *state.log, ending])
    return StageOutcome([request.title, text], None if status == "done" else state.end.message)


def _prepare(workspace: Workspace, guard: PathGuard, form: Any, mode: str = "prepare") -> StageOutcome:
    return _stage(workspace, lambda: handlers.prepare_request(workspace, guard, form, mode))  # type: ignore[arg-type]


def _extract(workspace: Workspace, guard: PathGuard, form: Any) -> StageOutcome:
    return _stage(workspace, lambda: handlers.extract_request(workspace, guard, form))


def test_prepare_then_extract_through_the_handlers_and_the_report(tmp_path: Path) -> None:
    workspace, guard = _workspace(tmp_path)
    folder = _recordings(tmp_path / "in")
    form = _form(experiment="voice", folders=str(folder), validation="1")

    outcome = _prepare(workspace, guard, form, "prepare")
    texts = outcome.texts
    assert outcome.ok, texts[-1]
    assert texts[0].startswith("Prepare: 'voice' at 40000 Hz from " + str(folder))
    assert texts[-1].splitlines()[-1].startswith("Done: prepared 2 source(s)")

    summary, figure, rejected = report_view(workspace, "voice")
    report = load_dataset_report(workspace.experiment("voice"))
    assert report is not None and report.clip_count >= 2 and report.validation_clip_count >= 1
    assert f"clips: **{report.clip_count}**" in summary and "features: not extracted yet" in summary
    assert rejected[0] == ["notes.txt", "rejected", "not audio (extension '.txt')"]
    assert [row[:2] for row in rejected[1:]] == [["take0.wav", "kept, with a note"], ["take1.wav", "kept, with a note"]]
    assert "below the 40000 Hz target" in rejected[1][2]  # 16 kHz recordings for a 40 kHz model
    assert figure is None  # no pitch before extraction

    save_tiny_hubert(workspace.assets.embedders_dir / "tiny-hubert")
    # A relative embedder path starts at the guard's base (the app's folder), here tmp_path.
    form |= {"f0_method": "pm", "embedder": "assets/embedders/tiny-hubert", "extract_workers": 1}
    outcome = _extract(workspace, guard, form)
    texts = outcome.texts
    assert outcome.ok, texts[-1]
    assert texts[-1].splitlines()[-1].startswith(f"Done: features ready: f0 computed for {report.clip_count}")

    summary, figure, rejected = report_view(workspace, "voice")
    assert "pm pitch, tiny-hubert content" in summary and "- pitch: median" in summary
    assert figure is not None
    histogram = load_dataset_report(workspace.experiment("voice")).pitch  # type: ignore[union-attr]
    assert histogram is not None and histogram.clips == report.clip_count and histogram.missing == 0
    # speech_like glides between ~77 and ~308 Hz: the voiced frames lie there
    assert histogram.median_hz is not None and 70 < histogram.median_hz < 320


def test_uploads_are_kept_in_the_experiment_and_later_runs_reuse_the_inputs(tmp_path: Path) -> None:
    workspace, guard = _workspace(tmp_path)
    uploads = _recordings(tmp_path / "browser-temp", count=1)
    form = _form(experiment="voice", uploads=[str(uploads / "take0.wav")], validation="0")
    outcome = _prepare(workspace, guard, form, "prepare")
    texts = outcome.texts
    assert outcome.ok, texts[-1]
    experiment = workspace.experiment("voice")
    assert (handlers.uploads_dir(experiment) / "take0.wav").is_file()
    assert "1 uploaded file(s)" in texts[0]

    # Nothing named this time: the uploads stay part of the dataset, nothing is redone.
    outcome = _prepare(workspace, guard, _form(experiment="voice", validation="0"))
    texts = outcome.texts
    assert outcome.ok and "nothing to do: 1 sources unchanged" in texts[-1]


def test_an_empty_folder_field_reuses_the_previous_runs_folders(tmp_path: Path) -> None:
    workspace, guard = _workspace(tmp_path)
    folder = _recordings(tmp_path / "in", count=1)
    _prepare(workspace, guard, _form(experiment="voice", folders=str(folder), validation="0"))
    outcome = _prepare(workspace, guard, _form(experiment="voice", validation="0"))
    texts = outcome.texts
    assert outcome.ok
    assert f"from {folder} (the folders of the previous run)" in texts[0]
    assert "nothing to do" in texts[-1]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"experiment": ""}, "'Experiment name': enter a name"),
        ({"experiment": "../escape"}, "invalid experiment name '../escape'"),
        ({"chunk": None}, "'Chunk length (s)': enter a number"),
        ({"overlap": 5.0}, "'Chunk overlap (s)' 5.0 must be at least 0 and shorter than 'Chunk length (s)'"),
        ({"validation": "lots"}, "'Validation clips' 'lots': use auto"),
        ({"workers": 1.5}, "'Worker processes': enter a whole number"),
        ({"folders": "/etc"}, "/etc is a system folder"),
        ({"folders": "/nonexistent/recordings"}, "/nonexistent/recordings does not exist"),
        ({"folders": ""}, "nothing to prepare"),
    ],
)
def test_bad_values_end_the_stage_with_a_message_naming_the_field(
    tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    workspace, guard = _workspace(tmp_path)
    outcome = _prepare(workspace, guard, _form(**({"experiment": "voice"} | values)))
    assert outcome.texts == [f"Error: {outcome.error}"]
    assert message in str(outcome.error)
    assert not (workspace.logs_dir / "voice" / "dataset.json").exists()


def test_extraction_paths_must_stay_inside_the_allowed_folders(tmp_path: Path) -> None:
    workspace, guard = _workspace(tmp_path)
    outside = save_tiny_hubert(tmp_path / "elsewhere" / "hubert")
    with pytest.raises(UserError, match="outside the folders this app may use"):
        handlers.extract_options(_form(embedder=str(outside)), guard)
    with pytest.raises(UserError) as error:
        handlers.extract_options(_form(embedder=str(workspace.assets.root / "embedders" / "missing")), guard)
    assert re.match(r"'Content embedder': .* does not exist", handlers.ui_text(error.value))
    with pytest.raises(UserError) as error:
        handlers.extract_options(_form(f0_method="yin"), guard)
    assert handlers.ui_text(error.value).startswith("'Pitch (f0) method': 'yin' is not one of")
    assert handlers.extract_options(_form(embedder="contentvec", batch_size=4), guard).batch_size == 4
    texts = _extract(workspace, guard, _form(experiment="voice")).texts
    assert texts == ["Error: experiment 'voice' has no prepared dataset yet: prepare it first"]


def _tiny_whisper(path: Path) -> Path:

    return save_tiny_whisper(path)


def test_whisper_buttons_map_onto_prepare(tmp_path: Path) -> None:
    pytest.importorskip("whisper", reason="openai-whisper is not installed")
    workspace, guard = _workspace(tmp_path)
    folder = _recordings(tmp_path / "in", count=1)
    checkpoint = _tiny_whisper(workspace.assets.whisper_dir / "tiny-random.pt")
    form = _form(experiment="voice", folders=str(folder), validation="0", whisper_model=str(checkpoint))
    form |= {"whisper_language": "en"}
    experiment = workspace.experiment("voice")

    outcome = _prepare(workspace, guard, form, "transcribe")
    texts = outcome.texts
    assert outcome.ok, texts[-1]
    assert experiment.whisper_json.is_file() and experiment.transcript_train.is_file()
    options = json.loads(experiment.dataset_report.read_text())["options"]
    assert options["transcribe"] is True and options["slice_by_whisper"] is False
    assert options["whisper"]["language"] == "en" and options["whisper"]["retranscribe"] is False
    transcribed = experiment.whisper_json.stat().st_mtime_ns

    # (Re)create: reads whisper.json again (no new transcription) and rewrites the lists and transcripts.
    experiment.transcript_train.unlink()
    outcome = _prepare(workspace, guard, form, "recreate")
    texts = outcome.texts
    assert outcome.ok, texts[-1]
    assert experiment.whisper_json.stat().st_mtime_ns == transcribed
    assert experiment.transcript_train.is_file()
    assert texts[0].startswith("(Re)create datasets from whisper.json: 'voice'")

    # (Re)slice: cut at whisper.json's segments; the report records it.
    outcome = _prepare(workspace, guard, form | {"slice_start_offset": -0.05}, "reslice")
    options = json.loads(experiment.dataset_report.read_text())["options"]
    assert options["slice_by_whisper"] is True and options["whisper"]["slice_start_offset"] == -0.05
    assert experiment.whisper_json.stat().st_mtime_ns == transcribed
    # A random Whisper may find no speech: then reslicing leaves nothing, and the stage says so.
    assert outcome.ok or "no usable audio" in str(outcome.error)

    # The model path, like every typed path, must stay inside the allowed folders.
    elsewhere = tmp_path / "elsewhere.pt"
    elsewhere.write_bytes(b"")
    with pytest.raises(UserError, match="outside the folders this app may use"):
        handlers.whisper_options(form | {"whisper_model": str(elsewhere)}, guard, "transcribe")
    assert handlers.whisper_options(form | {"retranscribe": True}, guard, "transcribe").retranscribe
    assert not handlers.whisper_options(form | {"retranscribe": True}, guard, "reslice").retranscribe


def test_pitch_histogram_counts_every_voiced_frame(tmp_path: Path) -> None:
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=4, validation_clips=1, seconds=0.5)
    names = [f"clip-{i:04d}" for i in range(5)]
    f0 = np.load(experiment.clip_f0(names[0]))
    f0[:10] = 0.0  # unvoiced frames are left out
    np.save(experiment.clip_f0(names[0]), f0)
    histogram = pitch_histogram(experiment, [*names, "never-extracted"])
    assert histogram is not None
    frames = sum(int((np.load(experiment.clip_f0(n)) > 0).sum()) for n in names)
    assert histogram.voiced_frames == frames == int(histogram.counts.sum())
    assert histogram.clips == 5 and histogram.missing == 1
    assert len(histogram.edges_hz) == len(histogram.counts) + 1
    # clips glide from 120..180 Hz up by 10%: every frame lies in 120-198 Hz
    voiced_bins = histogram.edges_hz[:-1][histogram.counts > 0]
    assert voiced_bins.min() >= 110 and voiced_bins.max() <= 200
    assert histogram.low_hz is not None and histogram.high_hz is not None and histogram.low_hz >= 120
    assert pitch_figure(histogram) is not None
    assert pitch_histogram(experiment, ["never-extracted"]) is None
    assert note_name(440.0) == "A4" and note_name(261.63) == "C4"


def test_report_view_without_a_dataset_and_with_a_bad_name(tmp_path: Path) -> None:
    workspace, _ = _workspace(tmp_path)
    assert report_view(workspace, "")[0] == summary_markdown(None)
    summary, figure, rows = report_view(workspace, "nothing-here")
    assert "'nothing-here' has no prepared dataset yet" in summary and figure is None and rows == []
    assert report_view(workspace, "../x")[0].startswith("Error: invalid experiment name")


def test_rvc_messages_name_the_tabs_labels() -> None:
    from rvc.data.options import PrepareOptions

    with pytest.raises(UserError) as error:
        PrepareOptions(chunk=0.2).check()
    assert error.value.field == "chunk"
    assert handlers.ui_text(error.value) == "'Chunk length (s)' 0.2 must be at least 'Shortest clip (s)' (0.5 s)"
    with pytest.raises(UserError) as error:
        handlers.prepare_options(_form(hop=0.0))
    assert handlers.ui_text(error.value) == "'Slicer hop (s)' 0 must be positive"


# --- the real app in a real browser (tests/browser.py: one app for this module) ---------------


def test_prepare_extract_and_configure_through_the_ui(page: Any, app: Any, tmp_path: Path) -> None:
    """Prepare and extract an experiment from synthetic files in the browser, see the report, then configure it."""
    from tests.browser import open_tab, screenshot

    folder = _recordings(tmp_path / "recordings")
    for i, speaker in enumerate(("alice", "bob")):  # one folder a speaker: prepared with speakers from folders
        (folder / speaker).mkdir()
        (folder / f"take{i}.wav").rename(folder / speaker / f"take{i}.wav")
    save_tiny_hubert(app.assets_dir / "embedders" / "tiny-hubert")

    open_tab(page, "Prepare Dataset")
    for section in (
        "Slicing and cleaning",
        "Validation split",
        "Whisper transcription (optional, instead of Prepare dataset)",
    ):
        page.get_by_text(section, exact=True).click()
    page.get_by_text("More extraction options", exact=True).click()
    page.get_by_role("button", name="Transcribe and process").wait_for()
    screenshot(page, "prepare_dataset_options")
    page.get_by_label("Experiment name").fill("ui-voice")
    page.get_by_label("Dataset folder(s) on the server").fill(str(folder))
    page.get_by_role("radio", name="folders", exact=True).check()
    page.get_by_label("Worker processes", exact=True).fill("1")  # no worker processes to start: faster here
    page.get_by_role("button", name="Prepare dataset", exact=True).click()
    progress = page.get_by_label("Progress")
    page.wait_for_function(
        "el => el.value.includes('Done: ') || el.value.includes('Error: ')",
        arg=progress.element_handle(),
        timeout=120_000,
    )
    assert "Done: prepared 2 source(s)" in progress.input_value(), progress.input_value()
    page.get_by_text("clips: ").first.wait_for()
    page.get_by_text("speakers: 2").first.wait_for()  # and a table of them: ids, clips, durations
    assert page.get_by_role("cell", name="bob", exact=True).is_visible()
    page.locator("text=notes.txt >> visible=true").first.wait_for()  # the rejected-files table

    page.get_by_label("Pitch (f0) method").click()
    page.get_by_role("option", name="pm", exact=True).click()
    page.get_by_label("Content embedder").fill(str(app.assets_dir / "embedders" / "tiny-hubert"))
    page.get_by_label("Content embedder").press("Enter")
    page.get_by_role("button", name="Extract features").click()
    page.wait_for_function(
        "el => el.value.includes('Done: features') || el.value.includes('Error: ')",
        arg=progress.element_handle(),
        timeout=180_000,
    )
    assert "Done: features ready" in progress.input_value(), progress.input_value()
    page.get_by_text("pitch: median").first.wait_for()
    page.locator(".gradio-container img, .gradio-container canvas").first.wait_for()
    screenshot(page, "prepare_dataset_report")

    # A pretrain pair downloaded while the app runs shows when the tab opens (no restart).
    from tests.test_webui_config import _pair

    g, d = _pair(app.assets_dir / "pretrained_v2", "f0G40k.pth", "f0D40k.pth", 40000)
    open_tab(page, "Generate Configuration")
    page.wait_for_timeout(1000)  # the tab's select event refreshes the experiment and pretrain lists
    page.get_by_label("Experiment", exact=True).locator("visible=true").first.click()
    page.get_by_role("option", name="ui-voice").click()
    page.get_by_text("Suggested settings for the dataset").wait_for()
    page.get_by_label("Pretrained generator (G)").click()
    page.get_by_role("option", name="f0G40k.pth").click()
    discriminator = page.get_by_label("Pretrained discriminator (D)")
    page.wait_for_function("el => el.value === 'f0D40k.pth'", arg=discriminator.element_handle())  # its partner
    page.get_by_role("button", name="Validate").click()
    # the tiny test pretrain does not fit the full 40k model: Validate says so, by name
    page.get_by_text("Errors: training would not start").wait_for()
    assert page.get_by_text(str(g)).first.is_visible()
    screenshot(page, "generate_configuration")

    page.get_by_label("Pretrained generator (G)").click()
    page.get_by_role("option", name="none: train from scratch").click()
    page.wait_for_function("el => el.value.startsWith('none')", arg=discriminator.element_handle())
    page.get_by_role("button", name="Save configuration").click()
    # the save's own message: plain "Saved" also matches "(not saved yet)" and help lines, case-insensitively
    page.get_by_text("Next: Start it in the Train tab").first.wait_for()
    assert (app.logs_dir / "ui-voice" / "config.json").is_file()
    assert d.is_file()

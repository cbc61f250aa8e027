"""Handlers of the Prepare Dataset tab: form values -> the prepare and extract stages of :mod:`rvc`.

The tab passes its values as one mapping, keyed by the names in :data:`LABELS`.
Each stage handler turns the form into a ``StageRequest``: the ``python -m rvc`` stage
that runs it as a job (``webui.stage_jobs``). Bad values raise a UserError naming the
field as the tab labels it.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from rvc.data.download import check_link
from rvc.data.options import PrepareOptions
from rvc.data.whisper_options import WhisperOptions
from rvc.errors import UserError, path_problem
from rvc.experiment import Experiment, Workspace
from rvc.experiment.dataset import DatasetReport
from rvc.experiment.names import validate_experiment_name
from rvc.features.extract import ExtractOptions
from rvc.fileio import make_folder
from rvc.settings import from_form, labels_of, setting_of, settings_of, ui_help, ui_message
from webui.paths_guard import PathGuard

Mode = Literal["prepare", "transcribe", "reslice", "recreate"]

# What each button does, in the words the tab shows.
MODE_TITLES: dict[str, str] = {
    "prepare": "Prepare",
    "transcribe": "Transcribe and process",
    "reslice": "(Re)slice by Whisper's segments",
    "recreate": "(Re)create datasets from whisper.json",
}

# The labels of the form's fields that are not options (the options' own come from their declarations).
FORM_LABELS: dict[str, str] = {
    "experiment": "Experiment name",
    "folders": "Dataset folder(s) on the server",
    "uploads": "Upload audio files",
    "urls": "Links (yt-dlp)",
}
# The form's key of an extract option whose name a prepare option has too; the one device serves both.
EXTRACT_KEYS: dict[str, str] = {"workers": "extract_workers"}
EXTRACT_FIELDS = tuple(s.name for s in settings_of(ExtractOptions) if s.name not in ("device", "only"))
# The form's keys of the Whisper options (the app's settings name the model and language so too); device: the form's.
WHISPER_KEYS: dict[str, str] = {"model": "whisper_model", "language": "whisper_language"}
WHISPER_FIELDS = tuple(s.name for s in settings_of(WhisperOptions) if s.name != "device")

# The form's keys and the labels the tab gives them (error messages use the labels).
LABELS: dict[str, str] = {
    **FORM_LABELS,
    **labels_of(PrepareOptions),
    **{EXTRACT_KEYS.get(name, name): setting_of(ExtractOptions, name).label for name in EXTRACT_FIELDS},
    **{WHISPER_KEYS.get(name, name): setting_of(WhisperOptions, name).label for name in WHISPER_FIELDS},
}
# Each option's help line, keyed as the form keys it, for the widgets' info.
HELP: dict[str, str] = {
    **{s.name: ui_help(s) for s in settings_of(PrepareOptions)},
    **{EXTRACT_KEYS.get(s.name, s.name): ui_help(s) for s in settings_of(ExtractOptions) if s.name in EXTRACT_FIELDS},
    **{WHISPER_KEYS.get(s.name, s.name): ui_help(s) for s in settings_of(WhisperOptions) if s.name in WHISPER_FIELDS},
}

UPLOADS_FOLDER = "uploads"  # inside the experiment's downloads folder, which every prepare run reads
DEVICES = ("auto", "cpu", "cuda")


def defaults(device: str = "auto", whisper_model: str = "base", whisper_language: str = "") -> dict[str, Any]:
    """Return the form's starting values: rvc's defaults, with the app's device and Whisper settings."""
    extract = {EXTRACT_KEYS.get(s.name, s.name): s.default for s in settings_of(ExtractOptions)}
    return {
        "experiment": "",
        "folders": "",
        "uploads": None,
        "urls": "",
        **{s.name: s.default for s in settings_of(PrepareOptions)},
        **{key: extract[key] for key in (EXTRACT_KEYS.get(name, name) for name in EXTRACT_FIELDS)},
        "device": device,
        "validation": str(PrepareOptions().validation),
        **{WHISPER_KEYS.get(name, name): setting_of(WhisperOptions, name).default for name in WHISPER_FIELDS},
        "whisper_model": whisper_model,
        "whisper_language": whisper_language,
    }


def ui_text(error: UserError) -> str:
    """Return the error's message naming the fields by the tab's labels ("chunk" -> 'Chunk length (s)')."""
    return ui_message(error, LABELS)


def experiment_of(workspace: Workspace, name: str | None) -> Experiment:
    """Return the experiment named in the form, or raise a UserError saying what a name may hold."""
    name = (name or "").strip()
    if not name:
        raise UserError("enter a name for the experiment, e.g. my-voice", field="experiment")
    return workspace.experiment(validate_experiment_name(name))


def prepare_options(form: Mapping[str, Any]) -> PrepareOptions:
    """Return the PrepareOptions the form describes; raise a UserError naming the first bad field."""
    form = {**form, "validation": form.get("validation") or "auto", "device": str(form.get("device") or "auto")}
    return from_form(PrepareOptions, form)


def whisper_options(form: Mapping[str, Any], guard: PathGuard, mode: Mode) -> WhisperOptions:
    """Return the Whisper settings of the form for the button ``mode``.

    Only "Transcribe and process" transcribes again what whisper.json holds; (re)slice cuts at its
    segments and (re)create cuts as the previous run did.
    """
    try:
        import whisper
    except ImportError as error:
        raise UserError(f"transcription needs openai-whisper ({error}): pip install openai-whisper") from None
    values = {WHISPER_KEYS.get(name, name): form.get(WHISPER_KEYS.get(name, name)) for name in WHISPER_FIELDS}
    values["device"] = str(form.get("device") or "auto").strip()
    options = from_form(WhisperOptions, values, WHISPER_KEYS)
    model = options.model
    if not model:
        raise UserError(f"'{LABELS['whisper_model']}': choose a model, e.g. base")
    if model not in whisper.available_models():
        model = str(guard.resolve(model, f"'{LABELS['whisper_model']}'", must_exist=True))
    language = options.language if options.language and options.language.lower() != "auto" else None
    slice_by_whisper = {
        "transcribe": options.slice_by_whisper,
        "reslice": True,
        "recreate": False,  # prepare_request: as the previous run did
        "prepare": False,
    }[mode]
    return replace(
        options,
        model=model,
        language=language,
        retranscribe=mode == "transcribe" and options.retranscribe,
        slice_by_whisper=slice_by_whisper,
    )


def extract_options(form: Mapping[str, Any], guard: PathGuard) -> ExtractOptions:
    """Return the ExtractOptions the form describes; a custom embedder path must lie in a folder the app may use."""
    from rvc.features.embedder_sources import EMBEDDERS

    values = {EXTRACT_KEYS.get(name, name): form[EXTRACT_KEYS.get(name, name)] for name in EXTRACT_FIELDS}
    options = from_form(ExtractOptions, {**values, "device": str(form.get("device") or "auto")}, EXTRACT_KEYS)
    embedder = options.embedder
    if not embedder:
        raise _extract_error("embedder", f"choose one of {', '.join(EMBEDDERS)} or give a path")
    if embedder not in EMBEDDERS:
        path = guard.resolve(embedder, f"'{LABELS['embedder']}'")
        if not path.exists():
            raise _extract_error(
                "embedder",
                f"{path} does not exist; give a Hugging Face model folder or a fairseq "
                f".pt file (e.g. under the assets folder's embedders/), or one of {', '.join(EMBEDDERS)}",
            )
        options = replace(options, embedder=str(path))
    return options


def _extract_error(name: str, message: str) -> UserError:
    return UserError(message, field=name, options=ExtractOptions)


@dataclass(frozen=True)
class Inputs:
    """What one prepare run reads."""

    folders: list[Path]
    urls: list[str]
    uploaded: int  # files copied from the browser into the experiment this time
    reused: bool  # the folders came from the previous run's dataset report


def uploads_dir(experiment: Experiment) -> Path:
    """Return where uploaded recordings are kept: inside the downloads folder, which every prepare run reads."""
    return experiment.downloads_dir / UPLOADS_FOLDER


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _safe_upload_name(name: str) -> str:
    # A leading dot would hide the file from the scan; separators cannot occur in Path.name.
    return name.lstrip(".") or "upload"


def uploaded_files(uploads: list[Any]) -> dict[str, Path]:
    """Return the uploaded files by the name each is kept under; UserError naming one that cannot be kept.

    Everything is checked before anything is copied: a refused upload leaves the experiment as it was.
    A file the server no longer has (a page left open past Gradio's clean-up), a folder, or two different
    files of one name (the second would replace the first without a word) are refused by name.
    """
    field = f"'{LABELS['uploads']}'"
    files: dict[str, Path] = {}
    for upload in uploads:
        text = str(getattr(upload, "name", upload) or "")
        if not text:
            continue  # an entry without a file: nothing was uploaded there
        source = Path(text)
        try:
            usable = source.is_file()
        except OSError as error:
            raise UserError(f"{field}: {path_problem(error) or error}") from None
        if source.is_dir():
            raise UserError(f"{field}: {source} is a folder, not a file: upload the recordings in it")
        if not usable:
            raise UserError(
                f"{field}: {source.name or source} is not on the server any more (a page left open too long?): "
                "take it off the list and upload it again"
            )
        name = _safe_upload_name(source.name)
        kept = files.setdefault(name, source)
        if kept != source and not filecmp.cmp(kept, source, shallow=False):
            raise UserError(f"{field}: two different files are named {name}: rename one and upload them again")
    return files


def copy_uploads(files: dict[str, Path], target: Path) -> None:
    """Copy each upload into ``target`` under its name; a copy that fails leaves no part of its file there."""
    make_folder(target)
    for name, source in files.items():
        path = target / name
        staging = path.with_name(f".{name}.part")  # a dotfile: never read as a recording if left behind
        try:
            shutil.copyfile(source, staging)
            os.replace(staging, path)
        except OSError as error:
            staging.unlink(missing_ok=True)
            raise UserError(f"'{LABELS['uploads']}': could not keep {name}: {path_problem(error) or error}") from None


def gather_inputs(experiment: Experiment, form: Mapping[str, Any], guard: PathGuard) -> Inputs:
    """Return the folders and links to prepare, copying uploaded files into the experiment first.

    Every prepare run takes its inputs as the whole dataset (clips of sources
    no longer given are removed), so when the form names nothing, the folders
    of the previous run (from its dataset report) are used again.
    """
    folders = []
    for line in _lines(form.get("folders")):
        try:
            folder = guard.allow_dataset_folder(line)
        except UserError as error:
            raise UserError(f"'{LABELS['folders']}': {error}") from None
        if (problem := experiment.not_recordings(folder)) is not None:  # said here, not by the job in flags
            raise UserError(f"'{LABELS['folders']}': {problem}; give the folder that holds your recordings")
        folders.append(folder)
    try:
        urls = [check_link(line) for line in _lines(form.get("urls"))]
    except UserError as error:
        raise UserError(f"'{LABELS['urls']}': {error}") from None
    uploads = form.get("uploads") or []
    if isinstance(uploads, str):
        uploads = [uploads]
    files = uploaded_files(uploads)
    if files:
        copy_uploads(files, uploads_dir(experiment))
    reused = False
    if not folders and not urls and not uploads:
        report = DatasetReport.find(experiment)
        previous = report.inputs if report is not None else []
        folders = [guard.allow_dataset_folder(p) for p in previous if p != experiment.downloads_dir]
        reused = bool(folders)
    downloads = experiment.downloads_dir
    if downloads.is_dir() and downloads not in folders:
        folders.append(downloads)  # uploads and earlier downloads stay part of the experiment
    if not folders and not urls:
        raise UserError(
            f"nothing to prepare: give '{LABELS['folders']}', upload files, or paste links "
            f"(or run once with them: later runs reuse the same folders)"
        )
    return Inputs(folders, urls, len(files), reused)


def _last_slicing(experiment: Experiment) -> bool:
    """Return whether the previous prepare run cut at Whisper's segments (its dataset report records it)."""
    report = DatasetReport.find(experiment)
    return report is not None and report.sliced_by_whisper


def _describe(inputs: Inputs) -> str:
    parts = [str(folder) for folder in inputs.folders]
    if inputs.uploaded:
        parts.append(f"{inputs.uploaded} uploaded file(s)")
    if inputs.urls:
        parts.append(f"{len(inputs.urls)} link(s)")
    reused = " (the folders of the previous run)" if inputs.reused else ""
    return ", ".join(parts) + reused


@dataclass(frozen=True)
class StageRequest:
    """A stage the form asks for, as the job that runs it: ``python -m rvc <stage> <args>`` on an experiment."""

    experiment: str
    stage: str
    args: list[str]
    title: str


def prepare_request(
    workspace: Workspace, guard: PathGuard, form: Mapping[str, Any], mode: Mode = "prepare"
) -> StageRequest:
    """Return the prepare job the form describes (``mode``: which button); raise a UserError naming a bad field.

    prepare: cut at silences, no Whisper. transcribe: Whisper first (skipping
    sources in whisper.json unless asked), cutting at its segments when "Slice by
    Whisper's segments" is ticked. reslice: cut at the segments of whisper.json
    with the current offsets. recreate: read whisper.json again and rewrite the
    transcripts, clip lists and split, cutting the way the previous run did.
    Uploaded files are copied into the experiment here, before the job starts.
    """
    from rvc.cli.argv import option_values, stage_args

    try:
        experiment = experiment_of(workspace, form.get("experiment"))
        options = prepare_options(form)
        whisper = whisper_options(form, guard, mode) if mode != "prepare" else None
        if whisper is not None and mode == "recreate":
            whisper = replace(whisper, slice_by_whisper=_last_slicing(experiment))
        inputs = gather_inputs(experiment, form, guard)
    except UserError as error:
        raise UserError(ui_text(error)) from None
    values: dict[str, Any] = {"experiment": experiment.name, "input": inputs.folders, "url": inputs.urls}
    values |= option_values(options)
    if whisper is not None:  # its device is the form's, already among the options' values
        values |= {"transcribe": True} | {name: getattr(whisper, name) for name in WHISPER_FIELDS}
    title = f"{MODE_TITLES[mode]}: '{experiment.name}' at {options.sample_rate} Hz from {_describe(inputs)}"
    return StageRequest(experiment.name, "prepare", stage_args("prepare", values), title)


def extract_request(workspace: Workspace, guard: PathGuard, form: Mapping[str, Any]) -> StageRequest:
    """Return the extract job (pitch and content features) the form describes; raise a UserError naming a bad field."""
    from rvc.cli.argv import option_values, stage_args

    try:
        experiment = experiment_of(workspace, form.get("experiment"))
        options = extract_options(form, guard)
        if not experiment.dataset_report.is_file():
            raise UserError(f"experiment '{experiment.name}' has no prepared dataset yet: prepare it first")
    except UserError as error:
        raise UserError(ui_text(error)) from None
    args = stage_args("extract", {"experiment": experiment.name} | option_values(options))
    embedder = Path(options.embedder).name if "/" in options.embedder else options.embedder
    title = f"Extract features of '{experiment.name}': {options.f0_method} pitch, {embedder} content"
    return StageRequest(experiment.name, "extract", args, title)

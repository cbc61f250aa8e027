"""Try Model tab: convert a clip (or a folder) with an exported model, listen, download, compare with the last few.

The model list follows the app's current experiment (``webui.current``): choosing an experiment
elsewhere selects its model here, a model exported meanwhile is listed without a Refresh.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from rvc.choices import F0Method
from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.infer.model import EMBEDDER_FLAG
from rvc.infer.pipeline import ConvertOptions
from rvc.settings import setting_of
from webui import try_model_folder as folder_section
from webui import try_model_handlers as h
from webui.context import AppContext
from webui.current import Follower
from webui.encoders import LABEL as ENCODER_LABEL
from webui.encoders import chosen_encoder, encoder_choices, where_to_put
from webui.files import servable
from webui.option_widgets import dropdown, slider

log = logging.getLogger(__name__)

NO_MODEL = (
    "No exported model yet: train one in **Train** or **Train from recordings** (it exports NAME.pth), "
    "or upload a .pth above."
)
OWN_ENCODER = "the one the model records"


def _players(history: list[h.Result]) -> list[Any]:
    """Return updates for the history players: one per kept result, the rest hidden."""
    updates = []
    for number in range(h.HISTORY_SIZE):
        if number < len(history):
            result = history[number]
            updates.append(gr.update(value=servable(result.path), label=f"#{number + 1} {result.label}", visible=True))
        else:
            updates.append(gr.update(value=None, visible=False))
    return updates


def render(ctx: AppContext) -> None:
    """Draw the tab; its loaded voices live in a cache made here, one per app."""
    from gradio.context import Context

    tab = Context.block  # the gr.Tab this tab is drawn in: opening it lists encoders added meanwhile
    models = h.model_choices(ctx.workspace)
    gr.Markdown("Convert a clip with a trained voice. Results are saved in `logs/<experiment>/conversions/`.")
    with gr.Row():
        with gr.Column():
            source = _draw_source(ctx.workspace, models)
        with gr.Column():
            knobs = _draw_knobs(ctx.workspace)
    results = _draw_results(has_models=bool(models))
    folder = folder_section.draw()
    current = ctx.current_experiment()
    current.follow(_model_follower(ctx.workspace, source.model))
    current.on_change(_index_refresher(ctx.workspace), [source.model, source.index], [source.index])
    on = _Handlers(ctx, h.ConverterCache(ctx.workspace))
    _wire(on, source, knobs, results)
    _wire_folder(on, source, knobs, folder)
    if isinstance(tab, gr.Tab):
        tab.select(on.on_open, outputs=source.embedder, show_progress="hidden")


def _index_refresher(workspace: Workspace) -> Any:
    """Return the listener that lists indexes built meanwhile, choosing the model's own once it has one."""

    def refresh(model: str | None, index: str | None) -> Any:
        own = h.default_index(workspace, model)
        value = own if not index and own else index
        return gr.update(choices=h.index_choices(workspace, model), value=value)

    return refresh


def _model_follower(workspace: Workspace, model: gr.Dropdown) -> Follower:
    """The model list as a chooser of the current experiment: it selects the experiment's best (else latest) export."""

    def choices(value: str | None) -> list[tuple[str, str]]:
        found = h.model_choices(workspace)
        if value and value not in [path for _, path in found]:  # an uploaded model stays listed
            found.append((f"uploaded / {Path(value).name}", value))
        return found

    def show(name: str, statuses: object) -> Any:
        return gr.update(choices=choices(None), value=h.experiment_model(workspace, name))

    def relist(value: str | None, current: str, statuses: object) -> Any:
        if not value:  # nothing shown yet: the current experiment's model, once it has one
            return gr.update(choices=choices(None), value=h.experiment_model(workspace, current))
        return gr.update(choices=choices(value))

    name_of = partial(h.model_experiment, workspace)
    # the watch reads its value (the dropdown accepts any: an uploaded model is one outside the list)
    return Follower(model, show, relist, name_of, ("input",), relist_reads_value=True)


@dataclass
class _Source:
    """The voice and the clip: model, index, content encoder."""

    model: gr.Dropdown
    upload: gr.File
    index: gr.Dropdown
    embedder: gr.Dropdown
    clip: gr.Audio


@dataclass
class _Knobs:
    """How the clip is converted, and the Convert button."""

    pitch: gr.Slider
    f0_method: gr.Dropdown
    index_rate: gr.Slider
    protect: gr.Slider
    rms_mix: gr.Slider
    compare: gr.Checkbox
    convert: gr.Button


@dataclass
class _Results:
    status: gr.Markdown
    output: gr.Audio
    output_b: gr.Audio  # the latest checkpoint's result when comparing
    table: gr.Dataframe
    players: list[gr.Audio]  # the history's results, one player each
    history: gr.State  # this session's results, newest first


def _draw_source(workspace: Workspace, models: list[tuple[str, str]]) -> _Source:
    first = models[0][1] if models else None
    model = gr.Dropdown(
        models,
        value=first,
        label="Exported model",
        info="lists itself: a model exported meanwhile shows here; the current experiment's is selected",
        elem_id="try-model-model",
    )
    upload = gr.File(
        label="…or upload a model (.pth); ✕ only takes it off this field, the file is not deleted",
        file_types=[".pth"],
        type="filepath",
    )
    index = gr.Dropdown(h.index_choices(workspace, first), value=h.default_index(workspace, first), label="Index")
    embedder = gr.Dropdown(
        _encoders(workspace),
        value="",
        allow_custom_value=True,
        label=ENCODER_LABEL,
        info=f"usually {OWN_ENCODER}; {where_to_put(workspace.assets)}",
    )
    clip = gr.Audio(
        sources=["upload", "microphone"], type="filepath", label="Clip to convert", elem_id="try-model-clip"
    )
    return _Source(model, upload, index, embedder, clip)


def _encoders(workspace: Workspace) -> list[tuple[str, str]]:
    return [(OWN_ENCODER, ""), *encoder_choices(workspace.assets)]


def _draw_knobs(workspace: Workspace) -> _Knobs:
    # Each knob's label, help, range and step are ConvertOptions' declarations (rvc.infer.options).
    return _Knobs(
        pitch=slider(setting_of(ConvertOptions, "pitch")),
        f0_method=dropdown(setting_of(ConvertOptions, "f0_method"), value=h.default_f0_method(workspace)),
        index_rate=slider(setting_of(ConvertOptions, "index_rate")),
        protect=slider(setting_of(ConvertOptions, "protect")),
        rms_mix=slider(setting_of(ConvertOptions, "rms_mix")),
        compare=gr.Checkbox(label="Compare checkpoints (NAME_best.pth and NAME.pth, same seed)"),
        convert=gr.Button("Convert", variant="primary"),
    )


def _draw_results(has_models: bool) -> _Results:
    status = gr.Markdown("" if has_models else NO_MODEL, elem_id="try-model-status")
    with gr.Row():
        output = gr.Audio(label="Result", type="filepath", interactive=False, elem_id="try-model-output")
        output_b = gr.Audio(label="Latest checkpoint", type="filepath", interactive=False, visible=False)
    gr.Markdown(
        f"### Recent conversions\nThe last {h.HISTORY_SIZE} are kept here to compare;"
        " every file stays in the experiment's conversions folder."
    )
    table = gr.Dataframe(headers=h.HISTORY_HEADERS, value=[], interactive=False, wrap=True, elem_id="try-model-history")
    with gr.Row():
        players = [
            gr.Audio(type="filepath", interactive=False, visible=False, elem_id=f"try-model-history-{n}")
            for n in range(h.HISTORY_SIZE)
        ]
    return _Results(status, output, output_b, table, players, gr.State([]))


class _Handlers:
    """The tab's event handlers, over the app's workspace and this tab's cache of loaded voices."""

    def __init__(self, ctx: AppContext, cache: h.ConverterCache) -> None:
        self.ctx = ctx
        self.workspace = ctx.workspace
        self.cache = cache

    def on_open(self) -> Any:
        """Return the encoder list as the assets folder holds it now (one may have been added)."""
        return gr.update(choices=_encoders(self.workspace))

    def on_model(self, chosen: str | None, current: str | None) -> tuple[Any, str]:
        """Return the model's indexes and the status that fits the choice (no word about an older one)."""
        indexes = gr.update(
            choices=h.index_choices(self.workspace, chosen), value=h.default_index(self.workspace, chosen)
        )
        if chosen:  # an uploaded model's own line (usable or refused) stays
            return indexes, "" if h.model_experiment(self.workspace, chosen) else gr.skip()
        if not h.model_choices(self.workspace):
            return indexes, NO_MODEL
        if current:
            return indexes, (
                f"**{current}** has no exported model yet: train and export it (**Train**), "
                "or choose another experiment's model above."
            )
        return indexes, "Choose an exported model above."

    def on_upload(self, path: str | None) -> tuple[Any, str]:
        if not path:
            return gr.update(), ""
        try:
            h.check_uploaded_model(path)
        except UserError as exc:
            return gr.update(), f"Upload refused: {exc}"
        choices = [*h.model_choices(self.workspace), (f"uploaded / {Path(path).name}", path)]
        return gr.update(choices=choices, value=path), f"{Path(path).name} is a usable model; it is selected."

    def on_convert(
        self,
        chosen: str | None,
        index_path: str | None,
        encoder: str | None,
        clip_path: str | None,
        semitones: float,
        method: F0Method,  # one of the dropdown's F0_METHODS
        rate: float,
        protection: float,
        mix: float,
        both: bool,
        kept: list[h.Result],
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's way: a default Progress is filled in per call
    ) -> list[Any]:
        if not chosen:
            return _failed("choose an exported model (or upload a .pth) first", kept)
        try:
            uploaded = not Path(chosen).resolve().is_relative_to(self.workspace.logs_dir.resolve())
            model_path = Path(chosen) if uploaded else self.ctx.paths.resolve(chosen, "model", must_exist=True)
            index = self.ctx.paths.resolve(index_path, "index", must_exist=True) if index_path else None
            options = h.convert_options(method, semitones, rate, protection, mix)
            results = h.convert_clip(
                self.workspace, self.cache, model_path, Path(clip_path or ""), options, index=index,
                embedder=chosen_encoder(self.ctx.paths, encoder), device=self.ctx.settings.default_device,
                precision=self.ctx.settings.default_precision, compare=bool(both),
                on_progress=lambda words, fraction: progress(fraction, desc=words.capitalize()),
            )  # fmt: skip
        except UserError as exc:  # the command line's flag for the encoder is this tab's field
            return _failed(str(exc).replace(EMBEDDER_FLAG, f"the '{ENCODER_LABEL}' field"), kept)
        except Exception as exc:  # a crash in a handler must not take the tab down; the log has the trace
            log.exception("conversion failed")
            return _failed(f"conversion failed ({type(exc).__name__}: {exc}); the app's log has the details", kept)
        return _converted(results, h.add_to_history(kept, results))

    def on_convert_folder(
        self,
        chosen: str | None,
        index_path: str | None,
        encoder: str | None,
        folder: str | None,
        output: str | None,
        semitones: float,
        method: F0Method,
        rate: float,
        protection: float,
        mix: float,
    ) -> str:
        """Start converting a folder as a job of the model's experiment; return the section's notice."""
        try:
            options = h.convert_options(method, semitones, rate, protection, mix)
        except UserError as error:
            return f"Not started: {error}"
        request = partial(folder_section.folder_request, self.ctx, chosen, index_path, encoder, folder, output, options)
        return folder_section.start(self.ctx, request)


def _failed(message: str, kept: list[h.Result]) -> list[Any]:
    """Return the conversion's outputs that say ``message`` and leave the results as they are."""
    return [f"Not converted: {message}", gr.update(), gr.update(), kept, gr.update(), *[gr.update()] * h.HISTORY_SIZE]


def _converted(results: list[h.Result], kept: list[h.Result]) -> list[Any]:
    """Return the conversion's outputs: the status, the result players, and the history ``kept``."""
    first_result, *rest = results
    second = (
        gr.update(value=servable(rest[0].path), label=f"Latest: {rest[0].model}", visible=True)
        if rest
        else gr.update(value=None, visible=False)
    )
    label = f"Best: {first_result.model}" if rest else f"Result: {first_result.model}"
    done = ", ".join(f"`{r.path.name}` ({r.seconds:.1f} s)" for r in results)
    return [
        f"Converted: {done}, saved in `{first_result.path.parent}`.",
        gr.update(value=servable(first_result.path), label=label),
        second,
        kept,
        h.history_rows(kept),
        *_players(kept),
    ]


def _wire(on: _Handlers, source: _Source, knobs: _Knobs, results: _Results) -> None:
    # .change, not .input: a model chosen for the page (the current experiment) updates them too
    current = on.ctx.current_experiment().stored
    source.model.change(on.on_model, inputs=[source.model, current], outputs=[source.index, results.status])
    source.upload.upload(on.on_upload, inputs=source.upload, outputs=[source.model, results.status])
    knobs.convert.click(
        on.on_convert,
        inputs=[
            source.model, source.index, source.embedder, source.clip, knobs.pitch, knobs.f0_method,
            knobs.index_rate, knobs.protect, knobs.rms_mix, knobs.compare, results.history,
        ],
        outputs=[results.status, results.output, results.output_b, results.history, results.table, *results.players],
    )  # fmt: skip


def _wire_folder(on: _Handlers, source: _Source, knobs: _Knobs, folder: folder_section.FolderSection) -> None:
    folder_section.wire(on.ctx, folder, source.model)
    folder.button.click(
        on.on_convert_folder,
        inputs=[
            source.model, source.index, source.embedder, folder.folder, folder.output, knobs.pitch,
            knobs.f0_method, knobs.index_rate, knobs.protect, knobs.rms_mix,
        ],
        outputs=folder.panel.notice,
    )  # fmt: skip

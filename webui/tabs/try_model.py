"""Try Model tab: convert a clip with an exported model, listen, download, and compare with the last few."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from rvc.choices import F0Method
from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.infer.pipeline import ConvertOptions
from rvc.settings import setting_of
from webui import try_model_handlers as h
from webui.context import AppContext
from webui.files import servable
from webui.option_widgets import dropdown, slider

log = logging.getLogger(__name__)

NO_MODEL = "No exported model yet: train one in **Train** (it exports NAME.pth), or upload a .pth above."


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
    models = h.model_choices(ctx.workspace)
    gr.Markdown("Convert a clip with a trained voice. Results are saved in `logs/<experiment>/conversions/`.")
    with gr.Row():
        with gr.Column():
            source = _draw_source(ctx.workspace, models)
        with gr.Column():
            knobs = _draw_knobs(ctx.workspace)
    results = _draw_results(has_models=bool(models))
    _wire(_Handlers(ctx, h.ConverterCache(ctx.workspace)), source, knobs, results)


@dataclass
class _Source:
    """The voice and the clip: model, index, content encoder."""

    model: gr.Dropdown
    refresh: gr.Button
    upload: gr.File
    index: gr.Dropdown
    embedder: gr.Textbox
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
    with gr.Row():
        model = gr.Dropdown(models, value=first, label="Exported model", scale=4)
        refresh = gr.Button("🔄 Refresh", scale=1)
    upload = gr.File(label="…or upload a model (.pth)", file_types=[".pth"], type="filepath")
    index = gr.Dropdown(h.index_choices(workspace, first), value=h.default_index(workspace, first), label="Index")
    embedder = gr.Textbox(label="Content encoder", placeholder="blank: the one the model records (a name or a path)")
    clip = gr.Audio(
        sources=["upload", "microphone"], type="filepath", label="Clip to convert", elem_id="try-model-clip"
    )
    return _Source(model, refresh, upload, index, embedder, clip)


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
    gr.Markdown(f"### Last {h.HISTORY_SIZE} conversions")
    table = gr.Dataframe(headers=h.HISTORY_HEADERS, value=[], interactive=False, wrap=True)
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

    def on_refresh(self, current: str | None) -> tuple[Any, Any]:
        choices = h.model_choices(self.workspace)
        values = [value for _, value in choices]
        chosen = current if current in values else (values[0] if values else None)
        return gr.update(choices=choices, value=chosen), self.on_model(chosen)

    def on_model(self, chosen: str | None) -> Any:
        return gr.update(choices=h.index_choices(self.workspace, chosen), value=h.default_index(self.workspace, chosen))

    def on_upload(self, path: str | None) -> tuple[Any, str]:
        if not path:
            return gr.update(), ""
        try:
            h.check_uploaded_model(path)
        except UserError as exc:
            return gr.update(), f"❌ Upload refused: {exc}"
        choices = [*h.model_choices(self.workspace), (f"uploaded / {Path(path).name}", path)]
        return gr.update(choices=choices, value=path), f"✅ {Path(path).name} is a usable model; it is selected."

    def on_convert(
        self,
        chosen: str | None,
        index_path: str | None,
        encoder: str,
        clip_path: str | None,
        semitones: float,
        method: F0Method,  # one of the dropdown's F0_METHODS
        rate: float,
        protection: float,
        mix: float,
        both: bool,
        kept: list[h.Result],
    ) -> list[Any]:
        if not chosen:
            return _failed("choose an exported model (or upload a .pth) first", kept)
        try:
            uploaded = not Path(chosen).resolve().is_relative_to(self.workspace.logs_dir.resolve())
            model_path = Path(chosen) if uploaded else self.ctx.paths.resolve(chosen, "model", must_exist=True)
            index = self.ctx.paths.resolve(index_path, "index", must_exist=True) if index_path else None
            options = ConvertOptions(
                f0_method=method, pitch=float(semitones), index_rate=float(rate), protect=float(protection),
                rms_mix=float(mix),
            )  # fmt: skip
            results = h.convert_clip(
                self.workspace, self.cache, model_path, Path(clip_path or ""), options, index=index,
                embedder=encoder.strip() or None, device=self.ctx.settings.default_device,
                precision=self.ctx.settings.default_precision, compare=bool(both),
            )  # fmt: skip
        except UserError as exc:
            return _failed(str(exc), kept)
        except Exception as exc:  # a crash in a handler must not take the tab down; the log has the trace
            log.exception("conversion failed")
            return _failed(f"conversion failed ({type(exc).__name__}: {exc}); the app's log has the details", kept)
        return _converted(results, h.add_to_history(kept, results))


def _failed(message: str, kept: list[h.Result]) -> list[Any]:
    """Return the conversion's outputs that say ``message`` and leave the results as they are."""
    return [f"❌ {message}", gr.update(), gr.update(), kept, gr.update(), *[gr.update()] * h.HISTORY_SIZE]


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
        f"✅ Converted: {done}, saved in `{first_result.path.parent}`.",
        gr.update(value=servable(first_result.path), label=label),
        second,
        kept,
        h.history_rows(kept),
        *_players(kept),
    ]


def _wire(on: _Handlers, source: _Source, knobs: _Knobs, results: _Results) -> None:
    source.refresh.click(on.on_refresh, inputs=source.model, outputs=[source.model, source.index])
    source.model.input(on.on_model, inputs=source.model, outputs=source.index)
    source.upload.upload(on.on_upload, inputs=source.upload, outputs=[source.model, results.status]).then(
        on.on_model, inputs=source.model, outputs=source.index
    )
    knobs.convert.click(
        on.on_convert,
        inputs=[
            source.model, source.index, source.embedder, source.clip, knobs.pitch, knobs.f0_method,
            knobs.index_rate, knobs.protect, knobs.rms_mix, knobs.compare, results.history,
        ],
        outputs=[results.status, results.output, results.output_b, results.history, results.table, *results.players],
    )  # fmt: skip

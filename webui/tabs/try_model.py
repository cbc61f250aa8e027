"""Try Model tab: convert a clip with an exported model, listen, download, and compare with the last few."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from rvc.choices import F0Method
from rvc.errors import UserError
from rvc.f0 import F0_METHODS
from rvc.infer.pipeline import ConvertOptions
from webui import try_model_handlers as h
from webui.context import AppContext
from webui.files import servable

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
    workspace = ctx.workspace
    cache = h.ConverterCache(workspace)
    models = h.model_choices(workspace)
    first = models[0][1] if models else None

    gr.Markdown("Convert a clip with a trained voice. Results are saved in `logs/<experiment>/conversions/`.")
    with gr.Row():
        with gr.Column():
            with gr.Row():
                model = gr.Dropdown(models, value=first, label="Exported model", scale=4)
                refresh = gr.Button("🔄 Refresh", scale=1)
            upload = gr.File(label="…or upload a model (.pth)", file_types=[".pth"], type="filepath")
            index = gr.Dropdown(
                h.index_choices(workspace, first), value=h.default_index(workspace, first), label="Index"
            )
            embedder = gr.Textbox(
                label="Content encoder", placeholder="blank: the one the model records (a name or a path)"
            )
            clip = gr.Audio(
                sources=["upload", "microphone"], type="filepath", label="Clip to convert", elem_id="try-model-clip"
            )
        with gr.Column():
            pitch = gr.Slider(-24, 24, value=0, step=1, label="Pitch shift (semitones; +12 = an octave up)")
            f0_method = gr.Dropdown(list(F0_METHODS), value=h.default_f0_method(workspace), label="F0 method")
            index_rate = gr.Slider(0, 1, value=0.75, step=0.05, label="Index rate (share of retrieved features)")
            protect = gr.Slider(0, 0.5, value=0.33, step=0.01, label="Protect voiceless consonants (0.5 = off)")
            rms_mix = gr.Slider(0, 1, value=1.0, step=0.05, label="RMS mix (1 = the output's own loudness)")
            compare = gr.Checkbox(label="Compare checkpoints (NAME_best.pth and NAME.pth, same seed)")
            convert = gr.Button("Convert", variant="primary")
    status = gr.Markdown("" if models else NO_MODEL, elem_id="try-model-status")
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
    history = gr.State([])  # this session's results, newest first

    def on_refresh(current: str | None) -> tuple[Any, Any]:
        choices = h.model_choices(workspace)
        values = [value for _, value in choices]
        chosen = current if current in values else (values[0] if values else None)
        indexes = gr.update(choices=h.index_choices(workspace, chosen), value=h.default_index(workspace, chosen))
        return gr.update(choices=choices, value=chosen), indexes

    def on_model(chosen: str | None) -> Any:
        return gr.update(choices=h.index_choices(workspace, chosen), value=h.default_index(workspace, chosen))

    def on_upload(path: str | None) -> tuple[Any, str]:
        if not path:
            return gr.update(), ""
        try:
            h.check_uploaded_model(path)
        except UserError as exc:
            return gr.update(), f"❌ Upload refused: {exc}"
        choices = [*h.model_choices(workspace), (f"uploaded / {Path(path).name}", path)]
        return gr.update(choices=choices, value=path), f"✅ {Path(path).name} is a usable model; it is selected."

    def on_convert(
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
        def fail(message: str) -> list[Any]:
            return [f"❌ {message}", gr.update(), gr.update(), kept, gr.update(), *[gr.update()] * h.HISTORY_SIZE]

        if not chosen:
            return fail("choose an exported model (or upload a .pth) first")
        try:
            uploaded = not Path(chosen).resolve().is_relative_to(workspace.logs_dir.resolve())
            model_path = Path(chosen) if uploaded else ctx.paths.resolve(chosen, "model", must_exist=True)
            index = ctx.paths.resolve(index_path, "index", must_exist=True) if index_path else None
            options = ConvertOptions(
                f0_method=method, pitch=float(semitones), index_rate=float(rate), protect=float(protection),
                rms_mix=float(mix),
            )  # fmt: skip
            results = h.convert_clip(
                workspace, cache, model_path, Path(clip_path or ""), options, index=index,
                embedder=encoder.strip() or None, device=ctx.settings.default_device,
                precision=ctx.settings.default_precision, compare=bool(both),
            )  # fmt: skip
        except UserError as exc:
            return fail(str(exc))
        except Exception as exc:  # a crash in a handler must not take the tab down; the log has the trace
            log.exception("conversion failed")
            return fail(f"conversion failed ({type(exc).__name__}: {exc}); the app's log has the details")
        kept = h.add_to_history(kept, results)
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

    refresh.click(on_refresh, inputs=model, outputs=[model, index])
    model.input(on_model, inputs=model, outputs=index)
    upload.upload(on_upload, inputs=upload, outputs=[model, status]).then(on_model, inputs=model, outputs=index)
    convert.click(
        on_convert,
        inputs=[model, index, embedder, clip, pitch, f0_method, index_rate, protect, rms_mix, compare, history],
        outputs=[status, output, output_b, history, table, *players],
    )

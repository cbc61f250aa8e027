"""Prepare Dataset tab: recordings -> clips (prepare), optional Whisper, features (extract), the dataset report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from webui import prepare_handlers as handlers
from webui.current import textbox_follower
from webui.encoders import encoder_choices
from webui.job_panel import JobPanel, render_panel, start_handler, wire_panel
from webui.prepare_handlers import HELP, LABELS
from webui.prepare_report import REJECTED_HEADERS, report_view

if TYPE_CHECKING:
    import gradio as gr

    from rvc.experiment import Workspace
    from webui.context import AppContext

INTRO = (
    "Turn a folder of recordings into training clips (**Prepare dataset**), then compute their pitch and "
    "content features (**Extract features**). Running a stage again only redoes what changed; the report "
    "below shows what the dataset holds."
)
WHISPER_NOTE = (
    "Whisper writes transcripts (`whisper.json`, and LJSpeech-style `train.txt` / `validation.txt`). "
    "RVC trains on audio alone, so this is optional: use it to cut at sentence boundaries, or to keep text "
    "with the clips.\n\n"
    "**Validation thresholds.** Audio length: set *Validation audio length threshold* under *Validation "
    "split*: shorter clips go to validation instead of being dropped. Text length: not offered, because "
    "RVC never reads the text; a transcript's length says nothing about a clip's use for training."
)
BUTTON_HELP = (
    "- **Transcribe and process**: Whisper transcribes the recordings not yet in `whisper.json` (all of them "
    "with *Transcribe again* ticked), then prepares the dataset, cutting at Whisper's segments when "
    "*Slice by Whisper's segments* is ticked, else at silences.\n"
    "- **(Re)slice**: cut the recordings again at the segments in `whisper.json` (your edits included) with "
    "the offsets above; only recordings missing from it are transcribed.\n"
    "- **(Re)create datasets**: read `whisper.json` again (your edits included) and rewrite the transcripts, "
    "the clip lists and the validation split, cutting as the previous run did."
)


def render(ctx: AppContext) -> None:
    """Draw the tab inside the current ``gr.Tab`` and wire its buttons to the handlers."""
    import gradio as gr

    settings = ctx.settings
    form = _Form(handlers.defaults(settings.default_device, settings.whisper_model, settings.whisper_language))
    gr.Markdown(INTRO)
    experiment = _draw_experiment(form)
    ctx.current_experiment().follow(textbox_follower(experiment))  # the app's current experiment
    gr.Markdown("### 1. Recordings")
    _draw_recordings(form)
    _draw_slicing(form)
    _draw_validation(form)
    prepare_button = gr.Button("Prepare dataset", variant="primary")
    whisper_buttons = _draw_whisper(form)
    gr.Markdown("### 2. Features")
    _draw_features(form)
    # Every usable encoder in the assets folder is offered (webui.encoders), listed when a page opens.
    offer = partial(encoder_choices, ctx.workspace.assets)
    gr.on(triggers=None, fn=lambda: gr.update(choices=offer()), outputs=form.fields["embedder"], show_progress="hidden")
    extract_button = gr.Button("Extract features", variant="primary")
    panel = render_panel()  # the stage job's bars, log and Stop: a reload or a restart draws the same job
    report = _draw_report(ctx.workspace)

    stage_buttons: list[tuple[gr.Button, handlers.Mode | None]] = [
        (prepare_button, "prepare"),
        *whisper_buttons,
        (extract_button, None),
    ]
    _wire_stages(ctx, form, stage_buttons, panel)
    _wire_report(ctx, experiment, report, panel)


class _Form:
    """The stage options' widgets by option name, drawn with the values in ``start``."""

    def __init__(self, start: dict[str, Any]) -> None:
        self.start = start
        self.fields: dict[str, gr.components.Component] = {}

    def number(self, key: str, info: str | None = None, whole: bool = False, **kwargs: Any) -> None:
        import gradio as gr

        self.fields[key] = gr.Number(
            self.start[key],
            label=LABELS[key],
            info=info or HELP.get(key),
            precision=0 if whole else None,
            **kwargs,
        )


@dataclass
class _Report:
    refresh: gr.Button
    summary: gr.Markdown
    pitch: gr.Plot  # shown only when there is a pitch histogram
    rejected: gr.Dataframe  # shown only when it has rows

    def outputs(self) -> list[gr.components.Component]:
        return [self.summary, self.pitch, self.rejected]


def _draw_experiment(form: _Form) -> gr.Textbox:
    """Draw the experiment's name, sample rate and device; return the name's box."""
    import gradio as gr

    from rvc.choices import SAMPLE_RATES
    from rvc.experiment.names import sample_rate_tag

    fields, start = form.fields, form.start
    with gr.Row():
        experiment = fields["experiment"] = gr.Textbox(
            label=LABELS["experiment"],
            placeholder="my-voice",
            info="a folder in the logs folder: letters, digits, - _ and . (an existing name shows its report)",
            scale=2,
        )
        fields["sample_rate"] = gr.Radio(
            [(sample_rate_tag(rate), rate) for rate in SAMPLE_RATES],
            value=start["sample_rate"],
            label=LABELS["sample_rate"],
            info=HELP["sample_rate"],
        )
        fields["device"] = gr.Dropdown(
            list(handlers.DEVICES),
            value=start["device"],
            allow_custom_value=True,
            label=LABELS["device"],
            info=HELP["device"],
        )
    return experiment


def _draw_recordings(form: _Form) -> None:
    import gradio as gr

    from rvc.audio import AUDIO_EXTENSIONS
    from rvc.data.options import SPEAKER_SOURCES

    fields = form.fields
    with gr.Row(equal_height=True):
        with gr.Column():
            fields["folders"] = gr.Textbox(
                label=LABELS["folders"],
                lines=2,
                placeholder="/home/me/recordings",
                info="one folder per line, read recursively; empty: the folders of the previous run",
            )
            fields["speakers_from"] = gr.Radio(
                list(SPEAKER_SOURCES),
                value=form.start["speakers_from"],
                label=LABELS["speakers_from"],
                info=HELP["speakers_from"],
            )
            fields["urls"] = gr.Textbox(
                label=LABELS["urls"],
                lines=2,
                placeholder="https://www.youtube.com/watch?v=...",
                info="one link per line, downloaded with yt-dlp into the experiment",
            )
        with gr.Column():
            fields["uploads"] = gr.File(
                label=LABELS["uploads"] + ": each Prepare copies them into the experiment's downloads/uploads "
                "folder; ✕ only takes a file off this list (delete its copy there to drop it from the dataset)",
                file_count="multiple",
                file_types=sorted(f".{ext}" for ext in AUDIO_EXTENSIONS),
                height=190,
            )


def _draw_slicing(form: _Form) -> None:
    import gradio as gr

    from rvc.data.options import CUT_MODES, NORMALIZE_MODES, WAV_FORMATS

    fields, start, number = form.fields, form.start, form.number
    with gr.Accordion("Slicing and cleaning", open=False):
        with gr.Row():
            fields["cut"] = gr.Radio(
                list(CUT_MODES),
                value=start["cut"],
                label=LABELS["cut"],
                info=HELP["cut"],
                scale=2,
            )
            number("chunk")
            number("overlap")
            number("min_clip")
        with gr.Row():
            number("threshold_db")
            number("min_length")
            number("min_interval")
            number("max_silence_kept")
            number("hop")
        with gr.Row():
            fields["highpass"] = gr.Checkbox(start["highpass"], label=LABELS["highpass"], info=HELP["highpass"])
            fields["normalize"] = gr.Dropdown(
                list(NORMALIZE_MODES),
                value=start["normalize"],
                label=LABELS["normalize"],
                info=HELP["normalize"],
            )
            fields["trim_silence"] = gr.Checkbox(
                start["trim_silence"], label=LABELS["trim_silence"], info=HELP["trim_silence"]
            )
            fields["denoise"] = gr.Checkbox(start["denoise"], label=LABELS["denoise"], info=HELP["denoise"])
            fields["denoise_strength"] = gr.Slider(
                0, 1, value=start["denoise_strength"], step=0.05, label=LABELS["denoise_strength"]
            )
        with gr.Row():
            fields["wav_format"] = gr.Radio(
                list(WAV_FORMATS), value=start["wav_format"], label=LABELS["wav_format"], info=HELP["wav_format"]
            )
            number("workers", whole=True, minimum=0)


def _draw_validation(form: _Form) -> None:
    import gradio as gr

    with gr.Accordion("Validation split", open=False), gr.Row():
        form.fields["validation"] = gr.Textbox(
            form.start["validation"],
            label=LABELS["validation"],
            info=HELP["validation"],
        )
        form.number("validation_min_seconds")


def _draw_whisper(form: _Form) -> list[tuple[gr.Button, handlers.Mode]]:
    """Draw Whisper's options and buttons; return each button with the prepare mode it starts."""
    import gradio as gr

    from webui.settings import WHISPER_MODELS

    fields, start = form.fields, form.start  # labels and help: WhisperOptions' declarations (LABELS, HELP)
    with gr.Accordion("Whisper transcription (optional, instead of Prepare dataset)", open=False):
        gr.Markdown(WHISPER_NOTE)
        with gr.Row():
            fields["whisper_model"] = gr.Dropdown(
                list(WHISPER_MODELS),
                value=start["whisper_model"],
                allow_custom_value=True,
                label=LABELS["whisper_model"],
                info=HELP["whisper_model"],
            )
            fields["whisper_language"] = gr.Textbox(
                start["whisper_language"], label=LABELS["whisper_language"], info=HELP["whisper_language"]
            )
            for switch in ("retranscribe", "slice_by_whisper"):
                fields[switch] = gr.Checkbox(start[switch], label=LABELS[switch], info=HELP[switch])
        with gr.Row():
            form.number("slice_start_offset")
            form.number("slice_end_offset")
        gr.Markdown(BUTTON_HELP)
        with gr.Row():
            transcribe = gr.Button("Transcribe and process")
            reslice = gr.Button("(Re)slice")
            recreate = gr.Button("(Re)create datasets")
    return [(transcribe, "transcribe"), (reslice, "reslice"), (recreate, "recreate")]


def _draw_features(form: _Form) -> None:
    import gradio as gr

    from rvc.choices import F0_METHODS, INFERENCE_PRECISIONS
    from rvc.features.embedder import EMBEDDERS

    fields, start, number = form.fields, form.start, form.number
    with gr.Row():
        fields["f0_method"] = gr.Dropdown(
            list(F0_METHODS), value=start["f0_method"], label=LABELS["f0_method"], info=HELP["f0_method"], scale=2
        )
        fields["embedder"] = gr.Dropdown(
            list(EMBEDDERS),
            value=start["embedder"],
            allow_custom_value=True,
            label=LABELS["embedder"],
            info=HELP["embedder"],
            scale=2,
        )
        number("batch_size", whole=True, minimum=1)
    with gr.Accordion("More extraction options", open=False), gr.Row():
        fields["precision"] = gr.Dropdown(
            list(INFERENCE_PRECISIONS),
            value=start["precision"],
            label=LABELS["precision"],
            info=HELP["precision"],
        )
        number("extract_workers", whole=True, minimum=0)
        number("f0_min")
        number("f0_max")


def _draw_report(workspace: Workspace) -> _Report:
    import gradio as gr

    with gr.Row():
        gr.Markdown("### Dataset report")
        refresh = gr.Button("Refresh report", size="sm", scale=0, min_width=140)
    with gr.Row(equal_height=False):
        summary = gr.Markdown(report_view(workspace, "")[0])
        pitch = gr.Plot(label="Pitch distribution", show_label=False, visible=False)
    rejected = gr.Dataframe(
        headers=REJECTED_HEADERS,
        datatype="str",
        label="Rejected files, notes and failed clips",
        interactive=False,
        wrap=True,
        column_widths=["35%", "15%", "50%"],
        visible=False,
    )
    return _Report(refresh, summary, pitch, rejected)


def _wire_stages(
    ctx: AppContext, form: _Form, buttons: list[tuple[gr.Button, handlers.Mode | None]], panel: JobPanel
) -> None:
    """Start each button's stage as a job (a child process); the launcher refuses one that would collide."""
    keys = list(form.fields)

    def request(mode: handlers.Mode | None) -> Callable[..., handlers.StageRequest]:
        def build(*values: Any) -> handlers.StageRequest:
            form_values = dict(zip(keys, values, strict=True))
            if mode is None:
                return handlers.extract_request(ctx.workspace, ctx.paths, form_values)
            return handlers.prepare_request(ctx.workspace, ctx.paths, form_values, mode)

        return build

    inputs = list(form.fields.values())
    for button, mode in buttons:
        button.click(start_handler(ctx.stage_jobs, request(mode)), inputs=inputs, outputs=panel.notice)


def _wire_report(ctx: AppContext, experiment: gr.Textbox, report: _Report, panel: JobPanel) -> None:
    """Redraw the job panel and the report for the experiment named, on a timer and when the name is entered."""
    import gradio as gr

    def shown(name: str) -> tuple[Any, ...]:
        # The plot and the table show only when they have something to show.
        text, figure, rows = report_view(ctx.workspace, name)
        return text, gr.update(value=figure, visible=figure is not None), gr.update(value=rows, visible=bool(rows))

    # Only this tab's stages: the Train tab draws the export and index jobs.
    wire_panel(panel, ctx.stage_jobs, experiment, report.outputs(), shown, stages=("prepare", "extract"))
    for event in (experiment.submit, experiment.blur, report.refresh.click):
        event(shown, inputs=experiment, outputs=report.outputs())
    # Another current experiment, or a change on disk (a job of another tab, the CLI): the report follows.
    ctx.current_experiment().on_change(shown, inputs=[experiment], outputs=report.outputs())

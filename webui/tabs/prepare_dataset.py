"""Prepare Dataset tab: recordings -> clips (prepare), optional Whisper, features (extract), the dataset report."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from webui import prepare_handlers as handlers
from webui.job_panel import render_panel, start_handler, wire_panel
from webui.prepare_handlers import HELP, LABELS
from webui.prepare_report import REJECTED_HEADERS, report_view

if TYPE_CHECKING:
    import gradio as gr

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
    "with *Skip already transcribed* off), then prepares the dataset, cutting at Whisper's segments when "
    "*Slice by Whisper's segments* is ticked, else at silences.\n"
    "- **(Re)slice**: cut the recordings again at the segments in `whisper.json` (your edits included) with "
    "the offsets above; only recordings missing from it are transcribed.\n"
    "- **(Re)create datasets**: read `whisper.json` again (your edits included) and rewrite the transcripts, "
    "the clip lists and the validation split, cutting as the previous run did."
)


def render(ctx: AppContext) -> None:
    """Draw the tab inside the current ``gr.Tab`` and wire its buttons to the handlers."""
    import gradio as gr

    from rvc.audio import AUDIO_EXTENSIONS
    from rvc.choices import F0_METHODS, INFERENCE_PRECISIONS, SAMPLE_RATES
    from rvc.data.options import CUT_MODES, NORMALIZE_MODES, WAV_FORMATS
    from rvc.experiment.names import sample_rate_tag
    from rvc.features.embedder import EMBEDDERS
    from webui.settings import WHISPER_MODELS

    settings = ctx.settings
    start = handlers.defaults(settings.default_device, settings.whisper_model, settings.whisper_language)
    fields: dict[str, gr.components.Component] = {}

    def number(key: str, info: str | None = None, whole: bool = False, **kwargs: Any) -> None:
        info = info or HELP.get(key)
        fields[key] = gr.Number(start[key], label=LABELS[key], info=info, precision=0 if whole else None, **kwargs)

    gr.Markdown(INTRO)
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

    gr.Markdown("### 1. Recordings")
    with gr.Row(equal_height=True):
        with gr.Column():
            fields["folders"] = gr.Textbox(
                label=LABELS["folders"],
                lines=2,
                placeholder="/home/me/recordings",
                info="one folder per line, read recursively; empty: the folders of the previous run",
            )
            fields["urls"] = gr.Textbox(
                label=LABELS["urls"],
                lines=2,
                placeholder="https://www.youtube.com/watch?v=...",
                info="one link per line, downloaded with yt-dlp into the experiment",
            )
        with gr.Column():
            fields["uploads"] = gr.File(
                label=LABELS["uploads"] + " (kept in the experiment's downloads/uploads folder)",
                file_count="multiple",
                file_types=sorted(f".{ext}" for ext in AUDIO_EXTENSIONS),
                height=190,
            )

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

    with gr.Accordion("Validation split", open=False), gr.Row():
        fields["validation"] = gr.Textbox(
            start["validation"],
            label=LABELS["validation"],
            info=HELP["validation"],
        )
        number("validation_min_seconds")

    prepare_button = gr.Button("Prepare dataset", variant="primary")

    with gr.Accordion("Whisper transcription (optional, instead of Prepare dataset)", open=False):
        gr.Markdown(WHISPER_NOTE)
        with gr.Row():
            fields["whisper_model"] = gr.Dropdown(
                list(WHISPER_MODELS),
                value=start["whisper_model"],
                allow_custom_value=True,
                label=LABELS["whisper_model"],
                info="larger: better text and timestamps, slower; or a .pt under the assets folder",
            )
            fields["whisper_language"] = gr.Textbox(
                start["whisper_language"], label=LABELS["whisper_language"], info="a code like en or ja; empty: detect"
            )
            fields["skip_transcribed"] = gr.Checkbox(
                start["skip_transcribed"], label=LABELS["skip_transcribed"], info="reuse whisper.json entries"
            )
            fields["slice_by_whisper"] = gr.Checkbox(
                start["slice_by_whisper"], label=LABELS["slice_by_whisper"], info="else cut at silences"
            )
        with gr.Row():
            number("slice_start_offset", "added to each segment's start (negative: earlier)")
            number("slice_end_offset", "added to each segment's end (positive: keep a tail)")
        gr.Markdown(BUTTON_HELP)
        with gr.Row():
            transcribe = gr.Button("Transcribe and process")
            reslice = gr.Button("(Re)slice")
            recreate = gr.Button("(Re)create datasets")

    gr.Markdown("### 2. Features")
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
    extract_button = gr.Button("Extract features", variant="primary")

    panel = render_panel()  # the stage job's bars, log and Stop: a reload or a restart draws the same job

    with gr.Row():
        gr.Markdown("### Dataset report")
        refresh = gr.Button("Refresh report", size="sm", scale=0, min_width=140)
    with gr.Row(equal_height=False):
        summary = gr.Markdown(report_view(ctx.workspace, "")[0])
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

    keys = list(fields)
    inputs = list(fields.values())
    report_outputs = [summary, pitch, rejected]

    def shown(name: str) -> tuple[Any, ...]:
        # The plot and the table show only when they have something to show.
        text, figure, rows = report_view(ctx.workspace, name)
        return text, gr.update(value=figure, visible=figure is not None), gr.update(value=rows, visible=bool(rows))

    def request(mode: str | None) -> Callable[..., handlers.StageRequest]:
        def build(*values: Any) -> handlers.StageRequest:
            form = dict(zip(keys, values, strict=True))
            if mode is None:
                return handlers.extract_request(ctx.workspace, ctx.paths, form)
            return handlers.prepare_request(ctx.workspace, ctx.paths, form, mode)  # type: ignore[arg-type]

        return build

    for button, mode in (
        (prepare_button, "prepare"),
        (transcribe, "transcribe"),
        (reslice, "reslice"),
        (recreate, "recreate"),
        (extract_button, None),
    ):
        # Each stage runs as a job (a child process); the launcher refuses one that would collide.
        button.click(start_handler(ctx.stage_jobs, request(mode)), inputs=inputs, outputs=panel.notice)
    wire_panel(panel, ctx.stage_jobs, experiment, report_outputs, shown)

    for event in (experiment.submit, experiment.blur, refresh.click):
        event(shown, inputs=experiment, outputs=report_outputs)

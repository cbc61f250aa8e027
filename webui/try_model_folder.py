"""Try Model's folder conversion: every recording under a folder, converted with the chosen voice, as a job.

The job is ``python -m rvc infer --input FOLDER --output FOLDER ...`` started in the model's
experiment (``webui.stage_jobs``), so its bar (files done / total, ETA), its log and its Stop are
drawn by the job panel and survive a reload or an app restart, as the other stages' do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rvc.errors import UserError
from rvc.infer.options import ConvertOptions
from webui import try_model_handlers as h
from webui.encoders import chosen_encoder
from webui.job_panel import JobPanel, render_panel, wire_panel
from webui.prepare_handlers import StageRequest

if TYPE_CHECKING:
    import gradio as gr

    from webui.context import AppContext

STAGE = "infer"
UPLOADED = (
    "folder conversion runs as a job of the model's experiment: choose an experiment's model "
    "(an uploaded model converts one clip at a time, above)"
)


@dataclass
class FolderSection:
    """The section's components: the folders, the button, the job panel and the experiment it watches."""

    folder: gr.Textbox
    output: gr.Textbox
    button: gr.Button
    panel: JobPanel
    experiment: gr.Textbox  # hidden: the chosen model's experiment, whose infer jobs the panel shows


def draw() -> FolderSection:
    """Draw the section (inside the current Blocks context)."""
    import gradio as gr

    with gr.Accordion("Convert a folder", open=False, elem_id="try-model-folder"):
        gr.Markdown(
            "Convert every recording under a folder on this machine (sub-folders too) with the model and the "
            "settings above. It runs as a job: you may leave the page, and Stop keeps what is converted."
        )
        with gr.Row():
            folder = gr.Textbox(label="Folder of recordings", placeholder="/home/me/songs", scale=3)
            output = gr.Textbox(
                label="Output folder",
                placeholder="empty: a new folder in the experiment's conversions/",
                info="the results are WAV files with the recordings' names, in the same sub-folders",
                scale=3,
            )
        button = gr.Button("Convert folder")
        panel = render_panel("Folder conversion log")
        experiment = gr.Textbox(visible=False)
    return FolderSection(folder, output, button, panel, experiment)


def folder_request(
    ctx: AppContext,
    model: str | None,
    index: str | None,
    encoder: str | None,
    folder: str | None,
    output: str | None,
    options: ConvertOptions,
) -> StageRequest:
    """Return the infer job that converts ``folder``; raise UserError in the tab's words when it cannot run."""
    from rvc.cli.argv import option_values, stage_args

    name = h.model_experiment(ctx.workspace, model)
    if not model or name is None:
        raise UserError(UPLOADED if model else "choose an exported model first")
    options.check()
    # A model deleted since the list was drawn is said now, not by the job after it starts.
    ctx.paths.resolve(model, "model", must_exist=True)
    if not (folder or "").strip():
        raise UserError("type the path of the folder of recordings to convert ('Folder of recordings')")
    source = ctx.paths.allow_dataset_folder(str(folder).strip())
    if output and output.strip():
        target = ctx.paths.resolve(output, "'Output folder'")
    else:
        model_path = Path(model)
        target = h.output_folder(ctx.workspace, model_path) / f"{source.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    values: dict[str, Any] = {k: v for k, v in option_values(options).items() if k != "windows"}
    values |= {
        "model": model,
        "index": index if index and options.index_rate > 0 else None,
        "input": source,
        "output": target,
        "embedder": chosen_encoder(ctx.paths, encoder),
        "device": ctx.settings.default_device,
        "precision": ctx.settings.default_precision,
    }
    title = f"Convert {source} into {target} with {Path(model).name}"
    return StageRequest(name, STAGE, stage_args(STAGE, values), title)


def start(ctx: AppContext, request: Callable[[], StageRequest]) -> str:
    """Start the job ``request()`` describes; return the notice the section shows."""
    try:
        wanted = request()
        ctx.stage_jobs.start(wanted.experiment, wanted.stage, wanted.args)
    except UserError as error:
        return f"Not started: {error}"
    return f"Started: {wanted.title}. Its progress shows below."


def wire(ctx: AppContext, section: FolderSection, model: gr.Dropdown) -> None:
    """Keep the panel on the chosen model's experiment and redraw it (the start is wired by the tab)."""

    def experiment_of(chosen: str | None) -> str:
        return h.model_experiment(ctx.workspace, chosen) or ""

    model.change(experiment_of, inputs=model, outputs=section.experiment, show_progress="hidden")
    wire_panel(section.panel, ctx.stage_jobs, section.experiment, [], lambda name: (), stages=(STAGE,))

"""Model tools tab: what to do with finished models. Blend: the weighted average of two exported models.

A blend runs as a stage job (``python -m rvc blend``, ``webui.stage_jobs``), not in the handler:
reading two full models, checking them and writing the third takes seconds (about 5 s for two
40k models on a busy 2-core machine), so the page shows its progress and a reload finds it. The
blend goes into a folder of its own, ``logs/NAME/NAME.pth``, where Try Model and the dropdowns
here list it like any exported model.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from rvc.errors import UserError
from rvc.jobs.state import ENDED, JobWatch
from webui.context import AppContext
from webui.files import servable
from webui.job_panel import render_panel, wire_panel
from webui.try_model_handlers import model_choices

STAGES = ("blend",)


def refresh(ctx: AppContext, a: str | None, b: str | None) -> tuple[Any, Any]:
    """Return both dropdowns with the current models, keeping the choices that still exist.

    B never stays on A's model while there is another: with one model listed B falls back to it,
    and a blend of a model with itself is refused, so once a second model appears B moves to it.
    """
    choices = model_choices(ctx.workspace)
    paths = [path for _, path in choices]
    a = a if a in paths else (paths[0] if paths else None)
    others = [path for path in paths if path != a]
    if b not in others:
        b = others[0] if others else a
    return gr.Dropdown(choices=choices, value=a), gr.Dropdown(choices=choices, value=b)


def blend_request(ctx: AppContext, a: str | None, b: str | None, ratio: float, name: str) -> list[str]:
    """Return the arguments of ``python -m rvc blend`` for the form; UserError for what is missing or taken."""
    from rvc.blend import OVERWRITE, blend_target, check_ratio

    if not a or not b:
        raise UserError("choose two exported models, A and B")
    if a == b:
        raise UserError("A and B are the same model: choose two")
    for which, path in (("A", a), ("B", b)):
        # The value came back from the page: only a model in the app's folders is read, as in every path field.
        ctx.paths.resolve(path, f"'Model {which}'")
        if not Path(path).is_file():  # deleted since the list was drawn: the job would make NAME's folder
            raise UserError(f"model {which}, {path}, is not there any more: press Refresh models and choose again")
    name = (name or "").strip()
    if not name:
        raise UserError("give the blend a name: its model is saved as logs/NAME/NAME.pth")
    try:  # an experiment of that name, or a blend that exists, is refused here
        blend_target(ctx.workspace, name)
    except UserError as error:
        raise UserError(str(error).replace(OVERWRITE, "")) from None  # the tab has no overwrite
    try:
        share = float(ratio)
    except (TypeError, ValueError):  # an emptied slider box
        raise UserError(f"the ratio is the share of model A, a number from 0 to 1 (got {ratio!r})") from None
    check_ratio(share)
    return [a, b, "--ratio", f"{share:g}", "--name", name]


def start_blend(ctx: AppContext, a: str | None, b: str | None, ratio: float, name: str) -> str:
    """Start the blend as a job of experiment ``name``; return the message for the user."""
    try:
        args = blend_request(ctx, a, b, ratio, name)
        ctx.stage_jobs.start(name.strip(), "blend", args)
    except UserError as error:
        return f"Not started: {error}"
    return f"Blending {Path(a or '').name} and {Path(b or '').name} into **{name.strip()}** (progress below)."


def outcome(ctx: AppContext, name: str) -> tuple[Any, Any]:
    """Return (message, file) for the newest blend job of ``name`` once it has ended."""
    job = ctx.stage_jobs.pick(name, STAGES)
    if job is None:
        return gr.skip(), gr.skip()
    watch = JobWatch(job.events)
    state = watch.refresh()
    status = watch.status()
    if status not in ENDED:
        return gr.skip(), gr.skip()
    if status != "done" or state.end is None:
        why = state.end.message if state.end is not None else watch.died_message()
        return f"Blend failed: {why}", gr.File(visible=False)
    path = job.experiment.exported_model()
    if not path.is_file():
        return f"Blend failed: {path} is missing", gr.File(visible=False)
    message = f"Blended into `{path}`: try it in **Try Model** (refresh its list), or download it here."
    return message, gr.File(servable(path), visible=True)


def _draw_blend(ctx: AppContext) -> None:
    gr.Markdown(
        "### Blend two models\nThe weighted average of two exported models trained the same way (one sample rate "
        "and content encoder): a voice between the two. The ratio is A's share: 1 is A, 0 is B."
    )
    with gr.Row():
        a = gr.Dropdown(label="Model A", choices=[], elem_id="blend-a", scale=3)
        b = gr.Dropdown(label="Model B", choices=[], elem_id="blend-b", scale=3)
        reload = gr.Button("Refresh models", size="sm", scale=1)
    with gr.Row():
        ratio = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Ratio (A's share)", elem_id="blend-ratio", scale=3)
        name = gr.Textbox(label="Name of the blend", placeholder="e.g. duet", elem_id="blend-name", scale=3)
        button = gr.Button("Blend", variant="primary", scale=1)
    message = gr.Markdown(elem_id="blend-message")
    panel = render_panel("Blend log")
    result = gr.File(label="The blend", interactive=False, visible=False, elem_id="blend-file")
    choose = partial(refresh, ctx)
    gr.on(triggers=None, fn=partial(choose, None, None), outputs=[a, b], show_progress="hidden")  # on load
    reload.click(choose, inputs=[a, b], outputs=[a, b])
    button.click(partial(start_blend, ctx), inputs=[a, b, ratio, name], outputs=message)
    wire_panel(panel, ctx.stage_jobs, name, [message, result], partial(outcome, ctx), stages=STAGES)


def render(ctx: AppContext) -> None:
    """Draw the Model tools tab."""
    _draw_blend(ctx)

"""The Train tab's Publish section: upload a finished model to the Hugging Face Hub, as a job.

``python -m rvc publish`` runs as a stage job of the experiment (``webui.stage_jobs``): an upload
of a model and its index takes minutes, and a reload or an app restart draws the same job. The
token is huggingface_hub's (``HF_TOKEN``, or ``hf auth login`` on this machine); the section says
whether one is there before the user tries.
"""

from __future__ import annotations

import html
from functools import partial
from typing import Any

import gradio as gr

from rvc.errors import UserError
from rvc.jobs.state import ENDED, JobWatch
from webui.context import AppContext
from webui.job_panel import render_panel, wire_panel

STAGES = ("publish",)
NO_TOKEN = (
    "No Hugging Face token on this machine: run `hf auth login` (or `huggingface-cli login`) in a terminal with "
    "a token that may write, or start the app with `HF_TOKEN` set."
)
TOKEN = "A Hugging Face token was found (`HF_TOKEN` or `hf auth login`): the upload uses it."


def token_status() -> str:
    """Say whether huggingface_hub finds a token (its environment variable or its saved login)."""
    from huggingface_hub import get_token

    return TOKEN if get_token() else NO_TOKEN


def publish_args(name: str, repo: str, private: bool, sample: bool) -> list[str]:
    """Return the arguments of ``python -m rvc publish`` for the section's fields; UserError for a bad repo."""
    from rvc.publish import validate_repo_id

    args = ["--experiment", name, "--repo", validate_repo_id((repo or "").strip())]
    return args + (["--private"] if private else []) + (["--with-sample"] if sample else [])


def start_publish(ctx: AppContext, name: str | None, repo: str, private: bool, sample: bool) -> str:
    """Start publishing ``name`` as a job; return the message for the user."""
    if not name:
        return "Choose a trained experiment first."
    try:
        ctx.stage_jobs.start(name, "publish", publish_args(name, repo, private, sample))
    except UserError as error:
        return f"Not started: {error}"
    return f"Publishing **{name}** to `{repo.strip()}` (its progress and log show below)."


def outcome(ctx: AppContext, name: str) -> tuple[Any]:
    """Return the message for the newest publish job of ``name`` once it has ended."""
    job = ctx.stage_jobs.pick(name, STAGES)
    if job is None:
        return (gr.skip(),)
    watch = JobWatch(job.events)
    state = watch.refresh()
    status = watch.status()
    if status not in ENDED:
        return (gr.skip(),)
    if status != "done" or state.end is None:
        why = state.end.message if state.end is not None else watch.died_message()
        return (f"Publish failed: {why}",)
    url = state.end.message.split(": published", 1)[0]
    link = f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener">{html.escape(url)}</a>'
    return (f"Published: {link}",)


def render(ctx: AppContext, experiment: gr.Dropdown) -> None:
    """Draw the section (inside the Train tab's finished-model column), wired to the tab's experiment."""
    with gr.Accordion("Publish to the Hugging Face Hub", open=False, elem_id="publish-section"):
        gr.Markdown(
            "Upload the exported model, its index, its ONNX graph (if exported) and a model card (the run's facts "
            "and loss plot) to a repository of yours on the Hub. Export and build the index first."
        )
        token = gr.Markdown(elem_id="publish-token")
        with gr.Row():
            repo = gr.Textbox(label="Repository", placeholder="USER/NAME", scale=3, elem_id="publish-repo")
            with gr.Column(scale=2):
                private = gr.Checkbox(label="Private", value=True, info="a new repository only")
                sample = gr.Checkbox(
                    label="Add a short sample",
                    value=False,
                    info="the model resynthesising a held-out clip: the recorded person's voice, so only with "
                    "their consent",
                )
        button = gr.Button("Publish", variant="primary")
        message = gr.Markdown(elem_id="publish-message")
        panel = render_panel("Publish log")
    button.click(partial(start_publish, ctx), inputs=[experiment, repo, private, sample], outputs=message)
    gr.on(triggers=None, fn=token_status, outputs=token, show_progress="hidden")
    wire_panel(panel, ctx.stage_jobs, experiment, [message], partial(outcome, ctx), stages=STAGES)

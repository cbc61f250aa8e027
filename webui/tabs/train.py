"""Train tab: start, stop and resume a run, and watch it (loss and LR plots, progress, console, TensorBoard).

Everything shown comes from the job registry (webui.jobs), which a ``gr.Timer``
polls (``webui.train_poll``); the registry reads the trainer's ``progress.jsonl``, so a
reload, a second browser or a restarted app shows the same run with all its points. Export
and Build index run as stage jobs (``python -m rvc export`` / ``index``, ``webui.stage_jobs``),
drawn by the same job panel as the Prepare tab's, so they re-attach the same way. The
experiment is the app's current one (``webui.current``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import gradio as gr

from webui import publish_section
from webui import train_handlers as handlers
from webui.context import AppContext
from webui.current import dropdown_follower
from webui.job_panel import JobPanel, render_panel, wire_panel
from webui.run_view import LOSS_METRICS, PLOTS
from webui.train_poll import PLOT_TITLES, console_html, poll

POLL_S = 2.0  # how often each open page asks the registry for news
CURVE_COLOURS = ("#2563eb", "#f97316")  # blue, orange: the two curves of each loss plot


# --- layout ---------------------------------------------------------------------------------


def _warm_up() -> None:
    """Import what the handlers need ahead of the first click or poll that needs it."""
    import rvc.config.experiment
    import rvc.experiment.checkpoints  # noqa: F401 - the imports are the point (the other binds the same name)


def render(ctx: AppContext) -> None:
    """Draw the Train tab."""
    threading.Thread(target=_warm_up, name="train-tab-imports", daemon=True).start()
    gr.Markdown(
        "Train the experiment's model. **Start** trains from the pretrains (or from scratch); **Resume** continues "
        "from the last saved state; **Stop** saves and stops. Training keeps running if you close this page."
    )
    controls = _draw_controls()
    view = _draw_view()
    model = _draw_model()
    with model.results:  # the finished model's column: publishing is offered once a run has ended
        publish_section.render(ctx, controls.experiment)
    with gr.Accordion("TensorBoard", open=False):
        board = _TensorBoard(
            gr.Button("Open TensorBoard", size="sm"), gr.Markdown(), gr.HTML(elem_id="train-tensorboard")
        )
    ctx.current_experiment().follow(
        dropdown_follower(controls.experiment, lambda statuses: [status.name for status in statuses])
    )
    _wire(ctx, controls, view, model, board)


@dataclass
class _Controls:
    experiment: gr.Dropdown
    gpus: gr.Textbox
    start: gr.Button
    resume: gr.Button
    stop: gr.Button
    message: gr.Markdown  # what the last click did; cleared once no longer true (webui.train_poll)


@dataclass
class _View:
    headline: gr.Markdown
    progress: gr.HTML
    gpu: gr.HTML
    charts: gr.Column
    plots: list[gr.LinePlot]  # the loss plots (PLOTS), then the learning rate
    console: gr.HTML


@dataclass
class _Model:
    results: gr.Column  # shown once a run has ended
    which: gr.Radio
    export: gr.Button
    index: gr.Button
    panel: JobPanel
    files: gr.File


@dataclass
class _TensorBoard:
    button: gr.Button
    message: gr.Markdown
    view: gr.HTML


def _draw_controls() -> _Controls:
    with gr.Row():
        experiment = gr.Dropdown(
            label="Experiment",
            choices=[],
            info="the app's current experiment: choosing one here chooses it everywhere",
            scale=3,
        )
        gpus = gr.Textbox(
            label="GPU ids",
            placeholder="empty: the default device (Settings)",
            info="0 for one GPU; 0,1 trains on both with torchrun",
            scale=2,
        )
    with gr.Row():
        start = gr.Button("Start", variant="primary")
        resume = gr.Button("Resume", variant="secondary")
        stop = gr.Button("Stop", variant="stop")
    return _Controls(experiment, gpus, start, resume, stop, gr.Markdown(elem_id="train-message"))


def _draw_view() -> _View:
    headline = gr.Markdown(elem_id="train-status")
    progress = gr.HTML(elem_id="train-progress")
    gpu = gr.HTML(elem_id="train-gpu")
    plots = []
    with gr.Column(visible=False) as charts:
        with gr.Row():
            for plot in PLOTS[:2]:
                plots.append(_loss_plot(plot))
        with gr.Row():
            plots.append(_loss_plot(PLOTS[2]))
            plots.append(
                gr.LinePlot(
                    x="step",
                    y="learning rate",
                    title="Learning rate",
                    y_axis_format=".4~e",
                    x_axis_format="d",
                    height=260,
                    elem_id="plot-lr",
                )
            )
    gr.Markdown("**Console**: the trainer's log, newest last (Settings → Verbose shows its raw progress lines)")
    console = gr.HTML(console_html([]), elem_id="train-console")
    return _View(headline, progress, gpu, charts, plots, console)


def _draw_model() -> _Model:
    with gr.Column(visible=False, elem_id="train-model") as results:
        gr.Markdown(
            "### The model\nThe trainer exports the final and the best model when it finishes. Export a saved "
            "state yourself (e.g. after Stop), build the retrieval index, and download them."
        )
        with gr.Row():
            which = gr.Radio(
                ["best", "latest"],
                value="best",
                label=handlers.STATE_LABEL,
                info="best: lowest held-out mel loss; latest: the last saved state",
                scale=2,
                elem_id="train-export-which",
            )
            with gr.Column(scale=1):
                export = gr.Button("Export", variant="primary")
                index = gr.Button("Build index")
        # The export or index job's bars, log and Stop: a reload or an app restart draws the same job.
        panel = render_panel("Export and index log")
        files = gr.File(
            label="Model files", file_count="multiple", interactive=False, visible=False, elem_id="train-files"
        )
    return _Model(results, which, export, index, panel, files)


def _wire(ctx: AppContext, controls: _Controls, view: _View, model: _Model, board: _TensorBoard) -> None:
    experiment, message = controls.experiment, controls.message
    seen = gr.State({})
    watched = [
        message, view.headline, view.progress, view.gpu, view.charts, *view.plots, view.console,
        model.results, model.which, model.files, board.view, seen,
    ]  # fmt: skip
    tick = partial(poll, ctx)
    inputs = [experiment, seen]
    experiment.change(tick, inputs=inputs, outputs=watched, show_progress="hidden")
    gr.Timer(POLL_S).tick(tick, inputs=inputs, outputs=watched, show_progress="hidden")
    clicks: list[tuple[gr.Button, Callable[..., str], list[gr.components.Component]]] = [
        (controls.start, partial(handlers.start_training, ctx, resume=False), [experiment, controls.gpus]),
        (controls.resume, partial(handlers.start_training, ctx, resume=True), [experiment, controls.gpus]),
        (controls.stop, partial(handlers.stop_training, ctx), [experiment]),
    ]
    for button, act, arguments in clicks:
        button.click(act, inputs=arguments, outputs=message).then(
            tick, inputs=inputs, outputs=watched, show_progress="hidden"
        )
    after_start = partial(handlers.outcome_after_start, ctx)
    model_clicks: list[tuple[gr.Button, Callable[..., str], list[gr.components.Component]]] = [
        (model.export, partial(handlers.export_model, ctx), [experiment, model.which]),
        (model.index, partial(handlers.build_index, ctx), [experiment]),
    ]
    for button, act, arguments in model_clicks:
        button.click(act, inputs=arguments, outputs=message).then(
            after_start, inputs=[experiment, message], outputs=[message, model.files], show_progress="hidden"
        )
    outcome = partial(handlers.model_job_outcome, ctx)
    wire_panel(model.panel, ctx.stage_jobs, experiment, [message, model.files], outcome, stages=handlers.MODEL_STAGES)
    board.button.click(partial(handlers.open_tensorboard, ctx), outputs=[board.message, board.view])


def _loss_plot(plot: str) -> gr.LinePlot:
    labels = [label for where, label in LOSS_METRICS.values() if where == plot]
    return gr.LinePlot(
        x="step",
        y="value",
        color="curve",
        # Every curve named from the start: a curve whose first point comes later (held-out
        # losses arrive after the first epoch) would otherwise be left out of the legend and plot.
        color_map=dict(zip(labels, CURVE_COLOURS, strict=False)),
        color_title="",
        title=PLOT_TITLES[plot],
        y_title="loss",
        x_axis_format="d",
        height=260,
        elem_id=f"plot-{plot}",
    )

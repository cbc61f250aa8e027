"""Train tab: start, stop and resume a run, and watch it (loss and LR plots, progress, console, TensorBoard).

Everything shown comes from the job registry (webui.jobs), which a ``gr.Timer``
polls; the registry reads the trainer's ``progress.jsonl``, so a reload, a
second browser or a restarted app shows the same run with all its points. Export and
Build index run as stage jobs (``python -m rvc export`` / ``index``, ``webui.stage_jobs``),
drawn by the same job panel as the Prepare tab's, so they re-attach the same way.
"""

from __future__ import annotations

import html
import logging
import threading
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from rvc.errors import UserError
from rvc.jobs.launcher import StageJob
from rvc.jobs.state import ENDED, JobWatch
from rvc.train import launcher
from rvc.train.run_state import Point
from webui import publish_section
from webui.context import AppContext
from webui.files import servable
from webui.job_panel import render_panel, wire_panel
from webui.run_view import LOSS_METRICS, PLOTS, TrainView

log = logging.getLogger(__name__)

POLL_S = 2.0  # how often each open page asks the registry for news
PLOT_TITLES = {
    "adversarial": "Generator and discriminator losses",
    "mel": "Mel L1 distance: training (loss/g/mel ÷ c_mel) and held-out",
    "kl_fm": "KL and feature-matching losses",
}
CURVE_COLOURS = ("#2563eb", "#f97316")  # blue, orange: the two curves of each loss plot
NO_EXPERIMENT = (
    "No experiment is ready to train yet: prepare one in **Prepare Dataset**, "
    "then save its settings in **Generate Configuration**."
)


# --- data for the components ------------------------------------------------------------------


def loss_frame(view: TrainView, plot: str) -> pd.DataFrame:
    """Return the points of one loss plot: columns step, value, curve."""
    curves = [(label, view.curves.get(name, [])) for name, (where, label) in LOSS_METRICS.items() if where == plot]
    # Typed columns even when empty: the plot takes its axis types from the first data it gets.
    return pd.DataFrame(
        {
            "step": pd.Series([p.step for _, points in curves for p in points], dtype="int64"),
            "value": pd.Series([p.value for _, points in curves for p in points], dtype="float64"),
            "curve": pd.Series([label for label, points in curves for _ in points], dtype="str"),
        }
    )


def lr_frame(points: list[Point]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": pd.Series([p.step for p in points], dtype="int64"),
            "learning rate": pd.Series([p.value for p in points], dtype="float64"),
        }
    )


def stats_html(rows: list[tuple[str, str]]) -> str:
    """Return label/value cards for the progress and GPU rows."""
    if not rows:
        return ""
    cards = "".join(
        f'<div class="rvc-stat"><div class="rvc-stat-label">{html.escape(label)}</div>'
        f'<div class="rvc-stat-value">{html.escape(value)}</div></div>'
        for label, value in rows
    )
    return f'<div class="rvc-stats">{cards}</div>'


def console_html(lines: list[str]) -> str:
    """Return the console: a box that stays scrolled to its newest line (column-reverse)."""
    if not lines:
        return '<div class="rvc-console rvc-console-empty">The trainer\'s messages appear here once it starts.</div>'
    return f'<div class="rvc-console"><pre>{html.escape(chr(10).join(lines))}</pre></div>'


def tensorboard_html(url: str | None) -> str:
    if not url:
        return ""
    return (
        f'<p><a href="{html.escape(url)}" target="_blank" rel="noopener">Open TensorBoard in a new tab</a> '
        f"({html.escape(url)}: on this machine only; on Colab use <code>%tensorboard --logdir logs</code>)</p>"
        f'<iframe src="{html.escape(url)}" title="TensorBoard" class="rvc-tensorboard"></iframe>'
    )


def model_files(ctx: AppContext, name: str) -> list[Path]:
    """Return the experiment's exported models and index that exist."""
    experiment = ctx.workspace.experiment(name)
    paths = [experiment.exported_model(), experiment.exported_model(best=True), experiment.index_file]
    return [path for path in paths if path.is_file()]


# --- handlers -------------------------------------------------------------------------------


def experiment_choices(ctx: AppContext) -> Any:
    """Return the dropdown with the current experiments, a running one (else the newest) selected."""
    names = ctx.jobs.experiments()
    running = [name for name in names if name in ctx.jobs.running()]
    value = running[0] if running else (names[0] if names else None)
    return gr.Dropdown(choices=names, value=value)


def refresh_choices(ctx: AppContext, current: str | None) -> Any:
    names = ctx.jobs.experiments()
    return gr.Dropdown(choices=names, value=current if current in names else (names[0] if names else None))


def _start_tensorboard_quietly(ctx: AppContext) -> None:
    try:
        ctx.tensorboard.ensure(ctx.settings.tensorboard_port)
    except UserError as error:
        log.warning("%s", error)


def start_training(ctx: AppContext, name: str | None, gpu_text: str, resume: bool) -> str:
    """Start (or resume) training ``name``; return the message for the user."""
    if not name:
        return NO_EXPERIMENT
    try:
        from rvc.experiment.config_file import load_config

        experiment = ctx.workspace.experiment(name)
        gpus = launcher.parse_gpu_ids(gpu_text or "")
        if ctx.jobs.job(name).running():
            return f"**{name}** is already training. Watch it below, or Stop it first."
        steps = experiment.checkpoints.complete_steps()
        resumes = experiment.config_json.exists() and load_config(experiment).train.resume
        if steps and not resume and resumes:
            return (
                f"**{name}** already has saved states (up to step {steps[-1]}): click **Resume** to continue it, "
                "or start a new experiment under another name to train from scratch."
            )
        if resume and not steps:
            return f"**{name}** has no saved state to resume from yet: click **Start**."
        if resume and not resumes:
            return (
                f"**{name}**'s configuration says resume = false, so the trainer would start over: "
                "turn Resume on in Generate Configuration first."
            )
        command = launcher.train_command(ctx.workspace, name, device=ctx.settings.default_device, gpus=gpus)
        ctx.jobs.start(name, command)
    except UserError as error:
        return f"⚠️ {error}"
    threading.Thread(target=_start_tensorboard_quietly, args=(ctx,), daemon=True).start()
    where = f"GPU {', '.join(map(str, gpus))}" if gpus else f"device {ctx.settings.default_device}"
    verb = "Resuming" if resume else "Starting"
    return f"{verb} **{name}** on {where}. The graphs fill in as the trainer reports."


def stop_training(ctx: AppContext, name: str | None) -> str:
    """Ask the trainer to save and stop."""
    if not name:
        return NO_EXPERIMENT
    try:
        if not ctx.jobs.stop(name):
            return f"**{name}** is not training."
    except UserError as error:
        return f"⚠️ {error}"
    return f"Stopping **{name}**: it saves its state, then exits. **Resume** continues from there."


def open_tensorboard(ctx: AppContext) -> tuple[str, str]:
    """Start TensorBoard if needed; return (message, link and embedded view)."""
    try:
        server = ctx.tensorboard.ensure(ctx.settings.tensorboard_port)
    except UserError as error:
        return f"⚠️ {error}", ""
    note = ""
    if server.port != ctx.settings.tensorboard_port:
        note = f"Port {ctx.settings.tensorboard_port} was taken, so TensorBoard uses {server.port}."
    return note, tensorboard_html(server.url)


MODEL_STAGES = ("export", "index")  # the stage jobs this tab starts and shows


def _start_stage(ctx: AppContext, name: str, stage: str, args: list[str], what: str) -> str:
    """Start ``python -m rvc <stage> <args>`` on ``name`` as a job; return the message for the user."""
    try:
        ctx.stage_jobs.start(name, stage, ["--experiment", name, *args])
    except UserError as error:
        return f"⚠️ {error}"
    return f"{what} (its progress and log show below; it goes on if you close this page)."


def export_model(ctx: AppContext, name: str | None, which: str) -> str:
    """Start exporting the best or latest state as an RVC .pth (a job); return the message."""
    if not name:
        return NO_EXPERIMENT
    return _start_stage(ctx, name, "export", ["--checkpoint", which], f"Exporting the {which} state of **{name}**")


def build_index(ctx: AppContext, name: str | None) -> str:
    """Start building the FAISS index of the experiment's features (a job); return the message."""
    if not name:
        return NO_EXPERIMENT
    return _start_stage(ctx, name, "index", [], f"Building the index of **{name}**")


def _option(argv: list[str], flag: str) -> str | None:
    """Return the value that follows ``flag`` in an argument list (None: not given)."""
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None


def _done_message(job: StageJob, summary: str, argv: list[str]) -> str:
    """Say what a finished export or index job wrote (its summary reads "<path>: <details>")."""
    experiment = job.experiment
    if job.stage == "export":
        which = _option(argv, "--checkpoint") or "latest"
        return f"Exported the {which} state to `{experiment.exported_model(best=which == 'best')}`."
    path = experiment.index_file
    return f"Built `{path.name}`: {summary.removeprefix(f'{path}: ')}."


def model_job_outcome(ctx: AppContext, name: str) -> tuple[Any, Any]:
    """Return (message, files) for the newest export or index job of ``name`` once it has ended."""
    skip = gr.skip()
    job = ctx.stage_jobs.pick(name, MODEL_STAGES)
    if job is None:
        return skip, skip
    watch = JobWatch(job.events)
    state = watch.refresh()
    status = watch.status()
    if status not in ENDED:
        return skip, skip
    if status != "done" or state.end is None:
        why = state.end.message if state.end is not None else watch.died_message()
        return f"⚠️ {job.stage}: {why}", skip
    argv = list(state.start.argv) if state.start is not None else []
    files = gr.File([servable(p) for p in model_files(ctx, name)] or None, visible=True)
    return _done_message(job, state.end.message, argv), files


def poll(ctx: AppContext, name: str | None, seen: dict[str, Any]) -> tuple[Any, ...]:
    """Return the updates of one timer tick; ``seen`` (per browser tab) skips what has not changed."""
    skip = gr.skip()
    outputs: list[Any]
    if not name:
        hidden = gr.Column(visible=False)
        outputs = [
            NO_EXPERIMENT,
            "",
            "",
            hidden,
            *[skip] * (len(PLOTS) + 1),
            console_html([]),
            gr.Column(visible=False),
            gr.File(visible=False),
            skip,
        ]
        return (*outputs, seen)
    view = ctx.jobs.job(name).view(ctx.settings.console_lines, ctx.settings.verbose)
    fresh = seen.get("experiment") != name or seen.get("version") != view.version
    plots = [loss_frame(view, plot) if fresh else skip for plot in PLOTS]
    plots.append(lr_frame(view.lr) if fresh else skip)
    files: Any = skip
    if view.finished and fresh:
        paths = model_files(ctx, name)
        signature = [(str(p), p.stat().st_mtime_ns) for p in paths]
        if signature != seen.get("files"):
            files = gr.File([servable(p) for p in paths] or None, visible=bool(paths))
            seen = {**seen, "files": signature}
    elif not view.finished and seen.get("files"):
        files = gr.File(None, visible=False)
        seen = {**seen, "files": None}
    server = ctx.tensorboard.server
    url = server.url if server is not None else None
    board: Any = skip
    if url != seen.get("tensorboard"):
        board = tensorboard_html(url)
        seen = {**seen, "tensorboard": url}
    outputs = [
        f"**{view.headline}**",
        stats_html(view.progress),
        gr.HTML(stats_html(view.gpu), visible=bool(view.gpu)),
        gr.Column(visible=any(view.curves.values()) or bool(view.lr)),
        *plots,
        console_html(view.console),
        gr.Column(visible=view.finished and view.status != "not started"),
        files,
        board,
    ]
    return (*outputs, {**seen, "experiment": name, "version": view.version})


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
    with gr.Row():
        with gr.Column(scale=3):
            experiment = gr.Dropdown(label="Experiment", choices=[], info="one with a saved configuration")
            refresh = gr.Button("Refresh the list", size="sm", variant="secondary")
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
    message = gr.Markdown(elem_id="train-message")
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
                    x_axis_format="~s",
                    height=260,
                    elem_id="plot-lr",
                )
            )
    gr.Markdown("**Console**: the trainer's log, newest last (Settings → Verbose shows its raw progress lines)")
    console = gr.HTML(console_html([]), elem_id="train-console")
    with gr.Column(visible=False, elem_id="train-model") as results:
        gr.Markdown(
            "### The model\nThe trainer exports the final and the best model when it finishes. Export a saved "
            "state yourself (e.g. after Stop), build the retrieval index, and download them."
        )
        with gr.Row():
            which = gr.Radio(
                ["best", "latest"],
                value="best",
                label="State to export",
                info="best: lowest held-out mel loss; latest: the last saved state",
                scale=2,
            )
            with gr.Column(scale=1):
                export = gr.Button("Export", variant="primary")
                index = gr.Button("Build index")
        # The export or index job's bars, log and Stop: a reload or an app restart draws the same job.
        panel = render_panel("Export and index log")
        files = gr.File(
            label="Model files", file_count="multiple", interactive=False, visible=False, elem_id="train-files"
        )
        publish_section.render(ctx, experiment)  # offered once a run has ended, as the rest of this column
    with gr.Accordion("TensorBoard", open=False):
        tensorboard_button = gr.Button("Open TensorBoard", size="sm")
        tensorboard_message = gr.Markdown()
        tensorboard_view = gr.HTML(elem_id="train-tensorboard")

    seen = gr.State({})
    timer = gr.Timer(POLL_S)
    watched = [headline, progress, gpu, charts, *plots, console, results, files, tensorboard_view, seen]
    tick = partial(poll, ctx)
    gr.on(triggers=None, fn=partial(experiment_choices, ctx), outputs=experiment, show_progress="hidden")
    refresh.click(partial(refresh_choices, ctx), inputs=experiment, outputs=experiment)
    experiment.change(tick, inputs=[experiment, seen], outputs=watched, show_progress="hidden")
    timer.tick(tick, inputs=[experiment, seen], outputs=watched, show_progress="hidden")
    start.click(partial(start_training, ctx, resume=False), inputs=[experiment, gpus], outputs=message).then(
        tick, inputs=[experiment, seen], outputs=watched, show_progress="hidden"
    )
    resume.click(partial(start_training, ctx, resume=True), inputs=[experiment, gpus], outputs=message).then(
        tick, inputs=[experiment, seen], outputs=watched, show_progress="hidden"
    )
    stop.click(partial(stop_training, ctx), inputs=experiment, outputs=message).then(
        tick, inputs=[experiment, seen], outputs=watched, show_progress="hidden"
    )
    export.click(partial(export_model, ctx), inputs=[experiment, which], outputs=message)
    index.click(partial(build_index, ctx), inputs=experiment, outputs=message)
    outcome = partial(model_job_outcome, ctx)
    wire_panel(panel, ctx.stage_jobs, experiment, [message, files], outcome, stages=MODEL_STAGES)
    tensorboard_button.click(partial(open_tensorboard, ctx), outputs=[tensorboard_message, tensorboard_view])


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
        x_axis_format="~s",
        height=260,
        elem_id=f"plot-{plot}",
    )

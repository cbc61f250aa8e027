"""The Train tab's view of a run, redrawn by its timer: status, progress, plots, console, the model's files.

Everything comes from the job registry (``webui.jobs``), which reads the trainer's
``progress.jsonl``; a per-page ``seen`` dict skips what has not changed since the last tick,
and clears a message of the tab's own once it is no longer true (the run it spoke of ended, or
another experiment is shown).
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from rvc.experiment import ExperimentStatus
from rvc.experiment.workspace import status_of
from rvc.train.run_state import Point
from webui.context import AppContext
from webui.files import servable
from webui.run_view import LOSS_METRICS, PLOTS, TrainView
from webui.train_handlers import NO_EXPERIMENT, chain_running, export_choices, model_files

MIN_STEP_SPAN = 20  # a step axis spans at least this many steps: fewer would be ticked at 0.5, 1.5, ...
PLOT_TITLES = {
    "adversarial": "Generator and discriminator losses",
    "mel": "Mel L1 distance: training (loss/g/mel ÷ c_mel) and held-out",
    "kl_fm": "KL and feature-matching losses",
}
FINISHED = ("finished", "stopped", "stopped while starting", "failed", "interrupted")

# What an experiment that has not trained lacks, by its furthest stage.
NOT_READY = {
    "new": "nothing prepared yet: prepare it in **Prepare Dataset**, or use **Train from recordings**.",
    "prepared": "clips prepared, features not extracted yet: extract them in **Prepare Dataset** (step 2).",
    "extracted": "no saved settings yet: save them in **Generate Configuration**, then click **Start**.",
}


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


def step_range(frame: pd.DataFrame) -> list[float | None] | None:
    """Return the x range of a plot of few steps (at least MIN_STEP_SPAN wide), or None to let it fit."""
    if frame.empty:
        return None
    low, high = int(frame["step"].min()), int(frame["step"].max())
    return [low, low + MIN_STEP_SPAN] if high - low < MIN_STEP_SPAN else None


def mel_title(view: TrainView) -> str:
    """Return the mel plot's title, saying how much of the held-out series there is to draw."""
    held_out = view.curves.get("loss/val/mel", [])
    if not held_out and view.held_out_clips == 0:
        return "Mel L1 distance: training (loss/g/mel ÷ c_mel); no held-out clips to compare"
    if not held_out:
        return "Mel L1 distance: training (loss/g/mel ÷ c_mel); held-out after the first validation"
    if len(held_out) == 1:
        point = held_out[0]
        return f"Mel L1 distance: training; held-out checked once so far ({point.value:.3g} at step {point.step})"
    return PLOT_TITLES["mel"]


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


def headline(ctx: AppContext, view: TrainView) -> str:
    """Return the status line: the run's, or for one never started what the experiment still lacks."""
    if view.status != "not started":
        return f"**{view.headline}**"
    experiment = ctx.workspace.experiment(view.experiment)
    if chain_running(experiment) is not None:
        return (
            f"**{view.experiment}: being trained from its recordings** (see **Train from recordings**): "
            "the run shows here once it trains."
        )
    status: ExperimentStatus = status_of(experiment)
    lack = NOT_READY.get(status.stage)
    return f"**{view.experiment}:** {lack}" if lack else f"**{view.headline}**"


# --- the timer's tick -------------------------------------------------------------------------


def _empty(seen: dict[str, Any]) -> tuple[Any, ...]:
    import gradio as gr

    skip = gr.skip()
    outputs = [
        "" if seen.get("experiment") else skip,
        NO_EXPERIMENT,
        "",
        gr.HTML(visible=False),
        gr.Column(visible=False),
        *[skip] * (len(PLOTS) + 1),
        console_html([]),
        gr.Column(visible=False),
        skip,
        gr.File(visible=False),
        skip,
    ]
    return (*outputs, {})


def _plots(view: TrainView) -> list[Any]:
    import gradio as gr

    plots = []
    for plot in PLOTS:
        frame = loss_frame(view, plot)
        title = mel_title(view) if plot == "mel" else PLOT_TITLES[plot]
        plots.append(gr.LinePlot(frame, title=title, x_lim=step_range(frame)))
    lr = lr_frame(view.lr)
    plots.append(gr.LinePlot(lr, x_lim=step_range(lr)))
    return plots


def _files(ctx: AppContext, view: TrainView, seen: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Return the model files' update (offered once a run has ended) and the new ``seen``."""
    import gradio as gr

    if view.finished:
        paths = model_files(ctx, view.experiment)
        signature = [(str(p), p.stat().st_mtime_ns) for p in paths]
        if signature != seen.get("files"):
            return gr.File([servable(p) for p in paths] or None, visible=bool(paths)), {**seen, "files": signature}
    elif seen.get("files"):
        return gr.File(None, visible=False), {**seen, "files": None}
    return gr.skip(), seen


def poll(ctx: AppContext, name: str | None, seen: dict[str, Any]) -> tuple[Any, ...]:
    """Return the updates of one timer tick; ``seen`` (per browser tab) skips what has not changed."""
    import gradio as gr

    skip = gr.skip()
    if not name:
        return _empty(seen)
    view = ctx.jobs.job(name).view(ctx.settings.console_lines, ctx.settings.verbose)
    switched = seen.get("experiment") != name
    fresh = switched or seen.get("version") != view.version
    # A message of this tab speaks of one run: it is no longer true once that run has ended, or
    # once another experiment is shown.
    ended = view.status in FINISHED and seen.get("status") not in FINISHED
    message: Any = "" if switched or (ended and seen.get("status") is not None) else skip
    files: Any = skip
    which: Any = skip
    if fresh:
        files, seen = _files(ctx, view, seen)
        which = export_choices(ctx, name)
    server = ctx.tensorboard.server
    url = server.url if server is not None else None
    board: Any = skip
    if url != seen.get("tensorboard"):
        board = tensorboard_html(url)
        seen = {**seen, "tensorboard": url}
    outputs = [
        message,
        headline(ctx, view),
        stats_html(view.progress),
        gr.HTML(stats_html(view.gpu), visible=bool(view.gpu)),
        gr.Column(visible=any(view.curves.values()) or bool(view.lr)),
        *(_plots(view) if fresh else [skip] * (len(PLOTS) + 1)),
        console_html(view.console),
        gr.Column(visible=view.finished and view.status != "not started"),
        which,
        files,
        board,
    ]
    return (*outputs, {**seen, "experiment": name, "version": view.version, "status": view.status})

"""A tab's stage-job panel: the job's progress bars, its log, a Stop button, redrawn by a timer.

The panel shows the newest job of the experiment named in the tab's field, or, when the field
is empty (a reloaded page), the newest running job of any experiment, and then fills the field
with its name. A panel of the assets folder's jobs (downloads: ``wire_assets_panel``) shows the
newest of those. Everything comes from ``StageJobs.view`` (the events file and the process), so
any number of pages show the same job.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rvc.errors import UserError
from webui.stage_jobs import JobView, StageJobs

if TYPE_CHECKING:
    import gradio as gr

POLL_S = 1.0  # how often each open page redraws the panel


@dataclass
class JobPanel:
    """The panel's components, for a tab to wire its buttons to."""

    html: gr.HTML
    log: gr.Textbox
    notice: gr.Markdown
    stop: gr.Button
    shown: gr.State  # what the page drew last: "<events>|<status>|<hash>"


def render_panel(label: str = "Progress") -> JobPanel:
    """Draw the panel (inside the current Blocks context) and return its components."""
    import gradio as gr

    notice = gr.Markdown()
    with gr.Group():
        page = gr.HTML(elem_classes=["rvc-job-panel"])
        log = gr.Textbox(label=label, lines=4, max_lines=16, interactive=False, autoscroll=True)
    stop = gr.Button("Stop", variant="stop", visible=False, size="sm")
    return JobPanel(page, log, notice, stop, gr.State(""))


def wire_panel(
    panel: JobPanel,
    jobs: StageJobs,
    experiment: gr.Textbox | gr.Dropdown,
    report: Sequence[gr.components.Component],
    report_of: Callable[[str], tuple[Any, ...]],
    stages: Collection[str] | None = None,
) -> None:
    """Redraw the panel every POLL_S; refresh ``report`` (``report_of(name)``) when a job ends.

    ``stages``: the panel shows only jobs of these stages (None: any).
    """
    import gradio as gr

    def tick(name: str, shown: str) -> tuple[Any, ...]:
        job = jobs.pick(name, stages)
        view = jobs.view(job)
        key = _key(view)
        if key == shown:
            return (gr.skip(),) * (5 + len(report))
        finished = _just_ended(view, shown)
        fill = not (name or "").strip() and bool(view.experiment)
        new_name = view.experiment if fill else name
        refreshed = report_of(new_name) if finished or fill else (gr.skip(),) * len(report)
        return (
            view.html,
            view.log,
            gr.update(visible=view.running),
            key,
            view.experiment if fill else gr.skip(),
            *refreshed,
        )

    timer = gr.Timer(POLL_S)
    outputs = [panel.html, panel.log, panel.stop, panel.shown, experiment, *report]
    timer.tick(tick, inputs=[experiment, panel.shown], outputs=outputs, show_progress="hidden")
    _wire_stop(panel, jobs)


def wire_assets_panel(
    panel: JobPanel,
    jobs: StageJobs,
    stages: Collection[str],
    report: Sequence[gr.components.Component],
    report_of: Callable[..., tuple[Any, ...]],
    report_inputs: Sequence[gr.components.Component] = (),
) -> None:
    """Redraw the panel with the assets folder's newest job of ``stages`` every POLL_S.

    When that job ends, ``report`` is refreshed with ``report_of(*values of report_inputs)``.
    """
    import gradio as gr

    def tick(shown: str, *values: Any) -> tuple[Any, ...]:
        view = jobs.view(jobs.pick_assets(stages))
        key = _key(view)
        if key == shown:
            return (gr.skip(),) * (4 + len(report))
        refreshed = report_of(*values) if _just_ended(view, shown) else (gr.skip(),) * len(report)
        return (view.html, view.log, gr.update(visible=view.running), key, *refreshed)

    timer = gr.Timer(POLL_S)
    outputs = [panel.html, panel.log, panel.stop, panel.shown, *report]
    timer.tick(tick, inputs=[panel.shown, *report_inputs], outputs=outputs, show_progress="hidden")
    _wire_stop(panel, jobs)


def _key(view: JobView) -> str:
    """What a page drew: "<events>|<status>|<hash>" (a tick that finds the same key sends nothing)."""
    return f"{view.events}|{view.status}|{hash((view.html, view.log))}"


def _just_ended(view: JobView, shown: str) -> bool:
    """Whether the job has ended since the page drew ``shown`` (or the page never drew it ended)."""
    was = shown.split("|")
    return view.ended and (was[0] != view.events or was[1] != view.status)


def _wire_stop(panel: JobPanel, jobs: StageJobs) -> None:
    def stop(shown: str) -> str:
        events = shown.split("|")[0]
        if events and jobs.stop(events):
            return "Stopping: the stage saves what it finished, then ends."
        return "Nothing to stop."

    panel.stop.click(stop, inputs=panel.shown, outputs=panel.notice)


def start_handler(jobs: StageJobs, request: Callable[..., Any]) -> Callable[..., str]:
    """Return a button handler: ``request(*values)`` -> a StageRequest, started as a job; the notice it shows."""

    def start(*values: Any) -> str:
        try:
            wanted = request(*values)
            jobs.start(wanted.experiment, wanted.stage, wanted.args)
        except UserError as error:
            return f"Not started: {error}"
        return f"Started: {wanted.title}"

    return start

"""The Train tab's actions: start, stop and resume the trainer, export and index as jobs, TensorBoard.

Each returns the message the tab shows, in the tab's words (its buttons and fields, never a
command line). The view of the run itself is drawn by ``webui.train_poll``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from rvc.devices import cuda_device_count
from rvc.errors import UserError
from rvc.experiment import Experiment
from rvc.jobs.launcher import StageJob, running_jobs
from rvc.jobs.state import ENDED, JobWatch
from rvc.train import launcher
from webui.context import AppContext
from webui.files import servable

log = logging.getLogger(__name__)

NO_EXPERIMENT = (
    "No experiment yet: prepare one in **Prepare Dataset** and save its settings in **Generate Configuration**, "
    "or train one in a single step in **Train from recordings**."
)
MODEL_STAGES = ("export", "index")  # the stage jobs this tab starts and shows
CPU_NOTE = (
    "No CUDA GPU here, so it trains on the CPU: that takes hours even for a few minutes of recordings. "
    "The status below shows the measured time of a step and how long the rest will take."
)


def model_files(ctx: AppContext, name: str | None) -> list[Any]:
    """Return the experiment's exported models and index that exist (none for no experiment or a bad name)."""
    try:
        experiment = ctx.workspace.experiment(name or "")
    except UserError:
        return []
    paths = [experiment.exported_model(), experiment.exported_model(best=True), experiment.index_file]
    return [path for path in paths if path.is_file()]


def trains_on_cpu(ctx: AppContext, gpus: tuple[int, ...]) -> bool:
    """Return whether a trainer started now would run on the CPU (no GPU asked for, none found)."""
    if gpus:
        return False
    from rvc.devices import resolve_device

    try:
        return resolve_device(ctx.settings.default_device) == "cpu"
    except UserError:
        return False  # the trainer says what is wrong with the device


def chain_running(experiment: Experiment) -> str | None:
    """Return the start time of a running Train from recordings job on the experiment, or None."""
    for job in running_jobs(experiment):
        if job.stage == "run":
            return job.events.stem.split("-", 1)[1]
    return None


def _start_refusal(ctx: AppContext, experiment: Experiment, resume: bool) -> str | None:
    """Return why Start (or Resume) cannot go ahead, in the tab's words; None when it can."""
    from rvc.experiment.config_file import has_config, load_config

    name = experiment.name
    if (gone := experiment.gone()) is not None:
        return gone
    if ctx.jobs.job(name).running():
        return f"**{name}** is already training. Watch it below, or Stop it first."
    if (started := chain_running(experiment)) is not None:
        return (
            f"**{name}** is being trained from its recordings (started {started}): its progress is in "
            "**Train from recordings**, and the run shows here once it trains."
        )
    if not has_config(experiment):
        return f"**{name}** has no saved settings yet: save them in **Generate Configuration** first."
    steps = experiment.checkpoints.complete_steps()
    resumes = load_config(experiment).train.resume
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
    return None


def start_training(ctx: AppContext, name: str | None, gpu_text: str, resume: bool) -> str:
    """Start (or resume) training ``name``; return the message for the user."""
    if not name:
        return NO_EXPERIMENT
    try:
        experiment = ctx.workspace.experiment(name)
        text = (gpu_text or "").strip()
        gpus = launcher.parse_gpu_ids(text, present=cuda_device_count() if text else None)
        refusal = _start_refusal(ctx, experiment, resume)
        if refusal is not None:
            return refusal
        command = launcher.train_command(ctx.workspace, name, device=ctx.settings.default_device, gpus=gpus)
        ctx.jobs.start(name, command)
    except UserError as error:
        return f"Not started: {error}"
    threading.Thread(target=_start_tensorboard_quietly, args=(ctx,), daemon=True).start()
    verb = "Resuming" if resume else "Starting"
    if trains_on_cpu(ctx, gpus):
        return f"{verb} **{name}** on the CPU. {CPU_NOTE}"
    where = f"GPU {', '.join(map(str, gpus))}" if gpus else f"device {ctx.settings.default_device}"
    return f"{verb} **{name}** on {where}. The graphs fill in as the trainer reports."


def _start_tensorboard_quietly(ctx: AppContext) -> None:
    try:
        ctx.tensorboard.ensure(ctx.settings.tensorboard_port)
    except UserError as error:
        log.warning("%s", error)


def stop_training(ctx: AppContext, name: str | None) -> str:
    """Ask the trainer to save and stop."""
    if not name:
        return NO_EXPERIMENT
    try:
        if not ctx.jobs.stop(name):
            return f"**{name}** is not training."
    except UserError as error:
        return f"Not stopped: {error}"
    return f"Stopping **{name}**: it saves its state, then exits. **Resume** continues from there."


def open_tensorboard(ctx: AppContext) -> tuple[str, str]:
    """Start TensorBoard if needed; return (message, link and embedded view)."""
    from webui.train_poll import tensorboard_html

    try:
        server = ctx.tensorboard.ensure(ctx.settings.tensorboard_port)
    except UserError as error:
        return f"TensorBoard did not start: {error}", ""
    note = ""
    if server.port != ctx.settings.tensorboard_port:
        note = f"Port {ctx.settings.tensorboard_port} was taken, so TensorBoard uses {server.port}."
    return note, tensorboard_html(server.url)


# --- the model: export and index ------------------------------------------------------------

NO_BEST = (
    "no best state yet: the best state is kept once the held-out clips have been checked, and this run "
    "stopped before the first check"
)


def export_choices(ctx: AppContext, name: str | None) -> Any:
    """Return the export choice as the experiment's states allow: best when there is one, else latest alone."""
    import gradio as gr

    if not name:
        return gr.update(choices=["best", "latest"], value="best")
    try:
        has_best = ctx.workspace.experiment(name).checkpoints.has_best()
    except UserError:
        has_best = False
    if has_best:
        info = "best: lowest held-out mel loss; latest: the last saved state"
        return gr.update(choices=["best", "latest"], value="best", info=info)
    return gr.update(choices=["latest"], value="latest", info=f"latest: the last saved state ({NO_BEST})")


STATE_LABEL = "State to export"  # the export choice's label
STARTED = " (its progress and log show below; it goes on if you close this page)."  # ends a started job's message


def _start_stage(ctx: AppContext, name: str, stage: str, args: list[str], what: str) -> str:
    """Start ``python -m rvc <stage> <args>`` on ``name`` as a job; return the message for the user."""
    try:
        ctx.stage_jobs.start(name, stage, ["--experiment", name, *args])
    except UserError as error:
        return f"Not started: {error}"
    return what + STARTED


def export_model(ctx: AppContext, name: str | None, which: str) -> str:
    """Start exporting the best or latest state as an RVC .pth (a job); return the message."""
    if not name:
        return NO_EXPERIMENT
    try:
        experiment = ctx.workspace.experiment(name)
    except UserError as error:
        return f"Not started: {error}"
    if (gone := experiment.gone()) is not None:
        return gone
    checkpoints = experiment.checkpoints
    if not checkpoints.can_resume():
        return f"**{name}** has no saved state to export yet: train it first (**Start**)."
    if which not in ("best", "latest"):  # none chosen: the job's argument list would hold None
        return f"Not exported: choose the '{STATE_LABEL}' (best or latest), then **Export**."
    if which == "best" and not checkpoints.has_best():
        return f"Not exported: **{name}** has {NO_BEST}. Choose **latest** to export the last saved state."
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


def outcome_after_start(ctx: AppContext, name: str, message: str | None) -> tuple[Any, Any]:
    """After Export or Build index drew its message: the job's outcome if it has ended already.

    A job of a second or less can end before the click's "Building ..." reaches the page; the panel's
    timer then showed the outcome first, and the click's message replaced it for good.
    """
    import gradio as gr

    if not (message or "").endswith(STARTED):  # refused: the message says why, and stays
        return gr.skip(), gr.skip()
    return model_job_outcome(ctx, name)


def model_job_outcome(ctx: AppContext, name: str) -> tuple[Any, Any]:
    """Return (message, files) for the newest export or index job of ``name`` once it has ended."""
    import gradio as gr

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
        return f"The {job.stage} did not finish: {why}", skip
    argv = list(state.start.argv) if state.start is not None else []
    files = gr.File([servable(p) for p in model_files(ctx, name)] or None, visible=True)
    return _done_message(job, state.end.message, argv), files

"""Train from recordings: the form's values -> one job, ``python -m rvc run`` (prepare -> ... -> export).

The chain is the command line's own ``run`` (``rvc.cli.run``), started as a stage job: its events
hold a bar of the chain's stages and each stage's bars, so the tab draws one progress view that a
reload or an app restart re-attaches to, and one Stop ends it (the trainer saves first).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.jobs.state import ENDED, read_job
from rvc.settings import setting_of, ui_message
from webui.context import AppContext
from webui.encoders import LABEL as ENCODER_LABEL
from webui.encoders import chosen_encoder
from webui.prepare_handlers import LABELS as PREPARE_LABELS
from webui.prepare_handlers import StageRequest, experiment_of, gather_inputs

STAGE = "run"
NO_PRETRAIN = "none"

# The form's fields and their labels (errors name them so).
LABELS = {
    "experiment": "Voice name",
    "folders": "Folder(s) of recordings on the server",
    "uploads": "Upload recordings",
    "sample_rate": "Sample rate",
    "f0_method": "Pitch method",
    "embedder": ENCODER_LABEL,
    "epochs": "Epochs",
    "pretrain": "Pretrained pair",
}


def pretrain_choices(workspace: Workspace, sample_rate: Any) -> tuple[list[tuple[str, str]], str]:
    """Return the installed G/D pairs of ``sample_rate`` as (label, G path) and the one to start with.

    The first pair is chosen: fine-tuning a pretrain needs far less audio and time than training from scratch.
    """
    from rvc.pretrained.pairs import find_pretrain_pairs
    from webui.config_pretrains import pairs_for_rate, preset_rate, shown

    root = workspace.assets.pretrained_dir
    try:
        pairs = pairs_for_rate(find_pretrain_pairs(root), preset_rate(sample_rate))
    except UserError:  # none chosen (a stale page): Start says so; the list offers no pair of a rate
        pairs = []
    choices = [("none: train from scratch (needs hours of audio)", NO_PRETRAIN)]
    choices += [(f"{shown(pair.g, root)} + {pair.d.name}", str(pair.g)) for pair in pairs]
    return choices, (str(pairs[0].g) if pairs else NO_PRETRAIN)


def _epochs(value: Any) -> int | None:
    if value is None or value == "" or value == 0:  # empty (a reloaded page shows 0): chosen for the data
        return None
    from rvc.config.train import TrainConfig
    from rvc.settings.check import range_text

    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"'{LABELS['epochs']}': {value!r} is not a number") from None
    epochs = setting_of(TrainConfig, "epochs")  # its declared range: the trainer's
    low, high = epochs.minimum or 1, epochs.maximum or math.inf
    if not (math.isfinite(number) and number == int(number) and low <= number <= high):
        raise UserError(f"'{LABELS['epochs']}': give a whole number {range_text(epochs)}, or leave it empty")
    return int(number)


def _sample_rate(value: Any) -> int:
    """Return the form's sample rate, one the presets train at; UserError naming the field otherwise."""
    from rvc.data.options import PrepareOptions
    from rvc.settings.forms import form_value

    try:
        return int(form_value(setting_of(PrepareOptions, "sample_rate"), value))
    except UserError as error:
        raise UserError(ui_message(error, LABELS)) from None


def _embedder(ctx: AppContext, value: str | None) -> str:
    from rvc.features.embedder import EMBEDDERS

    chosen = chosen_encoder(ctx.paths, value)
    if chosen is None:
        raise UserError(f"'{LABELS['embedder']}': choose one of {', '.join(EMBEDDERS)}, or one in the list")
    return chosen


def _pretrain_args(ctx: AppContext, value: str | None) -> list[str]:
    from webui.config_pretrains import partner_of

    if not value or value == NO_PRETRAIN:
        return []
    generator = ctx.paths.resolve(value, f"'{LABELS['pretrain']}'", must_exist=True)
    discriminator = partner_of(ctx.workspace, str(generator))
    if not discriminator or discriminator == NO_PRETRAIN:
        raise UserError(f"'{LABELS['pretrain']}': {generator.name} has no D file beside it; choose another pair")
    return ["--pretrained-g", str(generator), "--pretrained-d", discriminator]


def chain_request(ctx: AppContext, form: Mapping[str, Any]) -> StageRequest:
    """Return the ``run`` job the form describes; raise a UserError naming the field as the tab labels it."""
    from rvc.choices import F0_METHODS

    try:
        experiment = experiment_of(ctx.workspace, form.get("experiment"))
    except UserError as error:
        raise UserError(ui_message(error, LABELS)) from None
    f0 = str(form.get("f0_method") or "")
    if f0 not in F0_METHODS:
        raise UserError(f"'{LABELS['f0_method']}': choose one of {', '.join(F0_METHODS)}")
    embedder = _embedder(ctx, form.get("embedder"))
    epochs = _epochs(form.get("epochs"))
    pretrained = _pretrain_args(ctx, form.get("pretrain"))
    rate = _sample_rate(form.get("sample_rate"))
    try:
        inputs = gather_inputs(experiment, {"folders": form.get("folders"), "uploads": form.get("uploads")}, ctx.paths)
    except UserError as error:
        message = str(error)
        for field in ("folders", "uploads"):  # in this tab's words
            message = message.replace(PREPARE_LABELS[field], LABELS[field])
        raise UserError(message) from None
    args = ["--experiment", experiment.name, "--input", *(str(folder) for folder in inputs.folders)]
    args += ["--sample-rate", str(rate), "--f0", f0, "--embedder", embedder, "--device", ctx.settings.default_device]
    args += (["--epochs", str(epochs)] if epochs else []) + pretrained + (["--tiny-model"] if ctx.tiny_model else [])
    where = ", ".join(str(folder) for folder in inputs.folders)
    title = f"Train '{experiment.name}' from its recordings ({where}) at {rate} Hz"
    return StageRequest(experiment.name, STAGE, args, title)


def outcome(ctx: AppContext, name: str) -> tuple[str]:
    """Say how the newest chain of ``name`` ended (and where its model is); empty while it runs or before one."""
    from rvc.cli.run import STAGES

    job = ctx.stage_jobs.pick(name, (STAGE,))
    if job is None:
        return ("",)
    state, status = read_job(job.events)
    if status not in ENDED:
        return ("",)
    if status == "done":
        experiment = job.experiment
        models = [path for path in experiment.exported_models() if path.is_file()]
        shown = ", ".join(f"`{path.name}`" for path in models) or "its model"
        return (
            f"**{name} is trained**: {shown} in `{experiment.root}`. Listen to it in **Try Model** (it is selected "
            "there); the run's graphs are in **Train**.",
        )
    stages = state.tasks.get("stages")
    reached = list(STAGES)[min(stages.done, len(STAGES) - 1)] if stages is not None else "prepare"
    why = state.end.message if state.end is not None else "its process ended without a word (see the log)"
    return (
        f"**The chain ended at {reached}** ({status}): {why}. Press **Train from recordings** again to go on: "
        "the finished stages are kept.",
    )

"""Making a pretrain: an experiment's training state written as a G/D pair others train from.

A pretrain is a model trained from scratch (or fine-tuned from another pretrain) on hours of
many speakers. What RVC, Applio and we load as one is a pair of files in RVC's checkpoint
format, ``{"model", "iteration", "optimizer", "learning_rate"}``, the weights in RVC's key
spelling (``weight_g``/``weight_v``), so RVC's classes load them with ``strict=True``. The
pair comes from one complete state (the G and D of the same step): the best state keeps no D.

The optimizer entry keeps the optimizer's settings but none of its moments (``"state": {}``):
the loaders of pretrains read ``model`` alone, a run that starts from a pretrain starts its
optimizer afresh, and Adam's two moments would triple the files. RVC's resume path can still
load the entry into its AdamW (its moments then start at zero).

By default the pair is installed as a custom pair under the assets folder
(``pretrained_v2/<name>/<rate>/``), where ``config --pretrained-g/-d`` and the Generate
Configuration tab's dropdowns find it; ``out`` writes it to a folder instead.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rvc.errors import UserError
from rvc.experiment import AssetDir, Experiment
from rvc.experiment.checkpoints import save_torch
from rvc.experiment.config_file import load_model_config
from rvc.experiment.names import discriminator_file, generator_file
from rvc.fileio import make_folder
from rvc.pretrained.catalogue import D_FILE, G_FILE, Kind
from rvc.pretrained.custom import add_custom_pair, validate_pair_name, validate_pretrain_file

PRETRAIN_KEYS = ("model", "iteration", "optimizer", "learning_rate")
_STEP = re.compile(r"(?:G_)?(\d+)(?:\.pth)?")


@dataclass(frozen=True)
class MadePretrain:
    name: str
    sample_rate: int
    g: Path
    d: Path
    step: int
    epoch: int


def pretrain_payload(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Return the pretrain form of one ``G_*``/``D_*`` checkpoint: RVC's four keys, the optimizer without moments."""
    optimizer = checkpoint.get("optimizer") or {}
    groups = optimizer.get("param_groups", []) if isinstance(optimizer, dict) else []
    return {
        "model": checkpoint["model"],  # RVC's spelling already: checkpoints are written that way
        "iteration": int(checkpoint.get("iteration", 0)),
        "optimizer": {"state": {}, "param_groups": groups},
        "learning_rate": float(checkpoint.get("learning_rate", 0.0)),
    }


def state_step(experiment: Experiment, which: str) -> int:
    """Return the step of the complete state ``which`` names: "latest", a step number or ``G_<step>.pth``."""
    steps = experiment.checkpoints.complete_steps()
    if which == "best":
        raise UserError(
            "the best state keeps only its generator, and a pretrain needs the G and D of one step: give "
            f"--checkpoint latest or {generator_file('<step>')}"
        )
    if not steps:
        raise UserError(
            f"no complete training state in {experiment.checkpoints.folder}: train first "
            f"(`python -m rvc train --experiment {experiment.name}`)"
        )
    if which == "latest":
        return steps[-1]
    match = _STEP.fullmatch(which)
    if match is None or int(match.group(1)) not in steps:
        listed = ", ".join(str(step) for step in steps[-5:])
        raise UserError(f"no complete state {which!r}: use latest or one of the steps {listed}")
    return int(match.group(1))


def export_pretrain(
    experiment: Experiment,
    assets: AssetDir,
    checkpoint: str = "latest",
    name: str | None = None,
    out: Path | None = None,
    overwrite: bool = False,
) -> MadePretrain:
    """Write the G/D pair of ``experiment``'s state ``checkpoint`` as a pretrain; return where it went.

    name : the pair's name (default: the experiment's). out : a folder to write ``G.pth`` and ``D.pth``
    to, instead of installing the pair under ``assets``. Each file is checked against the
    experiment's model (every key and shape) before it is written.
    """
    import torch

    pair_name = validate_pair_name(name or experiment.name)
    step = state_step(experiment, checkpoint)
    paths = experiment.checkpoints.paths(step)
    model = load_model_config(experiment)
    payloads = {}
    for kind, path in (("G", paths.generator), ("D", paths.discriminator)):
        try:
            payloads[kind] = pretrain_payload(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as error:  # a damaged state: say which file
            raise UserError(f"cannot read {path} ({error}): export another step") from error
    epoch = payloads["G"]["iteration"]
    if out is not None:
        make_folder(out)
        g, d = out / G_FILE, out / D_FILE
        targets: tuple[tuple[Kind, Path], ...] = (("G", g), ("D", d))
        for kind, target in targets:
            if target.exists() and not overwrite:
                raise UserError(f"{target} exists: choose another --out folder, or add --overwrite")
            save_torch(payloads[kind], target)
            validate_pretrain_file(target, kind, model.sample_rate, model)
        return MadePretrain(pair_name, model.sample_rate, g, d, step, epoch)
    with tempfile.TemporaryDirectory(dir=experiment.root, prefix=".pretrain-") as scratch:
        # Named as the state they come from: the pair's source.json records these names.
        g_tmp, d_tmp = Path(scratch) / generator_file(step), Path(scratch) / discriminator_file(step)
        save_torch(payloads["G"], g_tmp)
        save_torch(payloads["D"], d_tmp)
        pair = add_custom_pair(assets, pair_name, g_tmp, d_tmp, model.sample_rate, model, overwrite)
    return MadePretrain(pair_name, model.sample_rate, pair.g, pair.d, step, epoch)

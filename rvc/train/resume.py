"""What a saved state holds beyond RVC's G/D files, and how a run continues from it.

Both ends of the contract in one place: ``state_extra`` is what ``state_<step>.pt`` holds
(schedulers, loss scale, counters, overtraining record, RNG states, the model shape's hash),
``restore`` puts a loaded state back into freshly built models, and ``lower_learning_rate``
is the rewrite a rollback makes before the run restarts from that state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from rvc.config.experiment import ExperimentConfig
from rvc.errors import UserError
from rvc.experiment.checkpoints import Checkpoints, LoadedState, save_torch
from rvc.train.models import Models
from rvc.train.overtrain import OvertrainDetector


@dataclass
class TrainState:
    """Counters that a resumed run continues from."""

    epoch: int = 0  # last completed epoch
    step: int = 0  # optimizer steps taken
    skipped_steps: int = 0  # non-finite steps skipped in total
    rollbacks: int = 0
    lr_scale: float = 1.0  # product of every rollback's LR factor (a record; the schedulers carry the LR)
    pending_lr_factor: float = 1.0  # set by a rollback, applied to the schedulers once on the next start
    history: list[dict[str, Any]] = field(default_factory=list)  # per-epoch validation losses
    batches_done: int = 0  # batches of the unfinished epoch (epoch + 1) already trained: a stop mid-epoch
    # The batch the run trains with: a resumed "auto" run keeps it, as the clips' order depends on it
    # (0: not recorded, a state saved before batch size auto).
    batch_size: int = 0

    @classmethod
    def from_saved(cls, saved: object) -> TrainState:
        """The counters a state file holds, checked: ValueError names one of a wrong type, an impossible
        value or an unknown name (a run had gone on from step -3, or failed later with a traceback)."""
        if not isinstance(saved, dict):
            raise ValueError(f"a {type(saved).__name__} where a table of counters goes")
        names = {f.name for f in fields(cls)}
        for name, value in saved.items():
            if name not in names:
                raise ValueError(f"no counter is called {name!r}")
            if name in _COUNTS and (type(value) is not int or value < 0):
                raise ValueError(f"{name} is {value!r}, not a whole number of 0 or more")
            if name in _FACTORS and (type(value) not in (int, float) or not 0 < value < math.inf):
                raise ValueError(f"{name} is {value!r}, not a positive number")
            if name == "history" and (type(value) is not list or not all(isinstance(e, dict) for e in value)):
                raise ValueError("history is not a list of epochs")
        return cls(**saved)


_COUNTS = ("epoch", "step", "skipped_steps", "rollbacks", "batches_done", "batch_size")
_FACTORS = ("lr_scale", "pending_lr_factor")


def state_extra(
    models: Models, state: TrainState, detector: OvertrainDetector, config: ExperimentConfig, device: torch.device
) -> dict[str, Any]:
    """What a resumed run needs beyond RVC's G/D files: schedulers, counters, RNG states, the shape's hash."""
    return {
        "scheduler_g": models.scheduler_g.state_dict(),
        "scheduler_d": models.scheduler_d.state_dict(),
        "scaler": models.loss_scale.state_dict(),
        "train_state": state.__dict__,
        "detector": detector.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "config_hash": config.training_hash(),
        **({"rng_cuda": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
    }


def restore(
    loaded: LoadedState,
    models: Models,
    detector: OvertrainDetector,
    config: ExperimentConfig,
    device: torch.device,
    where: Checkpoints,
) -> TrainState:
    """Put a loaded state back into ``models`` and ``detector`` (RNG states too); return its counters."""
    if loaded.extra.get("config_hash") != config.training_hash():
        raise UserError(
            f"the saved states in {where.folder} were trained with another model shape "
            "(sample rate or architecture changed): start a new experiment, or delete that folder to "
            "train from scratch"
        )
    paths = loaded.paths
    delete = f"delete {paths.generator.name}, {paths.discriminator.name} and {paths.state.name}"
    parts = (
        (paths.generator, lambda: models.generator.load_state_dict(loaded.generator)),
        (paths.discriminator, lambda: models.discriminator.load_state_dict(loaded.discriminator)),
        (paths.generator, lambda: _load_optimizer(models.optimizer_g, loaded.optimizer_g)),
        (paths.discriminator, lambda: _load_optimizer(models.optimizer_d, loaded.optimizer_d)),
        (paths.state, lambda: _restore_extra(loaded.extra, models, detector, device)),
    )
    for path, load in parts:
        try:
            load()
        except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as error:
            # A G or D file of another model copied in (a D file holding a generator), or an edited state.
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(
                f"{path} does not fit this model ({type(error).__name__}: {first[:200]}): {delete} to resume "
                "from the state before it"
            ) from error
    try:
        return TrainState.from_saved(loaded.extra["train_state"])
    except (KeyError, ValueError) as error:
        raise UserError(
            f"{paths.state} is damaged (its counters: {error}): {delete} to resume from the state before it"
        ) from error


def _load_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Load ``saved`` into ``optimizer`` with each moment in its parameter's memory layout.

    A state file holds contiguous moments (the saver's pinned host copies are, and so are other
    tools' files), while on a GPU the discriminator's 4-D weights are channels-last; fused AdamW
    refuses moments whose strides differ from their parameter's ("params, grads, exp_avgs, and
    exp_avg_sqs must have same dtype, device, and layout"), so a resume on a GPU failed at its
    first step.
    """
    optimizer.load_state_dict(saved)
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for name, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _restore_extra(extra: dict[str, Any], models: Models, detector: OvertrainDetector, device: torch.device) -> None:
    """Put a state file's schedulers, loss scale, overtraining record and RNG states back."""
    models.scheduler_g.load_state_dict(extra["scheduler_g"])
    models.scheduler_d.load_state_dict(extra["scheduler_d"])
    models.loss_scale.load_state_dict(extra["scaler"])
    detector.load_state_dict(extra["detector"])
    torch.set_rng_state(extra["rng_cpu"])
    if device.type == "cuda" and "rng_cuda" in extra:
        torch.cuda.set_rng_state(extra["rng_cuda"], device)


def lower_learning_rate(where: Checkpoints, step: int, factor: float) -> None:
    """Rewrite state ``step`` so that the run restarting from it trains at ``factor`` times the LR."""
    state_file = where.paths(step).state
    extra = torch.load(state_file, weights_only=True)
    saved = extra["train_state"]
    saved["lr_scale"] = saved.get("lr_scale", 1.0) * factor
    saved["pending_lr_factor"] = saved.get("pending_lr_factor", 1.0) * factor
    saved["rollbacks"] = saved.get("rollbacks", 0) + 1
    save_torch(extra, state_file)


def apply_lr_scale(models: Models, scale: float) -> None:
    """Scale both optimizers' learning rates and their schedules (a rollback's pending factor)."""
    if scale == 1.0:
        return
    for optimizer, scheduler in ((models.optimizer_g, models.scheduler_g), (models.optimizer_d, models.scheduler_d)):
        scheduler.base_lrs = [lr * scale for lr in scheduler.base_lrs]
        for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr(), strict=True):
            group["lr"] = float(lr) * scale

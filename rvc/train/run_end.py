"""How a run ends besides a stop: the finished model exported from memory, or a roll-back after non-finite steps."""

from __future__ import annotations

from collections.abc import Callable

import torch

from rvc.config.experiment import ExperimentConfig
from rvc.experiment import Experiment
from rvc.experiment import checkpoints as checkpoint
from rvc.experiment.checkpoints import Checkpoints
from rvc.train.distributed import Distributed
from rvc.train.events import ErrorEvent, Event, ExportEvent
from rvc.train.models import Models
from rvc.train.resume import TrainState, lower_learning_rate
from rvc.train.saver import HeldBest

ROLLBACK_LR_FACTOR = 0.5  # the learning rate's factor after each roll-back
ROLLED_BACK = 75  # EX_TEMPFAIL: train_experiment starts again from the state rolled back to


def learning_rate(models: Models) -> float:
    """Return the generator's learning rate now."""
    return float(models.optimizer_g.param_groups[0]["lr"])  # a device tensor when the step is graphed


def export_finished(
    experiment: Experiment,
    config: ExperimentConfig,
    generator: torch.nn.Module,
    best: HeldBest | None,
    state: TrainState,
    emit: Callable[[Event], object],
) -> None:
    """Write the finished model (and the best one) in RVC's exported format, from the weights in memory."""
    from rvc.export import export_experiment, export_model
    from rvc.export_metadata import experiment_metadata

    metadata = experiment_metadata(experiment)
    sources: list[tuple[str, dict[str, torch.Tensor], int, int]] = [
        ("latest", checkpoint.plain_state(generator), state.epoch, state.step)
    ]
    if best is not None:
        sources.append(("best", best.generator, best.epoch, best.step))
    for which, weights, epoch, step in sources:
        out = experiment.exported_model(best=which == "best")
        export_model(weights, config.model, out, epoch=epoch, step=step, metadata=metadata)
        emit(ExportEvent(which=which, path=str(out), epoch=state.epoch, step=state.step))
    if best is None and experiment.checkpoints.has_best():  # a resumed run that found no better epoch
        path = export_experiment(experiment, "best")
        emit(ExportEvent(which="best", path=str(path), epoch=state.epoch, step=state.step))


def roll_back(
    checkpoints: Checkpoints, step: int, in_a_row: int, dist: Distributed, emit: Callable[[Event], object]
) -> int:
    """Several non-finite steps in a row: go back to the last complete state with a lower LR; return the exit status.

    The caller has finished the write in flight (it may be the state to roll back to). Returns
    ROLLED_BACK, or 3 when there is no saved state to go back to.
    """
    steps = checkpoints.complete_steps()
    message = f"{in_a_row} non-finite steps in a row at step {step}"
    if not steps:
        if dist.is_main:
            emit(
                ErrorEvent(
                    message=f"{message} and no saved state to roll back to: lower --lr or use --precision bf16/fp32",
                    step=step,
                )
            )
        return 3
    if dist.is_main:
        lower_learning_rate(checkpoints, steps[-1], ROLLBACK_LR_FACTOR)
        emit(
            ErrorEvent(
                recoverable=True,
                step=step,
                rollback_to=steps[-1],
                message=f"{message}: rolling back to step {steps[-1]} with the learning rate halved",
            )
        )
    if dist.world_size > 1:
        torch.distributed.barrier()  # every rank reloads the state rank 0 has just rewritten
    return ROLLED_BACK

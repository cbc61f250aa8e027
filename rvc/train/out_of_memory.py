"""What a run that ran out of memory tells its user: the batch size it trained with, and one that fits.

The batch is the run's own, not the config's: with batch size "auto" the config says "auto",
and the number is in the ``start`` event the run wrote (or, for a resumed run, in its state); a run
that ran out after choosing it but before that event (a graph's capture) carries it in the error.
"""

from __future__ import annotations

from rvc.config.experiment import ExperimentConfig
from rvc.experiment import Experiment

AGAIN = "and start again (the last saved state is intact)"

# How cuDNN and cuBLAS word a failed allocation when it is not torch's own OutOfMemoryError.
_LIBRARY_WORDS = ("out of memory", "CUDNN_STATUS_ALLOC_FAILED", "NOT_ENOUGH_WORKSPACE")


class OutOfMemoryAtBatch(RuntimeError):
    """The GPU ran out while the trainer trained, or prepared to train, at ``batch_size`` (the original
    error is its cause)."""

    def __init__(self, batch_size: int) -> None:
        super().__init__(f"out of memory at batch size {batch_size}")
        self.batch_size = batch_size


def caused_by_out_of_memory(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from or while handling, is the GPU running out.

    A CUDA graph's capture that fails to allocate ends in a second error from ``capture_end``
    ("operation failed due to a previous error during capture"), with the out-of-memory as its
    context: both are the same failure for the user.
    """
    import torch

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, torch.OutOfMemoryError):
            return True
        if isinstance(current, RuntimeError) and any(word in str(current) for word in _LIBRARY_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


def trained_batch_size(experiment: Experiment, config: ExperimentConfig, since: int = 0) -> int | None:
    """Return the batch the failed run trained with, or None when it had not chosen one yet.

    since : the progress file's size when the run began: a ``start`` event after it is this run's.
    Else the number in the config; else ("auto") the newest saved state's, which a resume keeps.
    """
    from rvc.train.events import StartEvent
    from rvc.train.progress import read_events

    events, _ = read_events(experiment.progress_jsonl, since)
    for event in reversed(events):
        settings = event.train_settings() if isinstance(event, StartEvent) else None
        if settings is not None and isinstance(settings.batch_size, int):
            return settings.batch_size
    if isinstance(config.train.batch_size, int):
        return config.train.batch_size
    return _saved_batch_size(experiment)


def _saved_batch_size(experiment: Experiment) -> int | None:
    import torch

    checkpoints = experiment.checkpoints
    steps = checkpoints.complete_steps()
    if not steps:
        return None
    try:
        extra = torch.load(checkpoints.paths(steps[-1]).state, weights_only=True)
        return int(extra["train_state"].get("batch_size", 0)) or None
    except (OSError, RuntimeError, KeyError, TypeError, ValueError):  # a damaged state: say "auto" instead
        return None


def gpu_message(experiment: Experiment, config: ExperimentConfig, since: int = 0, batch: int | None = None) -> str:
    """Say that the GPU ran out of memory at the run's batch size (``batch``, else the one
    :func:`trained_batch_size` finds), and which smaller one to set."""
    from rvc.config.memory import largest_batch
    from rvc.config.validate import auto_batch_by_estimate
    from rvc.devices import gpu_memory_gib

    batch = batch or trained_batch_size(experiment, config, since)
    memory = gpu_memory_gib()
    precision = config.train.precision
    if batch is None:  # "auto" failed before it reported its choice: half what the estimate expects
        at, suggestion = "with batch size auto", max(1, auto_batch_by_estimate(config, memory, precision)[0] // 2)
    else:
        fits = min(batch - 1, largest_batch(config, memory, precision)) if memory else batch // 2
        at, suggestion = f"at batch size {batch}", max(1, fits)
    return (
        f"the GPU ran out of memory {at}: set --batch-size {suggestion} with "
        f"`python -m rvc config --experiment {experiment.name} --batch-size {suggestion}` {AGAIN}"
    )


def host_message(experiment: Experiment, config: ExperimentConfig, since: int = 0) -> str:
    """Say that the computer's memory ran out at the run's batch size, and a smaller one to set."""
    batch = trained_batch_size(experiment, config, since)
    at = f"at batch size {batch}" if batch is not None else "with batch size auto"
    suggestion = max(1, min((batch or 2) // 2, 8))
    return (
        f"the computer ran out of memory {at}: set a smaller one with "
        f"`python -m rvc config --experiment {experiment.name} --batch-size {suggestion}` {AGAIN}"
    )

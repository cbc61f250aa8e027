"""An experiment's training states on disk: RVC's ``G_<step>.pth`` / ``D_<step>.pth``, our ``state_<step>.pt``
and the best generator ``G_best.pth``; the one place that knows their names and rules.

``G_*``/``D_*`` hold ``{"model", "iteration", "optimizer", "learning_rate"}`` as RVC
writes them (weights in RVC's ``weight_g``/``weight_v`` spelling), so they can be
used as pretrains elsewhere. ``state_<step>.pt`` holds what RVC does not keep:
schedulers, the fp16 scaler, epoch and step counters, RNG states, the best-epoch
record and a hash of the model's shape. Each file is written atomically and the
state file last, so a state counts as complete exactly when its state file exists:
a kill -9 at any moment leaves the previous complete state loadable. ``Checkpoints``
answers what the trainer, export and the UI ask of a folder of them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rvc.errors import UserError
from rvc.experiment import names
from rvc.fileio import atomic_write_bytes, why_not_a_file
from rvc.models.weights import to_parametrized_spelling, to_rvc_spelling

_STATE_NAME = names.STATE_NAME
_GENERATOR_NAME = names.GENERATOR_NAME
BEST = "best"


@dataclass(frozen=True)
class StatePaths:
    generator: Path
    discriminator: Path
    state: Path


def state_paths(folder: Path, tag: str | int) -> StatePaths:
    """Return the three files of the state tagged ``tag`` (a step number, or "best")."""
    return StatePaths(
        folder / names.generator_file(tag), folder / names.discriminator_file(tag), folder / names.state_file(tag)
    )


def save_torch(obj: Any, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def plain_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict without the prefixes DDP and torch.compile add (tensors stay where they are)."""
    return {k.removeprefix("module.").removeprefix("_orig_mod."): v.detach() for k, v in module.state_dict().items()}


def rvc_payload(
    model_state: dict[str, torch.Tensor], optimizer_state: dict[str, Any], epoch: int, step: int, learning_rate: float
) -> dict[str, Any]:
    """One ``G_*``/``D_*`` file's content, in RVC's format (weights in RVC's spelling)."""
    return {
        "model": to_rvc_spelling(model_state),
        "iteration": epoch,  # RVC stores the epoch under this name
        "step": step,  # ours; RVC's loaders ignore it
        "optimizer": optimizer_state,
        "learning_rate": learning_rate,
    }


def write_state(
    folder: Path,
    tag: str | int,
    generator: dict[str, Any],
    discriminator: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> StatePaths:
    """Write a state's files (host tensors), each atomically and the state file last; return the paths.

    A write that fails (a full disk) removes what it wrote of a numbered state, leaves the previous
    states as they were, and raises a UserError that says so.
    """
    paths = state_paths(folder, tag)
    written: list[Path] = []
    try:
        for payload, path in ((generator, paths.generator), (discriminator, paths.discriminator), (extra, paths.state)):
            if payload is not None:
                save_torch(payload, path)
                written.append(path)
    except OSError as error:
        if tag != BEST:  # an incomplete numbered state is never loaded: do not leave its files behind
            for path in written:
                path.unlink(missing_ok=True)
        steps = complete_steps(folder)
        kept = f"the state of step {steps[-1]} is intact and a new run resumes from it" if steps else "nothing was lost"
        raise UserError(
            f"could not save the training state {tag} in {folder}: {error.strerror or error}; {kept}. "
            "Free some disk space (or lower --keep-last) and start training again"
        ) from None
    return paths


def complete_steps(folder: Path) -> list[int]:
    """Return the steps of every complete state in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    steps = []
    for path in folder.iterdir():
        match = _STATE_NAME.fullmatch(path.name)
        if match and all(
            p.is_file()
            for p in (state_paths(folder, match.group(1)).generator, state_paths(folder, match.group(1)).discriminator)
        ):
            steps.append(int(match.group(1)))
    return sorted(steps)


def prune_states(folder: Path, keep_last: int) -> list[int]:
    """Delete all but the newest ``keep_last`` complete states (and stray temporaries); return what went."""
    steps = complete_steps(folder)
    removed = steps[: max(0, len(steps) - keep_last)]
    for step in removed:
        paths = state_paths(folder, step)
        # The state file goes first: a state without it is incomplete and never loaded.
        for path in (paths.state, paths.generator, paths.discriminator):
            path.unlink(missing_ok=True)
    for stray in folder.glob(".*.tmp"):
        stray.unlink(missing_ok=True)
    return removed


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete what an interrupted save or prune left behind; return what went.

    That is temporary files, and ``G_``/``D_`` files of a step without its state file that this
    trainer wrote (they record their step): never loaded, they would only accumulate, and the newest
    would pass for the latest generator. A G/D file from elsewhere (an RVC run) is left alone.
    """
    if not folder.is_dir():
        return []
    removed = sorted(folder.glob(".*.tmp"))
    for pattern in (names.GENERATOR_PATTERN, names.DISCRIMINATOR_PATTERN):
        for path in sorted(folder.glob(pattern)):
            match = _STEP_FILE.fullmatch(path.name)
            if (
                match
                and not state_paths(folder, match.group(1)).state.exists()
                and _written_by_us(path, int(match.group(1)))
            ):
                removed.append(path)
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


_STEP_FILE = re.compile(r"[GD]_(\d+)\.pth")


def _written_by_us(path: Path, step: int) -> bool:
    """Whether ``path`` (``G_<step>.pth`` or ``D_<step>.pth``) is this trainer's save of ``step``."""
    try:  # mmap: only the pickle is read, not the weights
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # unreadable: not ours to judge, leave it
        return False
    return isinstance(payload, dict) and payload.get("step") == step


@dataclass
class LoadedState:
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor]
    optimizer_g: dict[str, Any]
    optimizer_d: dict[str, Any]
    extra: dict[str, Any]
    paths: StatePaths  # the three files it was read from


def load_state(folder: Path, step: int) -> LoadedState:
    """Read a complete state (weights in our parametrized spelling) with ``weights_only=True``."""
    paths = state_paths(folder, step)
    g, d, extra = (_load_state_file(path, step) for path in (paths.generator, paths.discriminator, paths.state))
    for path, payload in ((paths.generator, g), (paths.discriminator, d)):
        if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
            raise UserError(  # an exported model or another file copied over a state's G or D
                f"{path} is not a training checkpoint (no 'model' state dict): delete state_{step}.pt "
                "to resume from the state before it"
            )
    if not isinstance(extra, dict):
        raise UserError(f"{paths.state} is damaged (not a saved state): delete it to resume from the state before it")
    return LoadedState(
        to_parametrized_spelling(g["model"]),
        to_parametrized_spelling(d["model"]),
        g.get("optimizer", {}),
        d.get("optimizer", {}),
        extra,
        paths,
    )


def _load_state_file(path: Path, step: int) -> Any:
    """Read one file of the state at ``step``; a damaged one is a UserError naming it and the way back."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file: say which, and how to recover
        # A file a crash or a sync tool left empty reads as an error without a message: say what it is.
        why = "it is empty" if path.is_file() and path.stat().st_size == 0 else f"{type(error).__name__}: {error}"
        raise UserError(
            f"cannot read the training state at step {step}: {path} is damaged ({why}); delete "
            f"{names.state_file(step)} to resume from the state before it"
        ) from error


def generator_step(path: Path) -> int | None:
    """The step a ``G_<step>.pth`` file's name gives, or None for another name."""
    match = _GENERATOR_NAME.fullmatch(path.name)
    return int(match.group(1)) if match else None


class Checkpoints:
    """The states of one experiment's run (``logs/<name>/checkpoints``)."""

    def __init__(self, folder: Path, experiment_name: str) -> None:
        self.folder = folder
        self.experiment_name = experiment_name

    def paths(self, tag: str | int) -> StatePaths:
        return state_paths(self.folder, tag)

    def complete_steps(self) -> list[int]:
        """Steps of every complete state (a run resumes from the last), oldest first."""
        return complete_steps(self.folder)

    def remove_leftovers(self) -> list[Path]:
        return remove_leftovers(self.folder)

    def can_resume(self) -> bool:
        return bool(self.complete_steps())

    def load_state(self, step: int) -> LoadedState:
        return load_state(self.folder, step)

    def generator(self, which: str = "latest") -> Path:
        """The generator file named by ``which``: "latest" (the run's newest ``G_<step>.pth``), "best",
        ``G_<step>.pth`` or a path; a clear error when there is none."""
        train = f"train it first (`python -m rvc train --experiment {self.experiment_name}`)"
        if which == "latest":
            return self._latest_generator(train)
        if which == BEST:
            path = self.paths(BEST).generator
            if not path.is_file():
                raise UserError(
                    f"{path} does not exist: the best state is saved once held-out validation has run; {train}"
                )
            return path
        named = _GENERATOR_NAME.fullmatch(which) or which == self.paths(BEST).generator.name
        path = self.folder / which if named else Path(which)
        if not path.is_file():
            raise UserError(
                f"checkpoint {which!r}: {path} {why_not_a_file(path)}; use latest, best, G_<step>.pth or a file path"
            )
        return path

    def _latest_generator(self, train: str) -> Path:
        """The newest generator this run wrote: of a complete state, or of a save killed before its state file.

        A G_<step>.pth of a higher step that the trainer did not write (a copy of another step, a sync tool's
        leftover, a damaged or foreign file) is passed over while the run has complete states: by its name
        alone it would be exported in the run's place, and stay "latest" after every later save. A folder
        without state files (RVC's checkpoints) has nothing to tell them apart by: its newest G is the latest.
        """
        steps = sorted(
            (
                (step, path)
                for path in (self.folder.glob(names.GENERATOR_PATTERN) if self.folder.is_dir() else [])
                if (step := generator_step(path)) is not None
            ),
            reverse=True,
        )
        if not steps:
            raise UserError(f"no generator checkpoints (G_<step>.pth) in {self.folder}: {train}")
        complete = set(self.complete_steps())
        if not complete:
            return steps[0][1]
        return next(path for step, path in steps if step in complete or _written_by_us(path, step))

    def has_best(self) -> bool:
        return self.paths(BEST).generator.is_file()

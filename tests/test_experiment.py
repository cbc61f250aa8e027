"""The experiment folder's checkpoint catalogue: the one answer to latest, best, complete and can-resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rvc.errors import UserError
from rvc.experiment import Experiment, checkpoints


def _write(folder: Path, tag: str | int, complete: bool = True) -> None:
    payload = checkpoints.rvc_payload(
        {"w": torch.zeros(2)}, {}, epoch=1, step=int(tag) if tag != "best" else 0, learning_rate=1e-4
    )
    checkpoints.write_state(
        folder,
        tag,
        payload,
        payload if tag != "best" else None,
        {"train_state": {}} if complete and tag != "best" else None,
    )


def test_the_catalogue_tells_latest_best_complete_and_resumable(tmp_path: Path) -> None:
    experiment = Experiment(tmp_path, "voice")
    catalogue = experiment.checkpoints
    assert catalogue.folder == experiment.root / "checkpoints" and not catalogue.can_resume()
    with pytest.raises(UserError, match=r"no generator checkpoints.*python -m rvc train --experiment voice"):
        catalogue.generator("latest")
    with pytest.raises(UserError, match="best state is saved once held-out validation has run"):
        catalogue.generator("best")

    _write(catalogue.folder, 100)
    _write(catalogue.folder, 250, complete=False)  # killed before its state file: not resumable from
    _write(catalogue.folder, "best")
    assert catalogue.complete_steps() == [100] and catalogue.can_resume() and catalogue.has_best()
    assert catalogue.generator("latest").name == "G_250.pth"  # the newest generator, for export
    assert catalogue.generator("best").name == "G_best.pth"
    assert catalogue.generator("G_100.pth") == catalogue.folder / "G_100.pth"
    assert catalogue.load_state(100).extra == {"train_state": {}}
    with pytest.raises(UserError, match=r"'G_7\.pth': .*G_7\.pth does not exist"):
        catalogue.generator("G_7.pth")
    with pytest.raises(UserError, match=r"is a folder, not a file"):  # was 'not found', of a folder that is there
        catalogue.generator(str(tmp_path))

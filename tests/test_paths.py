"""Experiment names and paths: nothing can land outside the logs dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace
from rvc.experiment.names import validate_clip_name

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["voice", "my-voice_v2", "a.b", "A1", "x" * 128])
def test_good_names_stay_inside_the_logs_dir(tmp_path: Path, name: str) -> None:
    experiment = Experiment(tmp_path, name)
    assert experiment.root.parent == tmp_path.resolve()
    for path in (experiment.audio_dir(40000), experiment.clip_f0("c-1"), experiment.dataset_report):
        assert path.resolve().is_relative_to(experiment.root)


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../x", ".hidden", "a/b", "a\\b", "a b", "é", "x" * 129, "a\nb", "-v", "--input=x"]
)
def test_bad_names_are_refused_with_a_clear_message(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError, match="letters, digits"):
        Experiment(tmp_path, name)


@pytest.mark.parametrize("clip", ["../x", "a/b", ".x", ""])
def test_unsafe_clip_names_are_refused(clip: str) -> None:
    with pytest.raises(ValueError):
        validate_clip_name(clip)


def test_workspace_builds_paths_from_its_roots_not_the_cwd(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "L", tmp_path / "A")
    assert workspace.experiment("v").root == (tmp_path / "L" / "v").resolve()
    assert workspace.assets.rmvpe_weights == (tmp_path / "A" / "rmvpe" / "rmvpe.pt").resolve()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "rvc", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def test_cli_help_lists_every_stage_and_global_options(tmp_path: Path) -> None:
    result = _cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for word in ("prepare", "extract", "--logs-dir", "--assets-dir"):
        assert word in result.stdout


def test_cli_stage_help_shows_defaults(tmp_path: Path) -> None:
    result = _cli("extract", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "(default: rmvpe)" in result.stdout


def test_cli_refuses_a_bad_experiment_name_without_writing(tmp_path: Path) -> None:
    result = _cli("--logs-dir", str(tmp_path / "logs"), "extract", "--experiment", "../escape", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid experiment name '../escape'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "escape").exists() and not (tmp_path / "logs").exists()

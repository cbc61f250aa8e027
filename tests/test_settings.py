"""The app's settings file, the command line that overrides it, and the guard on paths typed into the UI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rvc.errors import UserError
from tests.browser import REPO, app_env, free_port
from webui.paths_guard import PathGuard
from webui.settings import Settings, load_settings, save_settings, settings_path


def test_defaults_are_valid_and_round_trip(tmp_path: Path) -> None:
    assert Settings().errors() == []
    path = settings_path(tmp_path / "logs")
    assert path == tmp_path.resolve() / "rvc_studio_settings.json"
    assert load_settings(path) == Settings()  # no file: the defaults
    changed = Settings(tensorboard_port=6100, console_lines=50, verbose=True, theme="soft", auth="me:pw")
    save_settings(changed, path)
    assert load_settings(path) == changed
    assert changed.auth_pair() == ("me", "pw")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tensorboard_port": 80}, "tensorboard_port: use a port from 1024 to 65535"),
        ({"console_lines": "many"}, "console_lines must be a whole number"),
        ({"verbose": 1}, "verbose must be true or false"),
        ({"theme": "neon-pink"}, "theme: use one of"),
        ({"auth": "nopassword"}, "auth: use USER:PASS"),
        ({"default_device": "tpu"}, "default_device: use auto, cpu, cuda or cuda:N"),
        ({"whisper_model": "huge"}, "whisper_model: use one of"),
        ({"colour": "red"}, "unknown setting(s) colour"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, data: dict, message: str) -> None:
    path = tmp_path / "rvc_studio_settings.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as error:
        load_settings(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_broken_json_says_which_file(tmp_path: Path) -> None:
    path = tmp_path / "rvc_studio_settings.json"
    path.write_text("{not json")
    with pytest.raises(UserError, match=r"not readable JSON.*delete it to use the defaults"):
        load_settings(path)


def test_several_problems_are_listed_together() -> None:
    problems = Settings(tensorboard_port=1, console_lines=0, default_precision="fp8").errors()
    assert len(problems) == 3
    with pytest.raises(UserError, match=r"default_precision.*tensorboard_port.*console_lines"):
        Settings(tensorboard_port=1, console_lines=0, default_precision="fp8").validate()


def test_app_refuses_to_start_with_a_bad_settings_file(tmp_path: Path) -> None:
    (tmp_path / "rvc_studio_settings.json").write_text(json.dumps({"tensorboard_port": 3}))
    command = [sys.executable, str(REPO / "app.py"), "--logs-dir", str(tmp_path / "logs")]
    result = subprocess.run(command, capture_output=True, text=True, env=app_env(tmp_path), timeout=120)
    assert result.returncode == 2
    assert "rvc_studio_settings.json" in result.stderr and "tensorboard_port" in result.stderr


@pytest.mark.parametrize(
    ("saved", "said"),
    [
        ({"assets_dir": "~nosuchuser/assets"}, "begins with ~nosuchuser, the home folder of a user"),
        ({"assets_dir": "a-file/assets"}, "a-file"),  # a file where the folder goes
    ],
)
def test_app_says_why_it_cannot_use_the_settings_files_folders(tmp_path: Path, saved: dict, said: str) -> None:
    """A hand-edited settings file's folder of a home this machine lacks, or under a file, ended the start in a
    traceback (RuntimeError from expanduser, FileExistsError from mkdir)."""
    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "rvc_studio_settings.json").write_text(json.dumps(saved))
    command = [sys.executable, str(REPO / "app.py"), "--logs-dir", str(tmp_path / "logs")]
    result = subprocess.run(command, capture_output=True, text=True, env=app_env(tmp_path), timeout=120)
    assert result.returncode == 2 and said in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert (tmp_path / "a-file").read_text() == "mine"


def test_share_without_auth_prints_a_warning(tmp_path: Path) -> None:
    command = [sys.executable, str(REPO / "app.py"), "--share", "--share-without-auth", "--port", str(free_port())]
    command += ["--logs-dir", str(tmp_path / "logs"), "--assets-dir", str(tmp_path / "assets")]
    process = subprocess.Popen(command, env=app_env(tmp_path), stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("Set a login" in line for line in lines):
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
        text = "".join(lines)
        assert "WARNING: --share" in text and "--auth USER:PASS" in text
    finally:
        process.kill()
        process.communicate()  # waits, and closes the pipe (wait() alone leaves it to a ResourceWarning)


def test_path_guard_keeps_typed_paths_inside_the_workspace(tmp_path: Path) -> None:
    logs, assets, data = tmp_path / "logs", tmp_path / "assets", tmp_path / "recordings"
    for folder in (logs, assets, data):
        folder.mkdir()
    (assets / "g.pth").write_bytes(b"x")
    (logs / "escape").symlink_to(tmp_path.parent)
    guard = PathGuard(tmp_path, (logs, assets))

    assert guard.resolve("assets/g.pth", "pretrained G", must_exist=True) == (assets / "g.pth").resolve()
    assert guard.resolve(str(logs / "voice" / "voice.pth")) == (logs / "voice" / "voice.pth").resolve()
    for outside in ("/etc/passwd", "logs/../../x", str(logs / "escape" / "secret"), "~/.ssh/id_rsa"):
        with pytest.raises(UserError, match="outside the folders this app may use"):
            guard.resolve(outside, "model file")
    with pytest.raises(UserError, match="outside"):
        guard.resolve(data / "a.wav")
    assert guard.allow_dataset_folder(str(data)) == data.resolve()
    assert guard.resolve(data / "a.wav") == (data / "a.wav").resolve()  # a dataset folder the user named
    with pytest.raises(UserError, match="system folder"):
        guard.allow_dataset_folder("/etc")
    with pytest.raises(UserError, match="does not exist"):
        guard.allow_dataset_folder(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="does not exist"):
        guard.resolve("assets/missing.pth", must_exist=True)

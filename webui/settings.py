"""The app's settings: one dataclass, saved as JSON beside the logs folder.

Where: ``<logs_dir>/../rvc_studio_settings.json`` by default (``settings_path``),
so each workspace keeps its own settings and a test's temporary logs folder
never reads the user's. ``python app.py --settings FILE`` picks another file.
Command-line flags win over the file; the file wins over the defaults here.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from rvc.config.train import PRECISIONS  # a new configuration's precision: the same choices
from rvc.devices import is_device_name
from rvc.errors import UserError, path_problem
from rvc.fileio import atomic_write_json, user_path

SETTINGS_FILE = "rvc_studio_settings.json"
THEMES = ("default", "soft", "base", "glass", "monochrome", "citrus", "ocean", "origin")
# openai-whisper's model names (whisper.available_models()), listed here so the app starts without importing it.
WHISPER_MODELS = (
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "medium",
    "medium.en",
    "large-v1",
    "large-v2",
    "large-v3",
    "large",
    "large-v3-turbo",
    "turbo",
)
_LANGUAGE = re.compile(r"[a-z]{2,3}|[A-Za-z ]{4,30}")  # a code ("en", "haw") or a name ("English")


@dataclass
class Settings:
    """What the Settings tab edits. Paths are stored as text, exactly as the user typed them."""

    logs_dir: str = "logs"  # experiments folder (relative: to the settings file's folder)
    assets_dir: str = "assets"  # downloaded weights (relative: to the settings file's folder)
    default_device: str = "auto"  # auto: the first GPU when there is one, else the CPU
    default_precision: str = "auto"  # auto: bf16-tail on GPUs with bf16, else fp32 (rvc/train/precision.py)
    tensorboard_port: int = 6006  # TensorBoard's usual port; a free one is taken if it is busy
    console_lines: int = 200  # how many lines of the trainer's log the Train tab shows
    verbose: bool = False  # also show the trainer's @@rvc progress lines in the console
    theme: str = "default"  # a Gradio theme (applied at the next start)
    share: bool = False  # open a public gradio.live link at the next start (set auth too)
    auth: str = ""  # USER:PASS asked by every page at the next start; empty: no login
    whisper_model: str = "base"  # Prepare Dataset's transcription model
    whisper_language: str = ""  # empty: detect the language

    def errors(self) -> list[str]:
        """Return what is wrong, one message per field, naming the field and what to do."""
        problems = []
        for name in ("logs_dir", "assets_dir"):
            if not str(getattr(self, name)).strip():
                problems.append(f"{name}: give a folder path")
        if not is_device_name(self.default_device):
            problems.append(f"default_device: use auto, cpu, cuda or cuda:N (got {self.default_device!r})")
        if self.default_precision not in PRECISIONS:
            problems.append(f"default_precision: use one of {', '.join(PRECISIONS)} (got {self.default_precision!r})")
        if not 1024 <= self.tensorboard_port <= 65535:
            problems.append(f"tensorboard_port: use a port from 1024 to 65535 (got {self.tensorboard_port})")
        if not 10 <= self.console_lines <= 10000:
            problems.append(f"console_lines: use 10 to 10000 lines (got {self.console_lines})")
        if self.theme not in THEMES:
            problems.append(f"theme: use one of {', '.join(THEMES)} (got {self.theme!r})")
        if self.auth and not re.fullmatch(r"[^:\s]+:\S+", self.auth):
            problems.append("auth: use USER:PASS (no spaces; the user name without ':'), or leave it empty")
        if self.whisper_model not in WHISPER_MODELS and not self.whisper_model.endswith(".pt"):
            problems.append(
                f"whisper_model: use one of {', '.join(WHISPER_MODELS)} or a .pt file (got {self.whisper_model!r})"
            )
        if self.whisper_language and not _LANGUAGE.fullmatch(self.whisper_language):
            problems.append(
                f"whisper_language: use a code like en or ja, or leave it empty (got {self.whisper_language!r})"
            )
        return problems

    def validate(self) -> Settings:
        """Return self, or raise UserError listing every problem."""
        problems = self.errors()
        if problems:
            raise UserError("invalid settings: " + "; ".join(problems))
        return self

    def auth_pair(self) -> tuple[str, str] | None:
        """Return (user, password) for Gradio's launch(auth=...), or None."""
        if not self.auth:
            return None
        user, password = self.auth.split(":", 1)
        return user, password

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def settings_path(logs_dir: Path) -> Path:
    """Return the default settings file of a workspace: ``<logs_dir>/../rvc_studio_settings.json``."""
    return Path(logs_dir).resolve().parent / SETTINGS_FILE


def from_dict(data: Any, source: str = SETTINGS_FILE) -> Settings:
    """Build validated Settings from parsed JSON; unknown keys and wrong types are errors naming the field."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a JSON object of settings")
    known = {f.name: f for f in fields(Settings)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserError(f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    defaults = Settings()
    values: dict[str, Any] = {}
    for name, value in data.items():
        expected = type(getattr(defaults, name))
        # bool is an int in Python: check it first so that "true" and 1 are not confused
        if expected is bool and not isinstance(value, bool):
            raise UserError(f"{source}: {name} must be true or false (got {value!r})")
        if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise UserError(f"{source}: {name} must be a whole number (got {value!r})")
        if expected is str and not isinstance(value, str):
            raise UserError(f"{source}: {name} must be text (got {value!r})")
        values[name] = value
    settings = Settings(**values)
    problems = settings.errors()
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems) + " (fix the file or delete it to use the defaults)")
    return settings


def load_settings(path: Path) -> Settings:
    """Return the settings saved at ``path``, or the defaults when there is no file."""
    if not path.exists():
        return Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: not readable JSON ({error}); fix it or delete it to use the defaults") from None
    return from_dict(data, source=str(path))


def save_settings(settings: Settings, path: Path) -> None:
    """Validate and write ``settings`` to ``path`` atomically."""
    settings.validate()
    atomic_write_json(path, settings.to_dict())


# Folders of the operating system: never a workspace, whoever runs the app (root may write anywhere).
SYSTEM_FOLDERS = tuple(
    Path(p)
    for p in ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
              "/sys", "/usr", "/var/lib", "/var/log", "/System", "/Library")
)  # fmt: skip

SHARE_NEEDS_LOGIN = (
    "share: a public link lets anyone with it use the app; set a login (USER:PASS) too, or start the app "
    "with --share --share-without-auth if that is really meant"
)


def save_problems(settings: Settings, settings_file: Path) -> list[str]:
    """Return what the Settings tab must not save beyond :meth:`Settings.errors`: a public link without a login,
    and a folder the app cannot or must not write (a system folder such as /etc)."""
    problems = [SHARE_NEEDS_LOGIN] if settings.share and not settings.auth else []
    for name in ("logs_dir", "assets_dir"):
        text = str(getattr(settings, name)).strip()
        if text:
            try:
                problem = folder_problem(resolve_folder(settings_file, text))
            except (OSError, ValueError) as error:  # a name too long, a NUL byte
                problem = path_problem(error) or f"{text!r} is not a usable folder path ({error})"
            except UserError as error:  # ~USER of no user here
                problem = str(error)
            if problem:
                problems.append(f"{name}: {problem}")
    return problems


def folder_problem(folder: Path) -> str | None:
    """Say why ``folder`` cannot hold a workspace (a system folder, not writable, a file), or None."""
    if folder == Path(folder.anchor) or any(folder == p or p in folder.parents for p in SYSTEM_FOLDERS):
        return f"{folder} is a system folder: choose a folder of your own, e.g. {Path.home() / 'rvc-studio'}"
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        return f"{folder} cannot be written by this user ({existing} is not writable): choose another folder"
    return None


def resolve_folder(settings_file: Path, text: str) -> Path:
    """Return a folder setting as an absolute path (relative paths start at the settings file's folder)."""
    path = user_path(text)
    return (path if path.is_absolute() else settings_file.parent / path).resolve()

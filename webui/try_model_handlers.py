"""Try Model's handlers: list exported models and indexes, convert a clip, keep the last results.

Typed functions that call rvc.infer; the tab (webui.tabs.try_model) only wires them to components.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.experiment.folder import best_and_latest
from rvc.infer.pipeline import ConvertOptions, VoiceConverter

HISTORY_SIZE = 4  # conversions kept listed for A/B listening
CACHE_SIZE = 3  # loaded voices kept in memory (each holds a generator and a content encoder)
SEED = 0  # every conversion uses it: the same clip and settings give the same result
NO_INDEX = ""
UPLOADS_FOLDER = ".try_model"  # under logs/: results of uploaded models (a dotfolder is never an experiment)
HISTORY_HEADERS = ["#", "model", "index", "pitch", "f0", "index rate", "protect", "RMS mix", "seconds", "file"]


def model_choices(workspace: Workspace) -> list[tuple[str, str]]:
    """Return (label, path) of every experiment's exported models (the latest, then the best)."""
    return [
        (f"{status.name} / {path.name}", str(path))
        for status in workspace.experiments()
        if status.exported
        for path in status.experiment.exported_models()
    ]


def experiment_model(workspace: Workspace, name: str | None) -> str | None:
    """Return the model Try Model picks for experiment ``name``: its best export, else its latest, else None."""
    if not name:
        return None
    try:
        experiment = workspace.experiment(name)
    except UserError:
        return None
    for path in (experiment.exported_model(best=True), experiment.exported_model()):
        if path.is_file():
            return str(path)
    return None


def model_experiment(workspace: Workspace, model_path: str | None) -> str | None:
    """Return the experiment an exported model belongs to, or None (an uploaded model, nothing chosen)."""
    if not model_path:
        return None
    folder = Path(model_path).resolve().parent
    if folder.parent != workspace.logs_dir.resolve() or folder.name.startswith("."):
        return None
    return folder.name


def index_choices(workspace: Workspace, model_path: str | None = None) -> list[tuple[str, str]]:
    """Return "none" and (label, path) of every experiment's FAISS indexes; the model's experiment first."""
    owner = Path(model_path).parent if model_path else None
    found = []
    for status in workspace.experiments():
        experiment = status.experiment
        for path in experiment.index_files():
            found.append((experiment.root != owner, f"{experiment.name} / {path.name}", str(path)))
    found.sort(key=lambda item: item[0])  # stable: the model's own indexes lead, each group in order
    return [("none", NO_INDEX)] + [(label, value) for _, label, value in found]


def default_index(workspace: Workspace, model_path: str | None) -> str:
    """Return the first index of the model's own experiment, or none."""
    if not model_path:
        return NO_INDEX
    owner = Path(model_path).parent
    for _, value in index_choices(workspace, model_path)[1:]:
        if Path(value).parent == owner:
            return value
    return NO_INDEX


def default_f0_method(workspace: Workspace) -> str:
    """Return rmvpe (RVC's best) when its weights are installed, else pm (no weights needed)."""
    return "rmvpe" if workspace.assets.rmvpe_weights.is_file() else "pm"


def check_uploaded_model(path: str | Path) -> Path:
    """Read an uploaded .pth safely (weights only) and return its path; UserError says what is wrong."""
    from rvc.export import read_exported

    path = Path(path)
    if path.suffix.lower() != ".pth":
        raise UserError(f"uploaded model {path.name}: not a .pth file; upload an exported RVC v2 model (NAME.pth)")
    read_exported(path)  # refuses pickled objects, checkpoints, v1, no-f0, bad configs, naming the file
    return path


def convert_options(
    f0_method: object, pitch: object, index_rate: object, protect: object, rms_mix: object
) -> ConvertOptions:
    """Return the knobs' values as ConvertOptions; UserError naming the knob (by its label) that is not a number."""
    from rvc.settings import from_form, ui_message

    values = {"f0_method": f0_method, "pitch": pitch, "index_rate": index_rate, "protect": protect, "rms_mix": rms_mix}
    try:
        return from_form(ConvertOptions, values)
    except UserError as error:
        raise UserError(ui_message(error)) from None


def checkpoint_pair(model_path: str | Path) -> tuple[Path, Path]:
    """Return (best, latest) exports of the model's experiment: ``NAME_best.pth`` and ``NAME.pth``."""
    path = Path(model_path)
    best, latest = best_and_latest(path)
    missing = [p.name for p in (best, latest) if not p.is_file()]
    if missing:
        raise UserError(
            f"compare checkpoints needs both {best.name} and {latest.name} in {path.parent}; "
            f"missing: {', '.join(missing)}. Export both (the trainer writes NAME_best.pth when validation runs), "
            "or untick compare checkpoints"
        )
    return best, latest


class ConverterCache:
    """Loaded voices keyed by (model, index, embedder, device), the least recently used dropped first."""

    def __init__(self, workspace: Workspace, size: int = CACHE_SIZE) -> None:
        self.workspace = workspace
        self.size = size
        self._voices: OrderedDict[tuple[str, str, str, str, str, float], VoiceConverter] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        model: Path,
        index: Path | None,
        embedder: str | None,
        device: str,
        precision: str = "auto",
        on_load: Callable[[], None] | None = None,
    ) -> VoiceConverter:
        """Return the voice, loading it on first use (and again when the model file changed).

        on_load : called before a load (not when the voice is in memory already), to say so.
        """
        mtime = model.stat().st_mtime if model.exists() else 0.0  # a re-export replaces the file
        key = (str(model), str(index or ""), embedder or "", device, precision, mtime)
        with self._lock:  # one load at a time: two sessions asking for one voice load it once
            if key in self._voices:
                self._voices.move_to_end(key)
                return self._voices[key]
            if on_load is not None:
                on_load()
            converter = VoiceConverter.load(
                model,
                self.workspace.assets,
                index_path=index,
                embedder=embedder,
                device=device,
                precision=precision,
                allow_download=False,  # the Download Pretrained tab installs weights; never stall a click
            )
            self._voices[key] = converter
            while len(self._voices) > self.size:
                self._voices.popitem(last=False)
            return converter

    def __len__(self) -> int:
        return len(self._voices)


@dataclass(frozen=True)
class Result:
    """One converted clip and the settings that made it."""

    path: Path
    model: str
    index: str
    options: ConvertOptions
    seconds: float

    def row(self, number: int) -> list[object]:
        o = self.options
        return [number, self.model, self.index, o.pitch, o.f0_method, o.index_rate, o.protect, o.rms_mix,
                round(self.seconds, 2), self.path.name]  # fmt: skip

    @property
    def label(self) -> str:
        return f"{self.model} · pitch {self.options.pitch:+g} · {self.options.f0_method}"


def output_folder(workspace: Workspace, model: Path) -> Path:
    """Return ``logs/<exp>/conversions`` for an experiment's model, else ``logs/.try_model/conversions``."""
    logs = workspace.logs_dir.resolve()
    parent = model.resolve().parent
    if parent.parent == logs and not parent.name.startswith("."):
        return parent / "conversions"
    return logs / UPLOADS_FOLDER / "conversions"


def _output_path(folder: Path, clip: Path, model: Path) -> Path:
    # The random tail keeps two conversions in one second (compare, two sessions) apart.
    return folder / f"{clip.stem[:40]}_{model.stem}_{time.strftime('%Y%m%d-%H%M%S')}_{uuid.uuid4().hex[:6]}.wav"


def convert_clip(
    workspace: Workspace,
    cache: ConverterCache,
    model: Path,
    clip: Path,
    options: ConvertOptions,
    *,
    index: Path | None = None,
    embedder: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    compare: bool = False,
    on_progress: Callable[[str, float], None] | None = None,
) -> list[Result]:
    """Convert ``clip`` with ``model`` (or its best and latest exports when ``compare``), seeded alike.

    Writes 16-bit WAVs under the folder :func:`output_folder` names. Raises UserError with a message
    for the user (a missing clip, a bad model, missing encoder weights, a setting out of range).
    on_progress : told what happens, (words, fraction done): loading a model, converting window k of n.
    """
    from dataclasses import replace

    if not clip.is_file():
        raise UserError("no clip to convert: upload or record one first")
    options = replace(options, seed=SEED if options.seed is None else options.seed)
    options.check()
    models = list(checkpoint_pair(model)) if compare else [model]
    say = on_progress or (lambda words, fraction: None)
    results = []
    for number, path in enumerate(models):
        which = f"{path.name}: " if len(models) > 1 else ""

        def loading(which: str = which, number: int = number) -> None:
            say(f"{which}loading the model and its content encoder", number / len(models))

        def converting(done: int, total: int, which: str = which, number: int = number) -> None:
            say(f"{which}converting window {done} of {total}", (number + done / total) / len(models))

        converter = cache.get(path, index, embedder, device, precision, on_load=loading)
        say(f"{which}converting", number / len(models))
        target = _output_path(output_folder(workspace, path), clip, path)
        conversion = converter.convert_file(clip, target, options, on_window=converting)
        results.append(Result(target, path.name, index.name if index else "none", options, conversion.seconds))
    return results


def add_to_history(history: list[Result], results: list[Result], size: int = HISTORY_SIZE) -> list[Result]:
    """Return the newest ``size`` results, newest first (a new list: Gradio state is replaced, not mutated)."""
    return (list(reversed(results)) + list(history))[:size]


def history_rows(history: list[Result]) -> list[list[object]]:
    """Return the history table's rows, newest first."""
    return [result.row(number) for number, result in enumerate(history, start=1)]

"""Handlers of the Generate Configuration tab: every TrainConfig field as a form value, and back.

The form is a mapping from TrainConfig field names to what the widgets hold
(numbers, booleans, text for lists and pairs, a path or :data:`NO_PRETRAIN`).
:func:`config_from_form` turns it into an :class:`ExperimentConfig`, refusing
pretrain paths outside the assets and logs folders; validate and save then go
through :mod:`rvc.config` exactly as the ``config`` command does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rvc.config.experiment import ExperimentConfig
from rvc.config.train import PRECISIONS, TrainConfig, parse_batch_size
from rvc.errors import UserError
from rvc.experiment import Experiment, ExperimentStatus, Workspace
from rvc.experiment.config_file import find_config, has_config, load_config, save_config
from rvc.models.config import ModelConfig
from rvc.settings import Setting, labels_of, settings_of, ui_help
from webui.config_pretrains import NO_PRETRAIN, preset_rate
from webui.paths_guard import PathGuard
from webui.prepare_handlers import experiment_of

# The sections of the form, in order; a TrainConfig field missing here lands in "Other settings".
SECTIONS: dict[str, tuple[str, ...]] = {
    "Length and batch": ("epochs", "batch_size", "grad_accum"),
    "Saving, validation and overtraining": (
        "save_every",
        "keep_last",
        "validate_every",
        "overtrain_patience",
        "auto_stop",
        "resume",
    ),
    "Precision and speed": ("precision", "step_mode", "data_placement", "tf32", "seed"),
    "Optimizer": ("lr", "betas", "eps", "grad_clip"),
    "Learning-rate schedule": (
        "lr_scheme",
        "lr_gamma",
        "lr_milestones",
        "lr_factor",
        "cosine_period",
        "cosine_restart_decay",
        "cosine_min_lr",
    ),
    "Loss weights": ("c_mel", "c_kl", "multiscale_mel"),
    "Logging": ("log_every_steps", "log_every_seconds", "mlflow"),
}
SUGGESTED = "Suggested settings for the dataset"  # how the form's source line begins for the preset's values
PRETRAIN_FIELDS = ("pretrained_g", "pretrained_d")  # shown as dropdowns of the pairs under assets

LABELS: dict[str, str] = labels_of(TrainConfig)  # declared with each field (rvc.config.train)


@dataclass(frozen=True)
class FieldSpec:
    """One TrainConfig field as the form shows it."""

    name: str
    label: str
    help: str
    kind: str  # a value of KINDS
    default: Any  # the form value of the dataclass default
    choices: tuple[str, ...] = ()


def field_specs() -> list[FieldSpec]:
    """Return every TrainConfig field with its label, help line and widget kind, in dataclass order."""
    specs = []
    for option in settings_of(TrainConfig):
        kind = _kind(option)
        value = to_form_value(kind, option.default)
        specs.append(FieldSpec(option.name, option.label, ui_help(option), kind, value, option.choices))
    return specs


def _kind(option: Setting) -> str:
    """Return how the form shows the option: number, whole number, switch, choice, text or pretrain path
    ("whole or auto": the batch size, a text field that takes auto or a number)."""
    kinds = {bool: "switch", int: "whole", float: "number", list: "whole list", tuple: "pair"}
    if option.name == "batch_size":
        return "whole or auto"
    if option.kind is float and option.optional:
        return "optional number"
    if option.kind is str:
        return "pretrain" if option.optional else "choice" if option.choices else "text"
    if option.kind not in kinds:
        raise TypeError(f"TrainConfig.{option.name}: no form widget for the type {option.type}")
    return kinds[option.kind]


def sections() -> list[tuple[str, list[FieldSpec]]]:
    """Return the form's sections with their fields; every field but the pretrains appears in exactly one."""
    specs = {spec.name: spec for spec in field_specs()}
    placed = {name for names in SECTIONS.values() for name in names} | set(PRETRAIN_FIELDS)
    out = [(title, [specs[n] for n in names if n in specs]) for title, names in SECTIONS.items()]
    rest = [spec for name, spec in specs.items() if name not in placed]
    if rest:
        out.append(("Other settings", rest))
    return out


def to_form_value(kind: str, value: Any) -> Any:
    """Return a TrainConfig value as its widget holds it."""
    if kind in ("whole list", "pair"):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if kind == "pretrain":
        return value or NO_PRETRAIN
    if kind == "whole or auto":
        return str(value)
    return value


def form_from_train(train: TrainConfig) -> dict[str, Any]:
    """Return the form values of a TrainConfig."""
    return {spec.name: to_form_value(spec.kind, getattr(train, spec.name)) for spec in field_specs()}


def _parse(spec: FieldSpec, value: Any) -> Any:
    where = f"'{spec.label}'"
    if spec.kind in ("whole", "number", "optional number"):
        if value is None or value == "":
            if spec.kind == "optional number":
                return None
            raise UserError(f"{where}: enter a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserError(f"{where}: {value!r} is not a number") from None
        if spec.kind == "whole":
            if not math.isfinite(number) or number != int(number):
                raise UserError(f"{where}: enter a whole number (got {number:g})")
            return int(number)
        return number
    if spec.kind == "switch":
        return bool(value)
    if spec.kind == "whole or auto":
        return _whole_or_auto(where, value)
    if spec.kind in ("whole list", "pair"):
        parts = str(value or "").replace(",", " ").split()
        try:
            numbers = [int(p) for p in parts] if spec.kind == "whole list" else [float(p) for p in parts]
        except ValueError:
            example = "50, 100, 150" if spec.kind == "whole list" else "0.8, 0.99"
            raise UserError(f"{where}: {value!r} is not a list of numbers like {example}") from None
        if spec.kind == "pair":
            if len(numbers) != 2:
                raise UserError(f"{where}: give two numbers, e.g. 0.8, 0.99")
            return (numbers[0], numbers[1])
        return numbers
    if spec.kind == "pretrain":
        text = str(value or "").strip()
        return None if text in ("", NO_PRETRAIN) else text
    if spec.choices and value not in spec.choices:
        raise UserError(f"{where}: {value!r} is not one of {', '.join(spec.choices)}")
    return str(value)


def _whole_or_auto(where: str, value: Any) -> int | str:
    """Parse the batch size's text field: auto or a whole number (its range is checked with the rest)."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise UserError(f"{where}: enter auto or a whole number")
    try:
        return parse_batch_size(text.removesuffix(".0"))
    except UserError:
        raise UserError(f"{where}: {text!r} is neither auto nor a whole number (e.g. 8)") from None


def train_from_form(values: Mapping[str, Any], guard: PathGuard) -> TrainConfig:
    """Return the TrainConfig of the form; pretrain paths must lie in a folder the app may use (assets, logs)."""
    parsed = {}
    for spec in field_specs():
        if spec.name not in values:
            raise UserError(f"'{spec.label}' is missing from the form")
        parsed[spec.name] = _parse(spec, values[spec.name])
    for name in PRETRAIN_FIELDS:
        if parsed.get(name):
            parsed[name] = str(guard.resolve(parsed[name], f"'{LABELS[name]}'"))
    return TrainConfig(**parsed)


def configurable(statuses: Sequence[ExperimentStatus]) -> list[str]:
    """Return the names of the experiments that hold a prepared dataset or a configuration, in the given order."""
    return [status.name for status in statuses if status.prepared or status.configured]


def list_experiments(workspace: Workspace) -> list[str]:
    """Return the experiments that hold a prepared dataset or a configuration, by name."""
    return configurable(workspace.experiments())


def _saved(experiment: Experiment) -> ExperimentConfig | None:
    return find_config(experiment, check=False)  # the form is where a value out of range is corrected


def _model_for(experiment: Experiment, sample_rate: int) -> ModelConfig:
    """Return the experiment's saved model when it has this rate (a custom shape stays), else the v2 preset."""
    saved = _saved(experiment)
    if saved is not None and saved.model.sample_rate == sample_rate:
        return saved.model
    return ModelConfig.for_sample_rate(sample_rate)


@dataclass(frozen=True)
class LoadedForm:
    """What a load, suggest or import puts in the form."""

    sample_rate: int
    values: dict[str, Any]
    message: str  # Markdown: where the values came from, and what the dataset holds


def _data_line(config: ExperimentConfig) -> str:
    data = config.data
    if not data.train_clips:
        return "No prepared dataset yet: prepare it in the Prepare Dataset tab first."
    return (
        f"Dataset: {data.seconds / 60:.1f} min at {data.sample_rate} Hz, {data.train_clips} training and "
        f"{data.validation_clips} validation clips; features: {data.f0_method} pitch, "
        f"{data.embedder.rsplit('/', 1)[-1]} content."
    )


def suggested_form(workspace: Workspace, name: str, default_precision: str = "auto") -> LoadedForm:
    """Return the preset's suggested settings for the experiment's dataset (rvc.config.setup.default_config)."""
    from rvc.config.setup import default_config

    experiment = experiment_of(workspace, name)
    config = default_config(experiment)
    if default_precision in PRECISIONS:
        config.train.precision = default_precision
    message = f"{SUGGESTED} (not saved yet). {_data_line(config)}"
    return LoadedForm(config.model.sample_rate, form_from_train(config.train), message)


def load_form(workspace: Workspace, name: str, default_precision: str = "auto") -> LoadedForm:
    """Return the experiment's saved settings, or the suggested ones when it has no config.json yet."""
    from rvc.config.setup import data_info

    experiment = experiment_of(workspace, name)
    saved = _saved(experiment)
    if saved is None:
        return suggested_form(workspace, name, default_precision)
    saved.data = data_info(experiment, saved.data)
    message = f"Loaded the saved settings of {experiment.config_json}. {_data_line(saved)}"
    return LoadedForm(saved.model.sample_rate, form_from_train(saved.train), message)


def import_form(workspace: Workspace, name: str, source: str) -> LoadedForm:
    """Return another experiment's training settings (and sample rate) for this experiment's form."""
    from rvc.config.setup import data_info

    experiment = experiment_of(workspace, name)
    other = experiment_of(workspace, source)
    if not has_config(other):
        raise UserError(f"experiment '{other.name}' has no saved configuration to import ({other.config_json})")
    config = load_config(other, check=False)  # validated with the form, like every other value
    config.data = data_info(experiment)
    message = f"Imported the settings of '{other.name}' (not saved yet: press Save). {_data_line(config)}"
    return LoadedForm(config.model.sample_rate, form_from_train(config.train), message)


def config_from_form(
    workspace: Workspace, guard: PathGuard, name: str, sample_rate: int, values: Mapping[str, Any]
) -> ExperimentConfig:
    """Return the ExperimentConfig the form describes, with what the data stages recorded."""
    from rvc.config.setup import data_info

    experiment = experiment_of(workspace, name)
    if (gone := experiment.gone()) is not None:  # deleted since the page listed it: a save would make it again
        raise UserError(f"{gone}, or prepare it again in Prepare Dataset")
    rate = preset_rate(sample_rate)
    saved = _saved(experiment)
    train = train_from_form(values, guard)
    data = data_info(experiment, saved.data if saved else None)
    return ExperimentConfig(model=_model_for(experiment, rate), train=train, data=data)


def ui_text(text: str) -> str:
    """Replace the CLI flags rvc's messages name with the labels of the form ("--batch-size 4" -> "'Batch size' 4")."""
    labels = {f"--{spec.name.replace('_', '-')}": f"'{spec.label}'" for spec in field_specs()}
    labels["--validation"] = "the Prepare Dataset tab's 'Validation clips'"

    def label(match: re.Match[str]) -> str:
        return labels.get(match.group(0), match.group(0))

    return re.sub(r"--[a-z0-9-]+", label, text)


def _report(config: ExperimentConfig) -> tuple[bool, list[str]]:
    from rvc.config.validate import validate

    result = validate(config)
    lines = [f"- Error: {ui_text(error)}" for error in result.errors]
    lines += [f"- Suggestion: {ui_text(suggestion)}" for suggestion in result.suggestions]
    if result.auto_batch is not None:
        text = ui_text(result.auto_batch)
        lines.append(f"- {text[:1].upper()}{text[1:]}")
    if result.memory_estimate_gib is not None:
        gpu = f" of the GPU's {result.gpu_memory_gib:.1f} GiB" if result.gpu_memory_gib else " (no GPU here to compare)"
        about = f"about {result.memory_estimate_gib} GiB at batch size {result.batch_size}{gpu}"
        lines.append(f"- GPU memory: {about} ({result.memory_parts})")
    return result.ok, lines


def planned_steps(config: ExperimentConfig) -> int:
    """Return the optimizer steps the settings train for (every epoch whole; "auto" on the CPU: the dataset's bound)."""
    from rvc.config.validate import auto_batch_by_estimate

    train = config.train
    batch = train.batch_size if train.batch_size != "auto" else auto_batch_by_estimate(config, None)[0]
    per_epoch = -(-max(config.data.train_clips, 1) // max(batch * train.grad_accum, 1))
    return per_epoch * train.epochs


def cpu_note(experiment: Experiment, config: ExperimentConfig) -> str:
    """Say that training on the CPU takes hours, with the step time measured here when a run has shown it."""
    from rvc.train.run_state import read_run
    from webui.run_view import duration

    steps = planned_steps(config)
    text = f"- **No CUDA GPU: training runs on the CPU, which takes hours.** These settings train {steps:,} steps"
    state = read_run(experiment.progress_jsonl)
    start = state.start
    if start is not None and start.device.startswith("cpu") and state.it_s:
        per_step = 1 / state.it_s
        measured = f"{per_step:.2f} s a step (measured on this machine by its last run)"
        return f"{text}: at {measured}, about {duration(steps * per_step)}."
    return f"{text}; Start measures the time of a step, and the Train tab shows it with the time left."


def _on_cpu(device: str) -> bool:
    from rvc.devices import resolve_device

    try:
        return resolve_device(device) == "cpu"
    except UserError:
        return False


def validate_form(
    workspace: Workspace,
    guard: PathGuard,
    name: str,
    sample_rate: int,
    values: Mapping[str, Any],
    device: str = "auto",
) -> str:
    """Return Markdown: the errors that would stop training, suggestions, the GPU memory estimate, CPU-only time."""
    try:
        config = config_from_form(workspace, guard, name, sample_rate, values)
    except UserError as error:
        return f"Error: {error}"
    ok, lines = _report(config)
    if _on_cpu(device):
        lines.insert(0, cpu_note(experiment_of(workspace, name), config))
    head = "**No errors.**" if ok else "**Errors: training would not start with these settings.**"
    return "\n".join([head, *lines])


def save_form(workspace: Workspace, guard: PathGuard, name: str, sample_rate: int, values: Mapping[str, Any]) -> str:
    """Validate and save the experiment's settings (rvc.experiment.config_file); with errors, save nothing."""
    try:
        config = config_from_form(workspace, guard, name, sample_rate, values)
    except UserError as error:
        return f"Not saved: {error}"
    ok, lines = _report(config)
    if not ok:
        return "\n".join(["**Not saved: fix these errors first.**", *lines])
    experiment = experiment_of(workspace, name)
    save_config(experiment, config)
    return "\n".join([f"**Saved** {experiment.config_json}. Next: **Start** it in the Train tab.", *lines])

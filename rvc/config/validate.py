"""Check an experiment's settings before training: errors that stop it, suggestions that help it."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from rvc.config.batch import MEASURED_SHARE, dataset_bound
from rvc.config.experiment import ExperimentConfig
from rvc.config.memory import largest_batch, memory_estimate
from rvc.devices import gpu_memory_gib
from rvc.errors import UserError
from rvc.fileio import why_not_a_file
from rvc.models.config import SAMPLE_RATE_TAGS, ModelConfig

# Fine-tuning from a pretrain rarely improves past this many optimizer steps; beyond it the
# overtraining detector (held-out loss) should decide.
FINETUNE_STEPS_CEILING = 50_000


@dataclass
class Validation:
    errors: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    memory_estimate_gib: float | None = None
    memory_parts: str = ""  # what the estimate is made of, in GiB ("weights and optimizer 1.2, ...")
    gpu_memory_gib: float | None = None
    batch_size: int | None = None  # the batch the estimate is for ("auto": what the estimate expects it to pick)
    auto_batch: str | None = None  # with batch size auto: what it would choose, and that training measures it

    @property
    def ok(self) -> bool:
        return not self.errors


def auto_batch_by_estimate(config: ExperimentConfig, gpu_gib: float | None, precision: str = "auto") -> tuple[int, str]:
    """Return what batch size "auto" is expected to choose, and why in words (before a trial has measured it).

    The dataset's bound, capped by the largest batch whose estimated peak takes the share of the GPU
    the trainer's measured trial may take; without a GPU, the bound alone.
    """
    bound = dataset_bound(config.data.seconds, config.data.train_clips)
    if gpu_gib is None:
        return bound.size, f"{bound.why}; no GPU here, so no memory to fit"
    fits = largest_batch(config, gpu_gib, precision, MEASURED_SHARE)
    if fits >= bound.size:
        return bound.size, f"{bound.why}, and by the estimate {bound.size} fits the GPU's {gpu_gib:.1f} GiB"
    return fits, f"by the estimate {fits} fits {MEASURED_SHARE:.0%} of the GPU's {gpu_gib:.1f} GiB ({bound.why})"


def pretrain_problem(config: ExperimentConfig, path_text: str, is_generator: bool) -> str | None:
    """Return why the pretrain does not fit the model, or None when it fits."""
    from rvc.models.weights import check_pretrain_file

    path = Path(path_text)
    if not path.is_file():
        return f"pretrained {'G' if is_generator else 'D'} {path} {why_not_a_file(path)}"
    try:
        check_pretrain_file(path, is_generator, config.model, source=str(path))
    except UserError as error:
        return str(error)
    return None


def _dataset_misfits(config: ExperimentConfig) -> list[str]:
    """Return why the prepared dataset does not fit the model: another sample rate, more speakers than rows."""
    data, model = config.data, config.model
    errors = []
    if data.sample_rate != model.sample_rate:
        errors.append(
            f"the dataset was prepared at {data.sample_rate} Hz but the model is {model.sample_rate} Hz: "
            "prepare again at the model's rate or choose the matching preset"
        )
    if data.speakers > model.spk_embed_dim:
        errors.append(
            f"the dataset has {data.speakers} speakers but the model's speaker table has "
            f"{model.spk_embed_dim} rows: prepare at most {model.spk_embed_dim} speaker folders"
        )
    return errors


def _sized(config: ExperimentConfig, result: Validation, precision: str) -> ExperimentConfig:
    """Return ``config`` with batch size "auto" replaced by what the estimate expects it to choose
    (said in ``result.auto_batch``); a number stays."""
    if config.train.batch_size != "auto":
        return config
    batch, why = auto_batch_by_estimate(config, result.gpu_memory_gib, precision)
    result.auto_batch = (
        f"batch size auto: about {batch} ({why}); training measures a trial step when it starts and "
        "takes the largest batch that fits"
    )
    return dataclasses.replace(config, train=dataclasses.replace(config.train, batch_size=batch))


def _shape_advice(model: ModelConfig) -> list[str]:
    """Say so when the model's shape is not the v2 preset of its sample rate (a hand-edited config.json, or
    a test's tiny model): no pretrain fits it and other tools cannot load its exports."""
    if model.sample_rate not in SAMPLE_RATE_TAGS:
        return []  # refused elsewhere
    preset = ModelConfig.for_sample_rate(model.sample_rate)
    changed = [f.name for f in dataclasses.fields(ModelConfig) if getattr(model, f.name) != getattr(preset, f.name)]
    if not changed:
        return []
    shown = ", ".join(f"{name} {getattr(model, name)!r}, not {getattr(preset, name)!r}" for name in changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return [
        f"the model's shape is not RVC v2's {SAMPLE_RATE_TAGS[model.sample_rate]} preset ({shown}{more}): no "
        "community pretrain fits it, and its exported model will not load in Applio, the RVC WebUI or voice "
        f"changers; `python -m rvc config --experiment <name> --sample-rate {model.sample_rate}` writes the preset back"
    ]


def _batch_advice(batch_size: int, clips: int, minutes: float) -> list[str]:
    """Return suggestions on a batch size the user chose, for the dataset's clips and length."""
    advice = []
    if clips and batch_size > clips:
        advice.append(
            f"batch size {batch_size} is larger than the {clips} training clips: every step "
            f"repeats clips; use --batch-size {max(1, clips)} or less"
        )
    if minutes and minutes < 30 and batch_size > 8:
        advice.append(f"{minutes:.0f} minutes of audio: a batch size of 8 or less usually trains better")
    if minutes >= 60 and batch_size < 8:
        advice.append(f"{minutes:.0f} minutes of audio: a batch size of 16 or more trains faster and smoother")
    return advice


def validate(config: ExperimentConfig, precision: str | None = None) -> Validation:
    """Return errors and suggestions for ``config`` (the data fields must be filled in)."""
    result = Validation(errors=config.train.errors())
    if result.errors:  # values out of range: what follows divides by them and estimates from them
        return result
    chosen = precision or config.train.precision
    result.gpu_memory_gib = gpu_memory_gib()
    config = _sized(config, result, chosen)
    train, data = config.train, config.data
    batch_size = result.batch_size = train.resolved_batch_size
    auto = result.auto_batch is not None  # the batch was sized to the data and the GPU: no advice on it
    result.errors += _dataset_misfits(config)
    result.suggestions += _shape_advice(config.model)
    for path, is_g in ((train.pretrained_g, True), (train.pretrained_d, False)):
        if path:
            problem = pretrain_problem(config, path, is_g)
            if problem:
                result.errors.append(problem)
    if not auto:
        result.suggestions += _batch_advice(batch_size, data.train_clips, data.seconds / 60)
    minutes = data.seconds / 60
    if data.train_clips:
        steps = math.ceil(data.train_clips / batch_size) * train.epochs
        if train.pretrained_g and steps > FINETUNE_STEPS_CEILING:
            result.suggestions.append(
                f"{train.epochs} epochs are {steps:,} steps, far beyond what fine-tuning on {minutes:.0f} minutes "
                f"usually needs; keep the epochs but turn on --auto-stop so held-out loss decides when to stop"
            )
    if not train.pretrained_g and train.precision == "fp16":
        result.suggestions.append("fp16 from scratch often diverges (NaN losses): use bf16 or fp32, or a pretrain")
    if not train.pretrained_g:
        result.suggestions.append(
            "no pretrain: training from scratch needs hours of audio and many epochs; "
            "download one in the Download Pretrained tab or with `python -m rvc pretrained`"
        )
    if data.validation_clips == 0:
        result.suggestions.append(
            "no validation clips: the overtraining detector needs held-out audio; prepare with --validation 0.05"
        )
    estimate = memory_estimate(config, chosen, result.gpu_memory_gib)
    result.memory_estimate_gib = round(estimate.gib(batch_size), 1)
    result.memory_parts = estimate.parts(batch_size)
    if result.gpu_memory_gib is not None and result.memory_estimate_gib > 0.9 * result.gpu_memory_gib:
        fits = largest_batch(config, result.gpu_memory_gib, chosen)
        if auto:  # then auto is at batch 1 already: the estimate allows no batch at all
            result.errors.append(
                f"even batch size {batch_size} needs about {result.memory_estimate_gib} GiB but the GPU has "
                f"{result.gpu_memory_gib:.1f} GiB: this model needs a larger GPU"
            )
        else:
            result.errors.append(
                f"batch size {batch_size} needs about {result.memory_estimate_gib} GiB but the GPU has "
                f"{result.gpu_memory_gib:.1f} GiB: use --batch-size {fits}"
            )
    return result

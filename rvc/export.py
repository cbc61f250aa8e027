"""RVC's exported voice-model ``.pth``: the one writer of the format, and a safe reader of ours, RVC's and Applio's.

The file is a pickled dict that the RVC WebUI, Applio and real-time voice changers load::

    {"weight": fp16 generator state dict in weight_g/weight_v spelling, without enc_q.*,
     "config": the 18-value list (ModelConfig.to_rvc_config_list()),
     "info": "<epoch>epoch", "sr": "40k", "f0": 1, "version": "v2",
     ... metadata}

Those tools build the generator from ``config``, take the output rate from ``config[-1]`` and
load ``weight`` with ``strict=False`` (so a wrong key is silently left random: the writer checks
every key and shape against the model instead). Applio writes ``sr`` as an int and ``f0`` as a
bool and adds keys of its own; its Model Information tab reads ``epoch``, ``step``,
``creation_date``, ``model_hash``, ``dataset_length``, ``model_name``, ``author``,
``embedder_model``, ``speakers_id``, ``vocoder`` (and ``overtrain_info`` before July 2026), so we
write those too, next to our own keys. Every value is a plain type or a tensor, so
``torch.load(..., weights_only=True)`` reads the file; the reader loads nothing else.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import io
import json
import math
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rvc import __version__
from rvc.errors import UserError
from rvc.experiment import Experiment
from rvc.experiment.checkpoints import generator_step
from rvc.experiment.config_file import load_model_config
from rvc.experiment.names import GENERATOR_PATTERN, generator_file
from rvc.export_metadata import experiment_metadata
from rvc.fileio import atomic_write_bytes, why_not_a_file
from rvc.models.config import ModelConfig
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.models.weights import check_finite, check_state_dict, load_state_dict_checked, normalise_state_dict, rvc_name

_STATE = "the generator state to export"  # what export errors call a state given in memory
ENC_Q = "enc_q."  # the posterior encoder: training only, left out of exports as RVC does
RVC_KEYS = ("weight", "config", "info", "sr", "f0", "version")
VOCODER = "HiFi-GAN"  # Applio picks the decoder by this key; ours is RVC's NSF HiFi-GAN
APP = f"RVC Studio {__version__}"
# Metadata keys that are written only under Applio's names.
_APPLIO_INPUTS = ("name", "author", "speakers")

StateDict = dict[str, torch.Tensor]


# ---------------------------------------------------------------- writing


@functools.lru_cache(maxsize=4)
def meta_generator(config: ModelConfig) -> SynthesizerTrnMs768NSFsid:
    """Return the generator built on the meta device: its keys and shapes, no memory. Shared: do not change it.

    Kept per config: even on the meta device, building the full model's 685 weight norms takes
    seconds of CPU (a blend reads two models and writes one: three builds without the cache).
    """
    with torch.device("meta"):
        return SynthesizerTrnMs768NSFsid(config)


def export_weights(
    generator_state: Mapping[str, torch.Tensor], model_config: ModelConfig, source: str = _STATE
) -> StateDict:
    """Return the ``weight`` entry of an export: fp16, RVC's spelling and key order, no ``enc_q.*``.

    ``generator_state`` may use either weight-norm spelling, carry DDP/compile prefixes, or hold
    folded weights (after remove_weight_norm); every key and shape is checked against the
    generator built from ``model_config`` (PretrainMismatchError names what differs), and every
    value must be finite once in fp16. Tensors stay on their device (meta tensors work, for shape
    checks). ``source`` names the state in errors: the checkpoint file it was read from.
    """
    model = meta_generator(model_config)
    expected = model.state_dict()
    state = normalise_state_dict(generator_state, expected.keys())
    check_state_dict(model, state, source=source, ignore_missing=(ENC_Q,))
    weights = {
        rvc_name(key): state[key].detach().to(dtype=torch.float16, copy=True)
        for key in expected
        if not key.startswith(ENC_Q)
    }
    # After the cast: a weight past fp16's 65504 becomes infinite there, and the model renders noise.
    check_finite(weights, source, f"export an earlier checkpoint (--checkpoint {generator_file('<step>')})")
    return weights


def _check_plain(value: Any, where: str) -> None:
    """Raise TypeError unless ``value`` is what torch.load(weights_only=True) reads back."""
    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a {type(key).__name__} key {key!r}; use str keys")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__}: only plain values and tensors load with weights_only=True")


def _hms(seconds: float) -> str:
    """Format a duration as Applio's dataset_length does: HH:MM:SS."""
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _overtrain_text(overtrain: Any) -> str | None:
    """Summarise our overtraining record in one line for Applio's ``overtrain_info``."""
    if overtrain is None or isinstance(overtrain, str):
        return overtrain
    if isinstance(overtrain, dict):
        return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in overtrain.items())
    return str(overtrain)


def _weights_hash(weights: Mapping[str, torch.Tensor]) -> str:
    """Return the sha256 of the weights (names and bytes): the model's identity, whatever the metadata."""
    digest = hashlib.sha256()
    for key, tensor in weights.items():
        digest.update(key.encode("utf-8"))
        digest.update(tensor.contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def export_model(
    generator_state: Mapping[str, torch.Tensor],
    model_config: ModelConfig,
    out: Path,
    *,
    epoch: int,
    step: int,
    metadata: Mapping[str, Any],
    source: str = _STATE,
) -> Path:
    """Write an RVC v2 exported model to ``out`` atomically and return ``out``.

    generator_state : the generator's state dict, any spelling (a G_*.pth's "model", a live model's
        state_dict(), with or without enc_q.*)
    metadata : what we know about the run; read keys: name (default: out's stem), author,
        speakers (default 1), embedder, f0_method, dataset_seconds, epochs (default epoch),
        steps (default step), best_epoch, overtrain (a dict or a line); other keys are kept as
        given. Values must be plain (str/int/float/bool/None, lists, dicts with str keys, tensors).
    source : what errors about the weights call them (the checkpoint file they come from).
    """
    out = Path(out)
    reserved = sorted(set(metadata) & set(RVC_KEYS))
    if reserved:
        raise ValueError(f"metadata may not set RVC's own keys {reserved}")
    _check_plain(dict(metadata), "metadata")
    weights = {key: tensor.cpu() for key, tensor in export_weights(generator_state, model_config, source).items()}
    created = datetime.datetime.now(datetime.timezone.utc)
    payload: dict[str, Any] = {
        # RVC's keys, in RVC's order.
        "weight": weights,
        "config": model_config.to_rvc_config_list(),
        "info": f"{epoch}epoch",
        "sr": model_config.sample_rate_tag,
        "f0": 1,
        "version": "v2",
        # Applio's names for what it shows; creation_date in its format (local time, microseconds).
        "epoch": epoch,
        "step": step,
        "creation_date": created.astimezone().replace(tzinfo=None).isoformat(timespec="microseconds"),
        "model_hash": _weights_hash(weights),
        "dataset_length": _hms(metadata["dataset_seconds"]) if metadata.get("dataset_seconds") else None,
        "model_name": metadata.get("name", out.stem),
        "author": metadata.get("author"),
        "embedder_model": metadata.get("embedder"),
        "speakers_id": metadata.get("speakers", 1),
        "vocoder": VOCODER,
        "overtrain_info": _overtrain_text(metadata.get("overtrain")),
        # Ours.
        "embedder": None,
        "f0_method": None,
        "dataset_seconds": None,
        "epochs": epoch,
        "steps": step,
        "best_epoch": None,
        "overtrain": None,
    }
    payload.update({key: value for key, value in metadata.items() if key not in _APPLIO_INPUTS})
    payload["created"] = created.isoformat(timespec="seconds")
    payload["app"] = APP
    # The full configuration (tiny test models and flow depths are not in RVC's list); JSON types only.
    payload["model_config"] = json.loads(json.dumps(model_config.to_dict()))
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(out, buffer.getvalue())
    return out


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class ExportedModel:
    """An exported model file, checked: v2, with pitch, weights that fit the config."""

    state_dict: StateDict  # as stored: RVC's weight_g/weight_v spelling (fp16 in exports), no enc_q.*
    config: ModelConfig
    sample_rate: int  # output rate in Hz (config[-1], what RVC and Applio use)
    f0: int  # always 1: files without pitch guidance are refused
    version: str  # always "v2"
    metadata: dict[str, Any]  # every other key of the file: "info", Applio's keys, ours
    path: Path


def _safe_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        asks = f" (it asks for {found.group(1)})" if found else ""
        raise UserError(
            f"{path}: refused: besides tensors and plain values the file holds Python objects{asks}, "
            "which could run code when loaded, so it was not unpickled. Load models only from sources "
            "you trust, and ask the author for a plain RVC export."
        ) from exc
    except Exception as exc:  # a torch file fails in many ways: zip, EOF, storage, pickle errors
        raise UserError(
            f"{path}: not a readable PyTorch model file (truncated download, or not a .pth?); "
            f"download or export it again. ({type(exc).__name__}: {exc})"
        ) from exc


def _read_config(path: Path, data: Mapping[str, Any]) -> ModelConfig:
    """Build the config from RVC's list; prefer our full config when the file carries a consistent one."""
    values: Any = data.get("config")  # anything: from_rvc_config_list names what is wrong
    try:
        config = ModelConfig.from_rvc_config_list(values, source=str(path))
    except UserError as exc:
        message = str(exc)
        raise UserError(message if message.startswith(str(path)) else f"{path}: {message}") from exc
    except Exception as exc:  # a list of the right length with values of the wrong kinds
        raise UserError(f"{path}: cannot read RVC's 'config' list: {exc}") from exc
    ours = data.get("model_config")
    if isinstance(ours, dict):
        try:
            full = ModelConfig.from_dict(ours, source=str(path))
        except Exception:  # an edited or foreign record: RVC's list is authoritative
            return config
        if full.to_rvc_config_list() == config.to_rvc_config_list():
            return full
    return config


def _v1_reason(version: Any, weights: Mapping[str, torch.Tensor]) -> str | None:
    """Say why a file is an RVC v1 model, or return None.

    RVC and Applio read a file without "version" as v1; we trust its weights when they take
    768-d features (v2), and leave a file without them to the shape check.
    """
    emb = weights.get("enc_p.emb_phone.weight")
    if emb is not None and emb.dim() == 2 and emb.shape[1] == 256:
        return "its content-feature layer takes 256-d HuBERT features; v2 takes 768-d"
    if version == "v1":
        return "its 'version' is 'v1'"
    return None


def read_exported(path: str | Path) -> ExportedModel:
    """Read and check an exported RVC v2 model (ours, RVC WebUI's or Applio's) safely.

    Loads with ``torch.load(weights_only=True)``. Raises UserError naming the file for: a file
    holding Python objects (refused, not run), a training checkpoint, an RVC v1 model, a model
    without pitch guidance, a malformed ``config`` list, weights that do not fit the config, or
    weights that are NaN or infinite (a diverged run: it would convert into full-scale noise).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} {why_not_a_file(path)}: give the path of an exported model (.pth)")
    data = _safe_load(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: not an exported RVC model (it holds a {type(data).__name__}, not a dict)")
    weights = data.get("weight")
    if weights is None and isinstance(data.get("model"), dict):
        raise UserError(
            f"{path}: a training checkpoint ({GENERATOR_PATTERN} or a pretrain), not an exported model; "
            "export it with `python -m rvc export --experiment NAME --checkpoint FILE`"
        )
    if not isinstance(weights, dict) or not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        keys = ", ".join(map(str, list(data)[:8]))
        raise UserError(f"{path}: not an exported RVC model: no 'weight' state dict of tensors (keys: {keys})")
    check_finite(weights, str(path), "export it again from an earlier checkpoint, or use another copy of the model")
    version = data.get("version")
    v1 = _v1_reason(version, weights)
    if v1:
        raise UserError(
            f"{path}: an RVC v1 model ({v1}); RVC Studio reads v2 models only. "
            "Use the v2 version of this voice, or train it again as v2."
        )
    if version not in (None, "v2"):
        raise UserError(f"{path}: unknown model version {version!r}; expected 'v2'")
    f0 = data.get("f0", 1)  # RVC's default when the key is missing
    if not (isinstance(f0, bool | int) and f0 == 1) or "enc_p.emb_pitch.weight" not in weights:
        raise UserError(
            f"{path}: a model trained without pitch guidance (f0={f0!r}, 'nof0'); RVC Studio converts "
            "with pitch, so use the f0 version of this voice"
        )
    config = _read_config(path, data)
    model = meta_generator(config)
    normalised = normalise_state_dict(weights, model.state_dict().keys())
    check_state_dict(model, normalised, source=str(path), ignore_missing=(ENC_Q,))
    structural = ("weight", "config", "sr", "f0", "version")
    metadata = {key: value for key, value in data.items() if key not in structural}
    return ExportedModel(
        state_dict={str(k): v for k, v in weights.items()},
        config=config,
        sample_rate=config.sample_rate,
        f0=1,
        version="v2",
        metadata=metadata,
        path=path,
    )


def build_generator(model: ExportedModel, device: str | torch.device = "cpu") -> SynthesizerTrnMs768NSFsid:
    """Return an fp32 generator in eval mode holding the exported weights, ready for ``infer()``.

    Its ``enc_q`` keeps random weights: exports leave it out, and inference does not use it.
    """
    generator = SynthesizerTrnMs768NSFsid(model.config)
    load_state_dict_checked(generator, model.state_dict, source=str(model.path), ignore_missing=(ENC_Q,))
    return generator.float().to(device).eval()


# ---------------------------------------------------------------- exporting an experiment
#
# Which generator file is the latest or the best is the experiment's checkpoint catalogue's
# business (rvc/experiment/checkpoints.py); the model configuration is the "model" section of the
# experiment's settings (rvc/experiment/config_file.py).


def load_generator_checkpoint(path: Path) -> tuple[StateDict, int, int]:
    """Return (generator state dict, epoch, step) of a G_*.pth checkpoint, loaded safely."""
    data = _safe_load(path)
    state = data.get("model") if isinstance(data, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: not a generator checkpoint (expected RVC's {{'model': state dict, ...}})")
    # Other tools' files (and hand-edited ones) may hold None, text or a tensor here: they only label the export.
    epoch = _count(data.get("epoch", data.get("iteration"))) or 0
    step = _count(data.get("step"))
    if step is None:
        step = generator_step(path) or 0
    return {str(k): v for k, v in state.items()}, epoch, step


def _count(value: Any) -> int | None:
    """Return a whole number of 0 or more held as an int, an integral float or a one-value tensor; else None."""
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value)
    return None


def export_experiment(
    experiment: Experiment,
    checkpoint: str = "latest",
    out: Path | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Export a trained experiment's generator checkpoint; return the written file.

    ``out`` defaults to ``logs/NAME/NAME.pth`` (``NAME_best.pth`` for ``checkpoint="best"``).
    metadata : the experiment's, read already (``experiment_metadata``); unset: read here.
    """
    path = experiment.checkpoints.generator(checkpoint)
    state, epoch, step = load_generator_checkpoint(path)
    config = load_model_config(experiment)
    metadata = dict(experiment_metadata(experiment) if metadata is None else metadata) | dict(extra_metadata or {})
    target = Path(out) if out is not None else experiment.exported_model(best=checkpoint == "best")
    return export_model(state, config, target, epoch=epoch, step=step, metadata=metadata, source=str(path))

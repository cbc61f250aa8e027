"""Read G/D pretrains and checkpoints safely, translate weight-norm spellings, explain mismatches.

Files in the wild spell a weight-normalised tensor two ways: RVC's `X.weight_g` / `X.weight_v`
(torch.nn.utils.weight_norm) and PyTorch's newer `X.parametrizations.weight.original0` /
`original1`. Both hold the same tensors (magnitude g, direction v). Our modules use the newer
form; `to_rvc_spelling` gives RVC's for files that other tools load.
"""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from rvc.errors import UserError
from rvc.experiment.names import discriminator_file, generator_file
from rvc.fileio import why_not_a_file
from rvc.models.config import SAMPLE_RATE_TAGS, ModelConfig

_RVC_SUFFIXES = (".weight_g", ".weight_v")
_PARAM_SUFFIXES = (".parametrizations.weight.original0", ".parametrizations.weight.original1")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP and torch.compile wrappers

StateDict = dict[str, torch.Tensor]
Shape = tuple[int, ...]


def _swap_suffix(key: str, old: tuple[str, str], new: tuple[str, str]) -> str:
    for before, after in zip(old, new, strict=True):
        if key.endswith(before):
            return key[: -len(before)] + after
    return key


def to_rvc_spelling(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename `parametrizations.weight.original0/1` to RVC's `weight_g/weight_v`, keeping order."""
    return {_swap_suffix(k, _PARAM_SUFFIXES, _RVC_SUFFIXES): v for k, v in state_dict.items()}


def to_parametrized_spelling(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename RVC's `weight_g/weight_v` to `parametrizations.weight.original0/1`, keeping order."""
    return {_swap_suffix(k, _RVC_SUFFIXES, _PARAM_SUFFIXES): v for k, v in state_dict.items()}


def rvc_name(key: str) -> str:
    """Return a key as RVC spells it (for messages users can match against their files)."""
    return _swap_suffix(key, _PARAM_SUFFIXES, _RVC_SUFFIXES)


def read_state_dict(path: str | Path) -> StateDict:
    """Load the weights of a G/D pretrain, a training checkpoint or an exported model.

    Accepts RVC's `G_*.pth`/`D_*.pth` ({"model": ..., "iteration", "optimizer", "learning_rate"}),
    exported models ({"weight": ..., "config": ...}) and bare state dicts. Loads with
    `weights_only=True`: a file holding anything but tensors and plain containers is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} {why_not_a_file(path)}: check the path or download the pretrain again")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserError(
            f"{path}: holds Python objects other than tensors, so it was not unpickled (safe loading). "
            f"Use a pretrain from a trusted source, or re-save its state dict with torch.save. ({exc})"
        ) from exc
    except Exception as exc:  # torch fails in many ways on a file that is not its own: zip, EOF, KeyError, ...
        raise UserError(
            f"{path}: not a readable PyTorch file (truncated download, or not a .pth?); download it again. "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    for wrapper in ("model", "weight"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
            break
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        found = ", ".join(map(str, list(data)[:8])) if isinstance(data, dict) else type(data).__name__
        raise UserError(
            f"{path}: not a model state dict (expected tensors, or a 'model' or 'weight' entry; found {found})"
        )
    state = {str(k): v for k, v in data.items()}
    check_finite(state, str(path), "use another copy of the file (download it again)")
    return state


def check_finite(state_dict: Mapping[str, torch.Tensor], source: str, remedy: str) -> None:
    """Raise UserError naming ``source`` when any floating-point tensor holds NaN or infinity.

    Such weights load without complaint, then every step of training is skipped as non-finite
    (the run ends "diverged"), and a conversion writes a clip of full-scale noise, said to be done.
    Meta tensors (shape checks) hold no values and are skipped.
    """
    checked = [(k, t) for k, t in state_dict.items() if t.is_floating_point() and t.device.type != "meta"]
    if not checked:
        return
    # One flag a tensor, read back once: a GPU state (the trainer's final export) costs one sync, not hundreds.
    finite = torch.stack([torch.isfinite(t).all() for _, t in checked]).tolist()
    bad = [key for (key, _), ok in zip(checked, finite, strict=True) if not ok]
    if bad:
        more = f", and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise UserError(
            f"{source}: {len(bad)} of its {len(state_dict)} tensors hold NaN or infinite values "
            f"({', '.join(rvc_name(key) for key in bad[:3])}{more}), so its weights are damaged; {remedy}"
        )


def normalise_state_dict(state_dict: Mapping[str, torch.Tensor], expected: Iterable[str]) -> StateDict:
    """Put a loaded state dict into our spelling, ready for `load_state_dict` on our modules.

    Strips DDP/compile prefixes, renames `weight_g/weight_v`, and where our module is weight-
    normalised but the file holds a plain (already folded) `weight`, splits it back into
    magnitude and direction, which reproduces the same weight.
    """
    expected = set(expected)
    out: StateDict = {}
    for key, value in state_dict.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[_swap_suffix(key, _RVC_SUFFIXES, _PARAM_SUFFIXES)] = value
    for key in list(out):
        if not key.endswith(".weight"):
            continue
        g_key, v_key = (key[: -len(".weight")] + s for s in _PARAM_SUFFIXES)
        if g_key in expected and g_key not in out and key not in expected:
            weight = out.pop(key)
            norm = weight.float().flatten(1).norm(dim=1).view(-1, *([1] * (weight.dim() - 1)))
            out[g_key], out[v_key] = norm.to(weight.dtype), weight
    return out


@dataclass
class Mismatch:
    """What differs between a file's tensors and a model's, in our spelling."""

    wrong_shape: list[tuple[str, Shape, Shape]] = field(default_factory=list)  # key, file, model
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model

    def __bool__(self) -> bool:
        return bool(self.wrong_shape or self.missing or self.unexpected)


def compare_shapes(
    expected: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor], ignore_missing: Iterable[str] = ()
) -> Mismatch:
    """List keys whose shapes differ, are missing or are extra (works on meta tensors too)."""
    skip = tuple(ignore_missing)
    result = Mismatch()
    for key, tensor in expected.items():
        if key not in state_dict:
            if not (skip and key.startswith(skip)):
                result.missing.append(key)
        elif tuple(state_dict[key].shape) != tuple(tensor.shape):
            result.wrong_shape.append((key, tuple(state_dict[key].shape), tuple(tensor.shape)))
    result.unexpected = [k for k in state_dict if k not in expected]
    return result


class PretrainMismatchError(UserError):
    """A pretrain or checkpoint whose tensors do not fit the model; the message names them and a likely cause."""

    def __init__(self, message: str, mismatch: Mismatch, cause: str) -> None:
        super().__init__(message)
        self.mismatch = mismatch
        self.cause = cause


def check_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    ignore_missing: Iterable[str] = (),
) -> None:
    """Raise PretrainMismatchError unless `state_dict` (either weight-norm spelling) fits `model` exactly.

    `ignore_missing`: key prefixes the file may lack (e.g. "enc_q." for exported models).
    """
    expected = model.state_dict()
    # Files spell weight norm as RVC does (weight_g/weight_v); compare in our modules' spelling.
    state_dict = normalise_state_dict(state_dict, expected.keys())
    mismatch = compare_shapes(expected, state_dict, ignore_missing)
    if not mismatch:
        return
    is_generator = any(k.startswith("enc_p.") for k in expected)
    cause = _likely_cause(model, expected, state_dict, mismatch, is_generator)
    what = _describe_model(model, is_generator)
    raise PretrainMismatchError(
        f"{source} does not fit the {what}: {_summary(mismatch)}. Likely cause: {cause}", mismatch, cause
    )


def load_state_dict_checked(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    ignore_missing: Iterable[str] = (),
) -> None:
    """Normalise a state dict in either spelling, check it, and load it into `model` in place."""
    ignore = tuple(ignore_missing)
    normalised = normalise_state_dict(state_dict, model.state_dict().keys())
    check_state_dict(model, normalised, source=source, ignore_missing=ignore)
    model.load_state_dict(normalised, strict=not ignore)


def check_pretrain_file(path: str | Path, is_generator: bool, config: ModelConfig, *, source: str) -> None:
    """Check a G or D file against the v2 model of ``config`` built on the meta device (shapes only).

    Loads with ``weights_only=True``; raises UserError, or PretrainMismatchError naming the tensors.
    """
    from rvc.models.discriminator import MultiPeriodDiscriminatorV2
    from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid

    state = read_state_dict(path)
    with torch.device("meta"):  # no memory, no initialisation cost
        model: nn.Module = (
            SynthesizerTrnMs768NSFsid(config)
            if is_generator
            else MultiPeriodDiscriminatorV2(divisor=config.discriminator_divisor)
        )
    check_state_dict(model, state, source=source)


def load_pretrain(model: nn.Module, path: str | Path, *, ignore_missing: Iterable[str] = ()) -> None:
    """Load a G/D pretrain, checkpoint or exported model file into `model` (strict unless told)."""
    load_state_dict_checked(model, read_state_dict(path), source=str(path), ignore_missing=ignore_missing)


# ---------------------------------------------------------------- diagnosis


def _summary(mismatch: Mismatch, limit: int = 6) -> str:
    def shown(items: list[str]) -> str:
        more = f", and {len(items) - limit} more" if len(items) > limit else ""
        return "; ".join(items[:limit]) + more

    parts = []
    if mismatch.wrong_shape:
        items = [f"{rvc_name(k)}: file {list(f)}, model {list(m)}" for k, f, m in mismatch.wrong_shape]
        parts.append(f"{len(items)} tensor(s) differ in shape ({shown(items)})")
    if mismatch.missing:
        parts.append(
            f"{len(mismatch.missing)} missing from the file ({shown([rvc_name(k) for k in mismatch.missing])})"
        )
    if mismatch.unexpected:
        items = [rvc_name(k) for k in mismatch.unexpected]
        parts.append(f"{len(items)} not in the model ({shown(items)})")
    return ", ".join(parts)


def _describe_model(model: nn.Module, is_generator: bool) -> str:
    cfg = getattr(model, "cfg", None)
    if is_generator and isinstance(cfg, ModelConfig):
        return f"{cfg.sample_rate_tag} v2 generator"
    return "v2 generator" if is_generator else "v2 discriminator"


@dataclass(frozen=True)
class _DecoderSignature:
    """Shapes that tell RVC's sample-rate presets apart, whatever the channel widths."""

    label: str
    sample_rate: int
    upsample_kernels: tuple[int, ...]
    first_noise_kernel: int
    spec_channels: int


def _known_signatures() -> list[_DecoderSignature]:
    signatures = []
    for sr in SAMPLE_RATE_TAGS:
        cfg = ModelConfig.for_sample_rate(sr)
        noise = 2 * math.prod(cfg.upsample_rates[1:])
        signatures.append(
            _DecoderSignature(f"{cfg.sample_rate_tag} v2", sr, cfg.upsample_kernel_sizes, noise, cfg.spec_channels)
        )
    # RVC v1's 32k and 48k decoders had five upsampling layers ([10,4,2,2,2] and [10,6,2,2,2]).
    signatures.append(_DecoderSignature("32k v1", 32000, (16, 16, 4, 4, 4), 64, 513))
    signatures.append(_DecoderSignature("48k v1", 48000, (16, 16, 4, 4, 4), 96, 1025))
    return signatures


def _signature_of(state_dict: Mapping[str, torch.Tensor]) -> tuple[tuple[int, ...], int | None, int | None]:
    kernels = []
    i = 0
    while (key := f"dec.ups.{i}{_PARAM_SUFFIXES[1]}") in state_dict or f"dec.ups.{i}.weight" in state_dict:
        tensor = state_dict.get(key, state_dict.get(f"dec.ups.{i}.weight"))
        assert tensor is not None
        kernels.append(int(tensor.shape[-1]))
        i += 1
    noise = state_dict.get("dec.noise_convs.0.weight")
    spec = state_dict.get("enc_q.pre.weight")
    return (
        tuple(kernels),
        int(noise.shape[-1]) if noise is not None else None,
        int(spec.shape[1]) if spec is not None else None,
    )


def _guess_decoder(state_dict: Mapping[str, torch.Tensor]) -> _DecoderSignature | None:
    kernels, noise, spec = _signature_of(state_dict)
    for sig in _known_signatures():
        if (
            sig.upsample_kernels == kernels
            and noise in (None, sig.first_noise_kernel)
            and spec in (None, sig.spec_channels)
        ):
            return sig
    return None


def _likely_cause(
    model: nn.Module,
    expected: Mapping[str, torch.Tensor],
    state_dict: Mapping[str, torch.Tensor],
    mismatch: Mismatch,
    is_generator: bool,
) -> str:
    file_is_generator = any(k.startswith(("enc_p.", "dec.")) for k in state_dict)
    file_is_discriminator = any(k.startswith("discriminators.") for k in state_dict)
    if is_generator and file_is_discriminator and not file_is_generator:
        # Said wherever a G goes (a pretrain, an export, a blend), so no advice that fits only one of them.
        return (
            "this is a discriminator (D) file where a generator (G) goes: "
            f"give the G file of the pair ({generator_file('<step>')}, f0G40k.pth)."
        )
    if not is_generator and file_is_generator:
        return (
            "this is a generator (G) file where a discriminator (D) goes: "
            f"give the D file of the pair ({discriminator_file('<step>')}, f0D40k.pth)."
        )
    if not is_generator:
        return _discriminator_cause(state_dict)

    phone = state_dict.get("enc_p.emb_phone.weight")
    model_phone = expected["enc_p.emb_phone.weight"]
    if phone is not None and phone.shape[1] == 256 and model_phone.shape[1] != 256:
        return (
            "the file is an RVC v1 model (enc_p.emb_phone takes 256-d content features; v2 takes 768-d). "
            "Use a v2 pretrain (RVC's pretrained_v2/f0G40k.pth family or a v2 community pretrain)."
        )
    if "enc_p.emb_pitch.weight" not in state_dict and "dec.m_source.l_linear.weight" not in state_dict:
        return (
            "the file was trained without pitch guidance (no enc_p.emb_pitch or dec.m_source: e.g. G40k.pth "
            "rather than f0G40k.pth). Use the f0 version of the pretrain."
        )
    cfg = getattr(model, "cfg", None)
    model_sr = cfg.sample_rate if isinstance(cfg, ModelConfig) else None
    guess = _guess_decoder(state_dict)
    if guess is not None and model_sr is not None and guess.sample_rate != model_sr:
        model_tag = SAMPLE_RATE_TAGS.get(model_sr, str(model_sr))
        return (
            f"the file is a {guess.label} model ({guess.sample_rate} Hz) but the model is {model_tag} ({model_sr} Hz). "
            f"Use {model_tag} pretrains (e.g. f0G{model_tag}.pth / f0D{model_tag}.pth), "
            f"or set the experiment's sample rate to {guess.sample_rate}."
        )
    if guess is not None and guess.label.endswith("v1"):
        return f"the file is an RVC {guess.label} model; use a v2 pretrain."
    shapes = {k for k, _, _ in mismatch.wrong_shape}
    if shapes == {"emb_g.weight"}:
        rows = state_dict["emb_g.weight"].shape[0]
        return (
            f"the file's speaker table has {rows} rows and the model's {expected['emb_g.weight'].shape[0]}; "
            "set spk_embed_dim to match the pretrain."
        )
    if mismatch.wrong_shape:
        return (
            "the file's layer widths differ from this model's (a custom or resized architecture); "
            "use a standard v2 pretrain or a model configuration with the same channel sizes."
        )
    return "the file comes from a different model layout; check that it is an RVC v2 f0 generator."


def _discriminator_cause(state_dict: Mapping[str, torch.Tensor]) -> str:
    indices = {int(m.group(1)) for k in state_dict if (m := re.match(r"discriminators\.(\d+)\.", k))}
    if indices and max(indices) == 6:
        return (
            "the file is an RVC v1 discriminator (7 sub-discriminators, periods up to 17; v2 has 9, adding 23 "
            "and 37). Use a v2 D pretrain (pretrained_v2/f0D40k.pth family)."
        )
    return "the file comes from a different discriminator layout; use an RVC v2 D pretrain."

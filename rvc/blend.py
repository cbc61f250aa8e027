"""Blend two voice models, or two pretrains, into one: the weighted average of their weights.

What Applio's Voice Blender and the RVC WebUI's checkpoint merge do, with the checks they leave
out: two exported models blend only when they are the same model (sample rate, v2, pitch
guidance, the same shapes) fed by the same content encoder, since a voice model learned one
encoder's features and an average of two encoders' models answers neither. ``ratio`` is the
share of the first model, as in both tools: ``ratio * A + (1 - ratio) * B``.

Blending two G/D pretrain pairs gives what the community calls a "merge" pretrain (the third kind
beside scratch and finetune): a pair in RVC's pretrain format, installed as a custom pair.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rvc.errors import UserError
from rvc.experiment import AssetDir, Workspace
from rvc.experiment.names import sample_rate_tag
from rvc.export import ENC_Q, ExportedModel, export_model, meta_generator, read_exported
from rvc.models.weights import normalise_state_dict, read_state_dict

StateDict = dict[str, torch.Tensor]


def check_ratio(ratio: float) -> float:
    """Return ``ratio`` if it is a share between 0 and 1, else raise UserError."""
    if not 0.0 <= ratio <= 1.0:
        raise UserError(f"the ratio is the share of the first model, from 0 to 1 (got {ratio:g})")
    return ratio


def average(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], ratio: float) -> StateDict:
    """Return ``ratio * a + (1 - ratio) * b`` per tensor, summed in fp32 and stored in ``a``'s dtype.

    The two must hold the same keys with the same shapes (the callers check, naming the files).
    """
    return {
        key: (ratio * tensor.float() + (1.0 - ratio) * b[key].float()).to(tensor.dtype) for key, tensor in a.items()
    }


# ---------------------------------------------------------------- exported models


def _embedder(model: ExportedModel) -> str | None:
    """Return the content encoder a model was trained on (ours or Applio's key), spelled one way."""
    name = model.metadata.get("embedder") or model.metadata.get("embedder_model")
    return str(name).replace("-", "_") if name else None


def _differences(a: ExportedModel, b: ExportedModel) -> list[str]:
    """Say what keeps two exported models from blending, one phrase per difference."""
    found = []
    if a.sample_rate != b.sample_rate:
        found.append(
            f"{a.path.name} is a {sample_rate_tag(a.sample_rate)} model and {b.path.name} "
            f"a {sample_rate_tag(b.sample_rate)} one"
        )
    elif a.config != b.config:
        fields_a, fields_b = a.config.to_dict(), b.config.to_dict()
        differ = [name for name in fields_a if fields_a[name] != fields_b.get(name)]
        found.append(f"their shapes differ ({', '.join(differ)})")
    embedder_a, embedder_b = _embedder(a), _embedder(b)
    if embedder_a and embedder_b and embedder_a != embedder_b:
        found.append(f"{a.path.name} was trained on {embedder_a} features and {b.path.name} on {embedder_b}")
    return found


def _generator_weights(model: ExportedModel) -> StateDict:
    """Return a model's weights in our spelling, keyed as the generator its config builds."""
    expected = meta_generator(model.config).state_dict().keys()
    state = normalise_state_dict(model.state_dict, expected)
    return {key: state[key] for key in expected if not key.startswith(ENC_Q)}


def _parent(model: ExportedModel) -> dict[str, Any]:
    meta = model.metadata
    return {
        "name": meta.get("model_name") or model.path.stem,
        "file": model.path.name,
        "model_hash": meta.get("model_hash"),
        "epochs": meta.get("epoch"),
    }


OVERWRITE = ", or overwrite it (--overwrite)"  # how blend_target's refusal offers the flag (the web UI has none)


def blend_target(workspace: Workspace, name: str, overwrite: bool = False) -> Path:
    """Return where a blend named ``name`` goes in the workspace: ``logs/NAME/NAME.pth``, a model of its own.

    Refused when ``name`` is an experiment with data or settings of its own (a blend would sit among
    another voice's files), or when the model exists and ``overwrite`` is not given.
    """
    from rvc.experiment.workspace import status_of

    experiment = workspace.experiment(name)
    status = status_of(experiment)
    if status.stage not in ("new", "exported") or status.prepared or status.configured:
        raise UserError(f"'{name}' is an experiment with its own data or settings: give the blend a name of its own")
    target = experiment.exported_model()
    if target.exists() and not overwrite:
        raise UserError(f"{target} exists: choose another name{OVERWRITE}")
    return target


def read_blend_pair(a_path: Path, b_path: Path) -> tuple[ExportedModel, ExportedModel]:
    """Read two exported models and check that they blend; raise UserError naming what keeps them apart.

    Both are read safely and checked (v2, with pitch guidance: :func:`rvc.export.read_exported`);
    models of another sample rate, other shapes or another content encoder are refused.
    """
    if a_path.resolve() == b_path.resolve():
        raise UserError(f"A and B are the same file ({a_path}): blend two different models")
    a, b = read_exported(a_path), read_exported(b_path)
    problems = _differences(a, b)
    if problems:
        raise UserError(
            f"cannot blend {a.path.name} with {b.path.name}: {'; '.join(problems)}. "
            "Blend two models of one sample rate and content encoder (two voices trained the same way)."
        )
    return a, b


def write_blend(a: ExportedModel, b: ExportedModel, ratio: float, out: Path, name: str | None = None) -> Path:
    """Write ``ratio * A + (1 - ratio) * B`` to ``out`` by the one export writer; return ``out``.

    ``a`` and ``b`` come from :func:`read_blend_pair`. The metadata names both parents and the ratio.
    """
    check_ratio(ratio)
    weights = average(_generator_weights(a), _generator_weights(b), ratio)
    same = {
        key: a.metadata.get(key)
        for key in ("f0_method", "speakers_id")
        if a.metadata.get(key) is not None and a.metadata.get(key) == b.metadata.get(key)
    }
    metadata: dict[str, Any] = {
        "name": name or Path(out).stem,
        "embedder": _embedder(a) or _embedder(b),
        "f0_method": same.get("f0_method"),
        "speakers": same.get("speakers_id", 1),
        "blend": {"a": _parent(a), "b": _parent(b), "ratio": ratio},
    }
    # A blend has no training of its own: epoch and step 0, and "blend" says where it came from.
    return export_model(weights, a.config, Path(out), epoch=0, step=0, metadata=metadata)


def blend_models(a_path: Path, b_path: Path, ratio: float, out: Path, name: str | None = None) -> Path:
    """Blend two exported model files into ``out`` (:func:`read_blend_pair`, then :func:`write_blend`)."""
    check_ratio(ratio)
    a, b = read_blend_pair(a_path, b_path)
    return write_blend(a, b, ratio, out, name)


# ---------------------------------------------------------------- pretrains ("merge")


def _pretrain_kind_problem(label: str, state: Mapping[str, torch.Tensor]) -> str | None:
    """Say why a G (or D) file is not a v2 pitch-guided generator (discriminator), or return None."""
    if label == "D":
        return None if any(key.startswith("discriminators.") for key in state) else "not a discriminator"
    phone = state.get("enc_p.emb_phone.weight")
    if phone is None or "dec.m_source.l_linear.weight" not in state:
        return "not an RVC generator"
    if phone.shape[-1] != 768:
        return f"an RVC v1 generator ({phone.shape[-1]}-d content features; v2 takes 768-d)"
    return None if "enc_p.emb_pitch.weight" in state else "a generator without pitch guidance (nof0)"


def _read_pretrain(label: str, path: Path) -> StateDict:
    """Read a G (or D) file safely, in our weight-norm spelling; refuse one that is not a v2 G (D), by name."""
    state = normalise_state_dict(read_state_dict(path), ())
    problem = _pretrain_kind_problem(label, state)
    if problem:
        raise UserError(f"{path}: given as a {label} file, but it is {problem}")
    return state


def _check_same_model(label: str, names: tuple[str, str], a: StateDict, b: StateDict) -> None:
    """Raise UserError naming the tensors two G (or D) states differ in, if they are not the same model."""
    differ = sorted(set(a) ^ set(b)) + sorted(k for k in set(a) & set(b) if a[k].shape != b[k].shape)
    if differ:
        more = ", ..." if len(differ) > 4 else ""
        raise UserError(
            f"cannot merge the {label} files {names[0]} and {names[1]}: they are not the same model "
            f"(they differ in {', '.join(differ[:4])}{more}); merge two pretrains of one architecture"
        )


def _rate(g: Path) -> int:
    from rvc.pretrained.pairs import rate_from_weights

    rate = rate_from_weights(g)
    if rate is None:
        raise UserError(f"{g}: its decoder matches none of the v2 sample rates (32k, 40k, 48k)")
    return rate


def merge_pretrains(
    assets: AssetDir,
    name: str,
    a: tuple[Path, Path],
    b: tuple[Path, Path],
    ratio: float,
    overwrite: bool = False,
) -> Path:
    """Blend two G/D pretrain pairs (``a`` and ``b`` are (G, D)) into custom pair ``name``; return its folder.

    The pair lands in ``pretrained_v2/<name>/<rate>/`` (G.pth, D.pth and a source.json that names
    the parents and the ratio), where every pretrain dropdown lists it under "custom". The files
    are in RVC's pretrain format (``{"model", "iteration", "optimizer", "learning_rate"}``, RVC's
    key spelling); an average of two optimizers' moments means nothing, so the optimizer is empty.
    """
    from rvc.fileio import atomic_write_bytes, atomic_write_json, make_folder, sha256_file
    from rvc.models.weights import to_rvc_spelling
    from rvc.pretrained.catalogue import D_FILE, G_FILE, pair_dir
    from rvc.pretrained.custom import validate_pair_name
    from rvc.pretrained.pairs import SOURCE_FILE

    check_ratio(ratio)
    validate_pair_name(name)
    g_a, d_a, g_b, d_b = (Path(path) for path in (*a, *b))
    states = {path: _read_pretrain(label, path) for label, path in (("G", g_a), ("D", d_a), ("G", g_b), ("D", d_b))}
    rate_a, rate_b = _rate(g_a), _rate(g_b)
    if rate_a != rate_b:
        raise UserError(
            f"cannot merge {g_a.name} ({sample_rate_tag(rate_a)}) with {g_b.name} ({sample_rate_tag(rate_b)}): "
            "merge two pretrains of one sample rate"
        )
    folder = pair_dir(assets, name, rate_a)
    if (folder / G_FILE).exists() and not overwrite:
        raise UserError(
            f"a {sample_rate_tag(rate_a)} pretrain named {name!r} already exists in {folder}; "
            "choose another name, or delete that folder first"
        )
    merged = {}
    for label, x, y in (("G", g_a, g_b), ("D", d_a, d_b)):
        _check_same_model(label, (x.name, y.name), states[x], states[y])
        merged[label] = average(states[x], states[y], ratio)
    make_folder(folder)
    for label, file in (("D", D_FILE), ("G", G_FILE)):  # G last: a pair is listed once its G is there
        buffer = io.BytesIO()
        state = {"model": to_rvc_spelling(merged[label]), "iteration": 0, "optimizer": {}, "learning_rate": 1e-4}
        torch.save(state, buffer)
        atomic_write_bytes(folder / file, buffer.getvalue())
    atomic_write_json(
        folder / SOURCE_FILE,
        {
            "origin": "custom",
            "kind": "merge",
            "name": name,
            "sample_rate": rate_a,
            "merge": {"a": {"G": g_a.name, "D": d_a.name}, "b": {"G": g_b.name, "D": d_b.name}, "ratio": ratio},
            "files": {label: {"sha256": sha256_file(folder / file)} for label, file in (("G", G_FILE), ("D", D_FILE))},
        },
    )
    return folder

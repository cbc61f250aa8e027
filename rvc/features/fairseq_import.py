"""Turn a fairseq HuBERT / ContentVec checkpoint into a transformers ``HubertModel``.

RVC ships its content encoder as a fairseq file (``hubert_base.pt``, which is
ContentVec's 500-class "legacy" model), and users have ContentVec / HuBERT
``.pt`` files of their own. We never import fairseq: the file is read by
:mod:`rvc.features.safe_pickle`, its parameter names are mapped to
transformers' names here, and the ``HubertConfig`` is built from the weights'
shapes plus the training arguments stored in the file (``args`` in older
checkpoints, ``cfg.model`` in newer ones) for what shapes cannot tell.

The name map follows transformers'
``models/hubert/convert_hubert_original_pytorch_checkpoint_to_pytorch.py``
(``post_extract_proj`` -> ``feature_projection.projection``, top-level
``layer_norm`` -> ``feature_projection.layer_norm``, ``self_attn.*`` ->
``attention.*``, ``fc1``/``fc2`` -> ``feed_forward.*``, conv block index 0 ->
``conv``, index 2 -> ``layer_norm``, ``mask_emb`` -> ``masked_spec_embed``),
written out as explicit rules in both directions.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import HubertConfig, HubertModel

from rvc.errors import UserError
from rvc.features.pickle_stubs import ExpansionError, to_plain
from rvc.features.safe_pickle import load_checkpoint

log = logging.getLogger(__name__)

# The weight-norm parameters of the positional convolution, as torch.nn.utils.parametrizations names them.
_POS_G = "encoder.pos_conv_embed.conv.parametrizations.weight.original0"
_POS_V = "encoder.pos_conv_embed.conv.parametrizations.weight.original1"

# fairseq name -> transformers name (regex on the whole name, replacement template).
_FAIRSEQ_TO_HF: list[tuple[str, str]] = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    # block index 2: GroupNorm (first layer, "default" mode) or Sequential(T, LayerNorm, T) ("layer_norm" mode)
    (
        r"feature_extractor\.conv_layers\.(\d+)\.2\.(?:1\.)?(weight|bias)",
        r"feature_extractor.conv_layers.\1.layer_norm.\2",
    ),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.0\.(?:weight_g|parametrizations\.weight\.original0)", _POS_G),
    (r"encoder\.pos_conv\.0\.(?:weight_v|parametrizations\.weight\.original1)", _POS_V),
    (r"encoder\.pos_conv\.0\.bias", "encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(k|v|q|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"mask_emb", "masked_spec_embed"),
]

# transformers name -> fairseq name; "{ln}" is "2." (group norm) or "2.1." (layer norm).
_HF_TO_FAIRSEQ: list[tuple[str, str]] = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.(weight|bias)", r"feature_extractor.conv_layers.\1.0.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(weight|bias)", r"feature_extractor.conv_layers.\1.{ln}\2"),
    (r"feature_projection\.layer_norm\.(weight|bias)", r"layer_norm.\1"),
    (r"feature_projection\.projection\.(weight|bias)", r"post_extract_proj.\1"),
    (r"encoder\.pos_conv_embed\.conv\.(?:weight_g|parametrizations\.weight\.original0)", "encoder.pos_conv.0.weight_g"),
    (r"encoder\.pos_conv_embed\.conv\.(?:weight_v|parametrizations\.weight\.original1)", "encoder.pos_conv.0.weight_v"),
    (r"encoder\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.0.bias"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.attention\.(k|v|q|out)_proj\.(weight|bias)", r"encoder.layers.\1.self_attn.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.layer_norm\.(weight|bias)", r"encoder.layers.\1.self_attn_layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.(weight|bias)", r"encoder.layers.\1.fc1.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.output_dense\.(weight|bias)", r"encoder.layers.\1.fc2.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"masked_spec_embed", "mask_emb"),
]

# Prefixes that wrap the model in other saved layouts: fairseq fine-tuned (CTC) models, HF HubertFor* heads.
_WRAPPER_PREFIXES = ("w2v_encoder.w2v_model.", "hubert.")

# HuBERT's feature encoder: 7 convolutions, strides 5,2,2,2,2,2,2 (320 samples = 20 ms per frame at 16 kHz).
_HUBERT_STRIDES = (5, 2, 2, 2, 2, 2, 2)

# fairseq activation names -> transformers ACT2FN names (gelu_accurate is the tanh approximation).
_ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_accurate": "gelu_new", "tanh": "tanh", "linear": "linear"}


def fairseq_to_hf_key(name: str) -> str | None:
    """Return transformers' name of a fairseq HuBERT parameter, or None if it has none (e.g. ``final_proj``)."""
    for pattern, template in _FAIRSEQ_TO_HF:
        match = re.fullmatch(pattern, name)
        if match:
            return match.expand(template)
    return None


def hf_to_fairseq_key(name: str, feat_extract_norm: str = "group") -> str | None:
    """Return fairseq's name of a transformers HubertModel parameter (the inverse of :func:`fairseq_to_hf_key`)."""
    ln = "2.1." if feat_extract_norm == "layer" else "2."
    for pattern, template in _HF_TO_FAIRSEQ:
        match = re.fullmatch(pattern, name)
        if match:
            return match.expand(template.replace("{ln}", ln))
    return None


def parse_conv_feature_layers(text: str) -> list[tuple[int, int, int]]:
    """Parse fairseq's ``conv_feature_layers`` ("[(512,10,5)] + [(512,3,2)] * 4 + ...") without eval.

    Returns ``(channels, kernel, stride)`` per layer. Only int literals, lists,
    tuples, ``+`` and ``*`` are accepted.
    """

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.List | ast.Tuple):
            items = [value(item) for item in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = value(node.left), value(node.right)
            if isinstance(left, list) and isinstance(right, list):
                return left + right
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            left, right = value(node.left), value(node.right)
            if isinstance(left, list) and type(right) is int and 0 <= right <= 64:
                return left * right
        raise ValueError(f"unsupported expression in conv_feature_layers: {text!r}")

    layers = value(ast.parse(text, mode="eval").body)
    if not isinstance(layers, list) or not all(
        isinstance(layer, tuple) and len(layer) == 3 and all(type(v) is int for v in layer) for layer in layers
    ):
        raise ValueError(f"conv_feature_layers is not a list of (channels, kernel, stride): {text!r}")
    return layers


def _model_args(checkpoint: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """Return the model's training arguments: ``cfg.model`` (fairseq >= 0.10.2) or ``args`` (older)."""
    try:
        cfg = to_plain(checkpoint.get("cfg"))
        if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
            return cfg["model"]
        args = to_plain(checkpoint.get("args"))
    except ExpansionError as error:
        raise UserError(
            f"{path} is refused: its configuration is not what a model's is ({error}); the file is damaged or "
            "was made to exhaust memory. Use RVC's hubert_base.pt, a ContentVec .pt, or a Hugging Face model folder"
        ) from None
    return args if isinstance(args, dict) else {}


def _state_dict(checkpoint: Any, path: Path) -> Mapping[str, Any]:
    if isinstance(checkpoint, Mapping):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(checkpoint.get(key), Mapping):
                return checkpoint[key]
        if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            return checkpoint  # a bare state dict
    raise UserError(
        f"{path} is not a HuBERT/ContentVec checkpoint: expected a dict with the weights under 'model' "
        "(fairseq's layout) or a state dict; give RVC's hubert_base.pt, a ContentVec .pt, "
        "or a Hugging Face model folder"
    )


def to_hf_state_dict(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename a fairseq (or already transformers-named) HuBERT state dict to transformers' names.

    Returns the renamed tensors and the names that have no counterpart in
    ``HubertModel`` (``final_proj``, ``label_embs_concat``, heads), which are dropped.
    """
    renamed: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for raw_name, tensor in state.items():
        if not isinstance(raw_name, str) or not isinstance(tensor, torch.Tensor):
            continue
        name = raw_name
        for prefix in _WRAPPER_PREFIXES:
            name = name.removeprefix(prefix)
        target = fairseq_to_hf_key(name)
        if target is None and hf_to_fairseq_key(name) is not None:
            # already transformers-named; spell weight norm the way current torch does
            target = {
                "encoder.pos_conv_embed.conv.weight_g": _POS_G,
                "encoder.pos_conv_embed.conv.weight_v": _POS_V,
            }.get(name, name)
        if target is None:
            ignored.append(raw_name)
        else:
            renamed[target] = tensor
    return renamed, ignored


def _indices(state: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    found = sorted({int(m.group(1)) for name in state if (m := re.fullmatch(pattern, name))})
    if found != list(range(len(found))):
        raise ValueError(f"layer numbers are not 0..n-1: {found}")
    return found


def build_config(state: Mapping[str, torch.Tensor], args: Mapping[str, Any]) -> HubertConfig:
    """Build the ``HubertConfig`` of transformers-named weights ``state``.

    Sizes come from the tensors' shapes (they cannot disagree with the
    weights); what shapes do not show (conv strides, attention heads, pre- or
    post-layer-norm, activation) comes from fairseq's stored ``args``, else
    HuBERT base's values.
    """
    conv_ids = _indices(state, r"feature_extractor\.conv_layers\.(\d+)\.conv\.weight")
    layer_ids = _indices(state, r"encoder\.layers\.(\d+)\.attention\.q_proj\.weight")
    if not conv_ids or not layer_ids:
        raise ValueError("no convolution or transformer layers found")
    conv_weights = [state[f"feature_extractor.conv_layers.{i}.conv.weight"] for i in conv_ids]
    hidden = state["feature_projection.projection.weight"].shape[0]
    pos_v = state[_POS_V]  # (hidden, hidden / groups, kernel)

    strides: tuple[int, ...] | None = None
    if isinstance(args.get("conv_feature_layers"), str):
        strides = tuple(stride for _, _, stride in parse_conv_feature_layers(args["conv_feature_layers"]))
    if strides is None or len(strides) != len(conv_ids):
        if len(conv_ids) != len(_HUBERT_STRIDES):
            raise ValueError("the checkpoint stores no conv_feature_layers and its feature encoder is not HuBERT's")
        strides = _HUBERT_STRIDES
    heads = args.get("encoder_attention_heads")
    if type(heads) is not int or hidden % heads:
        heads = hidden // 64  # HuBERT's convention: base 768/12, large 1024/16, xlarge 1280/20
        log.warning("checkpoint stores no attention head count; assuming %d", heads)
    activation = _ACTIVATIONS.get(str(args.get("activation_fn", "gelu")), "gelu")

    return HubertConfig(
        hidden_size=hidden,
        num_hidden_layers=len(layer_ids),
        num_attention_heads=heads,
        intermediate_size=state["encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0],
        hidden_act=activation,
        conv_dim=tuple(int(w.shape[0]) for w in conv_weights),
        conv_kernel=tuple(int(w.shape[2]) for w in conv_weights),
        conv_stride=strides,
        conv_bias="feature_extractor.conv_layers.0.conv.bias" in state,
        feat_extract_norm="layer" if "feature_extractor.conv_layers.1.layer_norm.weight" in state else "group",
        feat_proj_layer_norm="feature_projection.layer_norm.weight" in state,
        num_conv_pos_embeddings=int(pos_v.shape[2]),
        num_conv_pos_embedding_groups=hidden // int(pos_v.shape[1]),
        do_stable_layer_norm=bool(args.get("layer_norm_first", False)),
        # inference only: no dropout anywhere
        hidden_dropout=0.0,
        activation_dropout=0.0,
        attention_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
    )


def _load_weights(model: HubertModel, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    if _POS_G not in expected:  # torch without parametrizations: old weight_g / weight_v names
        for new, old in ((_POS_G, "weight_g"), (_POS_V, "weight_v")):
            if new in state:
                state[f"encoder.pos_conv_embed.conv.{old}"] = state.pop(new)
    # masked_spec_embed only replaces masked frames in training; checkpoints may lack it.
    missing = [name for name in expected if name not in state and name != "masked_spec_embed"]
    unexpected = [name for name in state if name not in expected]
    if missing or unexpected:
        raise UserError(
            f"{path} does not match a HuBERT model built from its own settings: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}; it may be another architecture or a damaged file"
        )
    try:
        model.load_state_dict(state, strict=False)  # copy_ casts fp16 checkpoints to the model's dtype
    except RuntimeError as error:
        raise UserError(f"{path} has weights of unexpected shapes: {error}") from None


def load_fairseq_hubert(path: Path) -> HubertModel:
    """Load a fairseq-format HuBERT/ContentVec ``.pt`` as a transformers ``HubertModel`` in eval mode (CPU, fp32).

    The file is read with the restricted unpickler: fairseq is never imported and no
    object outside its allow-list is ever constructed. Raises UserError naming the file when it cannot
    be read, is refused as unsafe, or is not a HuBERT-like model.
    """
    path = Path(path)
    checkpoint = load_checkpoint(path)
    state, ignored = to_hf_state_dict(_state_dict(checkpoint, path))
    args = _model_args(checkpoint, path) if isinstance(checkpoint, Mapping) else {}
    try:
        config = build_config(state, args)
    except (KeyError, ValueError, IndexError, TypeError) as error:
        raise UserError(f"{path} does not look like a HuBERT/ContentVec checkpoint ({error})") from None
    model = HubertModel(config)
    _load_weights(model, state, path)
    if ignored:
        log.info("%s: ignored %d parameters HubertModel does not use (%s)", path, len(ignored), ", ".join(ignored[:4]))
    return model.eval()

"""Content encoders: tiny random HubertModels in Hugging Face and fairseq formats, and safe unpickling."""

from __future__ import annotations

import argparse
import enum
import logging
import os
import pickle
import sys
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.features.embedder import FRAMES_PER_SECOND, content_frames, load_embedder
from rvc.features.embedder_sources import EMBEDDERS
from rvc.features.fairseq_import import fairseq_to_hf_key, hf_to_fairseq_key, parse_conv_feature_layers
from tests.synth import harmonic_tone

SR = 16000


def _tiny_config(norm: str) -> HubertConfig:
    """A tiny HuBERT with the real conv kernels and strides (so 50 frames/s); "layer" = stable-layer-norm variant."""
    layer = norm == "layer"
    return HubertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        conv_bias=layer,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm=norm,
        do_stable_layer_norm=layer,
    )


def _save_tiny(folder: Path, norm: str, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    HubertModel(_tiny_config(norm)).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-hubert")
    return {norm: _save_tiny(root / norm, norm, seed=i) for i, norm in enumerate(("group", "layer"))}


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
    return harmonic_tone(seconds, SR, f0_start=120.0 + 30 * seed, f0_end=220.0, seed=seed)


def _reference(folder: Path, audio: np.ndarray) -> np.ndarray:
    """transformers' own forward: the last hidden state of one clip."""
    model = HubertModel.from_pretrained(folder).eval()
    with torch.inference_mode():
        return model(torch.from_numpy(audio)[None]).last_hidden_state[0].numpy()


def test_content_frames_follow_hubert_conv_stack() -> None:
    lengths = [0, 399, 400, 719, 720, 16000, 48000, 48000 + 319, 160000]
    # transformers' own formula for the same kernels/strides (the tiny config keeps HuBERT's conv stack)
    expected = HubertModel(_tiny_config("group"))._get_feat_extract_output_lengths(torch.tensor(lengths[2:]))
    assert [content_frames(n) for n in lengths] == [0, 0, *expected.tolist()]
    assert content_frames(SR) == 49 and content_frames(3 * SR) == 149
    assert abs(content_frames(60 * SR) - 60 * FRAMES_PER_SECOND) <= 1


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_hf_folder_matches_transformers_forward(tiny_models: dict[str, Path], norm: str) -> None:
    folder = tiny_models[norm]
    embedder = load_embedder(str(folder), AssetDir(folder.parent / "assets"))
    audio = _speech(1.3)
    features = embedder.embed(audio)
    assert features.dtype == np.float32
    assert features.shape == (content_frames(audio.size), _tiny_config(norm).hidden_size)
    np.testing.assert_allclose(features, _reference(folder, audio), atol=1e-5)
    assert embedder.name == norm and embedder.dtype == torch.float32 and embedder.device.type == "cpu"


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_embed_batch_equals_embed_per_clip(tiny_models: dict[str, Path], norm: str) -> None:
    embedder = load_embedder(str(tiny_models[norm]), AssetDir(tiny_models[norm].parent / "assets"))
    # three clips of exactly 1 s (one bucket) and two odd lengths (alone, or padded with a mask)
    clips = [_speech(seconds, seed) for seed, seconds in enumerate([1.0, 1.0, 0.61, 1.0, 0.4537])]
    batched = embedder.embed_batch(clips)
    assert len(batched) == len(clips)
    for clip, features in zip(clips, batched, strict=True):
        assert features.shape == (content_frames(clip.size), 32)
        np.testing.assert_allclose(features, embedder.embed(clip), atol=2e-5)
    assert embedder.embed_batch([]) == []


def test_group_norm_padding_would_change_features(tiny_models: dict[str, Path]) -> None:
    """Why group-norm models only batch equal lengths: zero padding shifts the first GroupNorm's statistics."""
    folder = tiny_models["group"]
    model = HubertModel.from_pretrained(folder).eval()
    audio = _speech(0.6)
    padded = np.concatenate([audio, np.zeros(SR // 2, np.float32)])
    frames = content_frames(audio.size)
    with torch.inference_mode():
        alone = model(torch.from_numpy(audio)[None]).last_hidden_state[0]
        in_batch = model(torch.from_numpy(padded)[None]).last_hidden_state[0, :frames]
    assert not torch.allclose(alone, in_batch, atol=1e-3)


def test_embed_rejects_unusable_audio(tiny_models: dict[str, Path]) -> None:
    embedder = load_embedder(str(tiny_models["group"]), AssetDir(tiny_models["group"].parent / "assets"))
    with pytest.raises(ValueError, match="too short"):
        embedder.embed(np.zeros(399, np.float32))
    with pytest.raises(ValueError, match="1-D"):
        embedder.embed(np.zeros((2, SR), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        embedder.embed(np.full(SR, np.nan, np.float32))
    with pytest.raises(ValueError, match="too short"):
        embedder.embed_batch([_speech(1.0), np.zeros(100, np.float32)])


def test_known_name_found_in_assets_without_network(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assets = AssetDir(tmp_path / "assets")
    folder = _save_tiny(assets.embedder_dir("contentvec"), "group", seed=0)
    embedder = load_embedder("contentvec", assets, allow_download=True)
    assert embedder.name == "contentvec" and embedder.source == folder
    audio = _speech(0.8)
    np.testing.assert_allclose(embedder.embed(audio), _reference(tiny_models["group"], audio), atol=1e-5)


def test_applio_layout_bin_with_final_proj_and_old_weight_norm_names(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    """Applio's pytorch_model.bin: legacy weight_g/weight_v names plus final_proj, loaded as a plain HubertModel."""
    source = tiny_models["group"]
    model = HubertModel.from_pretrained(source)
    legacy = {
        k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): v
        for k, v in model.state_dict().items()
    }
    legacy |= {"final_proj.weight": torch.randn(8, 32), "final_proj.bias": torch.randn(8)}
    folder = tmp_path / "applio-contentvec"
    folder.mkdir()
    (folder / "config.json").write_text((source / "config.json").read_text())
    torch.save(legacy, folder / "pytorch_model.bin")
    audio = _speech(0.7)
    features = load_embedder(str(folder), AssetDir(tmp_path / "assets")).embed(audio)
    np.testing.assert_allclose(features, _reference(source, audio), atol=1e-5)


def test_missing_weights_offline_names_repo_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assets = AssetDir(tmp_path / "assets")
    folder = assets.embedder_dir("contentvec")
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # a half-finished folder is still missing its weights
    for allow_download in (True, False):
        with pytest.raises(UserError) as caught:
            load_embedder("contentvec", assets, allow_download=allow_download)
        message = str(caught.value)
        assert "IAHispano/Applio" in message and "Resources/embedders/contentvec" in message
        assert str(folder) in message and "pytorch_model.bin" in message


def test_an_unreachable_hub_is_asked_again_and_each_wait_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from huggingface_hub import constants

    from rvc.pretrained import download
    from tests.fake_hub import closed_port_url

    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0.0)
    with caplog.at_level(logging.WARNING), pytest.raises(UserError) as caught:
        load_embedder("contentvec", AssetDir(tmp_path / "assets"))
    said = [record.getMessage().split(":")[0] for record in caplog.records]
    assert said == [f"retrying (attempt {n} of 4) in 0 s" for n in (2, 3, 4)]  # the extract job's log shows them
    assert "content encoder 'contentvec' is missing" in str(caught.value) and "ConnectError" in str(caught.value)


def test_unknown_name_or_bad_options_are_user_errors(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    assets = AssetDir(tmp_path / "assets")
    with pytest.raises(UserError, match="contentvec"):
        load_embedder("contentvek", assets)
    with pytest.raises(UserError, match="float32"):
        load_embedder(str(tiny_models["group"]), assets, device="cpu", dtype="float16")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=r"config\.json"):
        load_embedder(str(empty), assets)
    assert set(EMBEDDERS) == {
        "contentvec",
        "hubert_base",
        "chinese_hubert_base",
        "japanese_hubert_base",
        "korean_hubert_base",
    }


# --- fairseq checkpoints ---------------------------------------------------------------


def test_key_map_knows_fairseq_names_and_round_trips(tiny_models: dict[str, Path]) -> None:
    facts = {  # fairseq HubertModel names -> transformers names (convert_hubert_original_pytorch_checkpoint...)
        "feature_extractor.conv_layers.0.0.weight": "feature_extractor.conv_layers.0.conv.weight",
        "feature_extractor.conv_layers.0.2.weight": "feature_extractor.conv_layers.0.layer_norm.weight",
        "feature_extractor.conv_layers.3.2.1.bias": "feature_extractor.conv_layers.3.layer_norm.bias",
        "post_extract_proj.weight": "feature_projection.projection.weight",
        "layer_norm.bias": "feature_projection.layer_norm.bias",
        "encoder.pos_conv.0.weight_g": "encoder.pos_conv_embed.conv.parametrizations.weight.original0",
        "encoder.pos_conv.0.weight_v": "encoder.pos_conv_embed.conv.parametrizations.weight.original1",
        "encoder.layers.11.self_attn.out_proj.bias": "encoder.layers.11.attention.out_proj.bias",
        "encoder.layers.4.self_attn_layer_norm.weight": "encoder.layers.4.layer_norm.weight",
        "encoder.layers.4.fc1.weight": "encoder.layers.4.feed_forward.intermediate_dense.weight",
        "encoder.layers.4.fc2.bias": "encoder.layers.4.feed_forward.output_dense.bias",
        "encoder.layer_norm.weight": "encoder.layer_norm.weight",
        "mask_emb": "masked_spec_embed",
        "final_proj.weight": None,
        "label_embs_concat": None,
    }
    assert {name: fairseq_to_hf_key(name) for name in facts} == facts
    assert parse_conv_feature_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2") == (
        [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    )
    with pytest.raises(ValueError):  # parsed, never evaluated
        parse_conv_feature_layers("__import__('os').system('true')")
    for norm, folder in tiny_models.items():
        for name in HubertModel.from_pretrained(folder).state_dict():
            fairseq_name = hf_to_fairseq_key(name, norm)
            assert fairseq_name is not None and fairseq_to_hf_key(fairseq_name) == name


def _install_fake_module(monkeypatch: pytest.MonkeyPatch, dotted: str) -> types.ModuleType:
    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    return sys.modules[dotted]


def _fake_fairseq_objects(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Classes as fairseq 0.12 / omegaconf 2.0 pickle them, registered under their real module names."""

    class Dictionary:  # fairseq.data.dictionary.Dictionary, kept in task_state
        def __init__(self) -> None:
            self.symbols = ["<s>", "<pad>", "</s>", "<unk>", "0", "1"]
            self.count = [1] * 6
            self.indices = {s: i for i, s in enumerate(self.symbols)}

    class ChoiceEnum(str, enum.Enum):  # fairseq.dataclass.constants: EXTRACTOR_MODE_CHOICES
        DEFAULT = "default"
        LAYER_NORM = "layer_norm"

    class Metadata:
        def __init__(self) -> None:
            self.ref_type = typing.Any
            self.object_type = None
            self.optional = True
            self.key = None

    class AnyNode:
        def __init__(self, value: Any, parent: Any) -> None:
            self._metadata = Metadata()
            self._parent = parent
            self._val = value

    class DictConfig:
        def __init__(self, content: dict[str, Any]) -> None:
            self._metadata = Metadata()
            self._parent = None
            self._content = {}
            for key, value in content.items():
                if isinstance(value, DictConfig):
                    value._parent = self
                    self._content[key] = value
                else:
                    self._content[key] = AnyNode(value, self)

    for cls, module in (
        (Dictionary, "fairseq.data.dictionary"),
        (ChoiceEnum, "fairseq.dataclass.constants"),
        (Metadata, "omegaconf.base"),
        (AnyNode, "omegaconf.nodes"),
        (DictConfig, "omegaconf.dictconfig"),
    ):
        cls.__module__ = module
        cls.__qualname__ = cls.__name__
        setattr(_install_fake_module(monkeypatch, module), cls.__name__, cls)
    return {"Dictionary": Dictionary, "ChoiceEnum": ChoiceEnum, "DictConfig": DictConfig}


def _fairseq_model_args(config: HubertConfig, extractor_mode: Any) -> dict[str, Any]:
    # fairseq writes the conv stack as a Python expression; the tiny models keep HuBERT's kernels and strides
    assert list(zip(config.conv_kernel, config.conv_stride, strict=True)) == [(10, 5)] + [(3, 2)] * 4 + [(2, 2)] * 2
    c = config.conv_dim[0]
    return {
        "_name": "hubert",
        "label_rate": 50,
        "extractor_mode": extractor_mode,
        "encoder_layers": config.num_hidden_layers,
        "encoder_embed_dim": config.hidden_size,
        "encoder_ffn_embed_dim": config.intermediate_size,
        "encoder_attention_heads": config.num_attention_heads,
        "activation_fn": "gelu",
        "layer_norm_first": config.do_stable_layer_norm,
        "conv_feature_layers": f"[({c},10,5)] + [({c},3,2)] * 4 + [({c},2,2)] * 2",
        "conv_bias": config.conv_bias,
        "conv_pos": config.num_conv_pos_embeddings,
        "conv_pos_groups": config.num_conv_pos_embedding_groups,
        "final_dim": 8,
        "dropout": 0.1,
        "mask_prob": 0.8,
    }


def _write_fairseq_checkpoint(
    monkeypatch: pytest.MonkeyPatch, folder: Path, path: Path, layout: str, zip_format: bool
) -> None:
    """Save the HF model at ``folder`` as fairseq would: fairseq names, training args, task state."""
    model = HubertModel.from_pretrained(folder)
    norm = model.config.feat_extract_norm
    state = {hf_to_fairseq_key(name, norm): tensor.clone() for name, tensor in model.state_dict().items()}
    state |= {
        "final_proj.weight": torch.randn(8, 32),
        "final_proj.bias": torch.zeros(8),
        "label_embs_concat": torch.randn(6, 8),
    }
    fake = _fake_fairseq_objects(monkeypatch)
    mode = fake["ChoiceEnum"].LAYER_NORM if norm == "layer" else fake["ChoiceEnum"].DEFAULT
    model_args = _fairseq_model_args(model.config, mode)
    if layout == "args":  # fairseq < 0.10.2: an argparse.Namespace of every option
        checkpoint: dict[str, Any] = {
            "args": argparse.Namespace(arch="hubert", task="hubert_pretraining", **model_args)
        }
    else:  # newer fairseq: an omegaconf DictConfig, args None
        cfg = fake["DictConfig"](
            {
                "common": fake["DictConfig"]({"fp16": True, "seed": 1337}),
                "model": fake["DictConfig"](model_args),
                "task": fake["DictConfig"]({"_name": "hubert_pretraining", "sample_rate": 16000}),
            }
        )
        checkpoint = {"args": None, "cfg": cfg}
    checkpoint |= {
        "model": state,
        "optimizer_history": [
            {"criterion_name": "HubertCriterion", "optimizer_name": "FairseqAdam", "num_updates": 400000}
        ],
        "extra_state": {"epoch": 289, "best": np.float64(3.21), "previous_training_time": 1.5e6},
        "last_optimizer_state": None,
        "task_state": {"dictionaries": [fake["Dictionary"]()]},
    }
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)


@pytest.mark.parametrize(
    ("norm", "layout", "zip_format"),
    [("group", "args", True), ("group", "cfg", False), ("layer", "cfg", True)],
)
def test_fairseq_checkpoint_converts_to_the_same_model(
    tiny_models: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    norm: str,
    layout: str,
    zip_format: bool,
) -> None:
    path = tmp_path / "hubert_base.pt"
    with monkeypatch.context() as patch:  # the fake fairseq/omegaconf modules exist only while saving
        _write_fairseq_checkpoint(patch, tiny_models[norm], path, layout, zip_format)
    assert "fairseq" not in sys.modules and "omegaconf.dictconfig" not in sys.modules
    with pytest.raises(pickle.UnpicklingError):  # what torch's safe loader says about a real fairseq file
        torch.load(path, weights_only=True)

    embedder = load_embedder(str(path), AssetDir(tmp_path / "assets"))
    config = embedder.model.config
    assert config.num_attention_heads == 2  # not in the weights' shapes: read from args / cfg.model
    assert config.do_stable_layer_norm == (norm == "layer") and config.feat_extract_norm == norm
    original = HubertModel.from_pretrained(tiny_models[norm]).state_dict()
    converted = embedder.model.state_dict()
    assert converted.keys() == original.keys()
    assert all(torch.equal(converted[name], tensor) for name, tensor in original.items())
    audio = _speech(0.9)
    np.testing.assert_allclose(embedder.embed(audio), _reference(tiny_models[norm], audio), atol=1e-6)


def test_fairseq_file_dropped_into_assets_folder_loads_by_name(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assets = AssetDir(tmp_path / "assets")
    path = assets.embedder_dir("contentvec") / "hubert_base.pt"
    path.parent.mkdir(parents=True)
    with monkeypatch.context() as patch:
        _write_fairseq_checkpoint(patch, tiny_models["group"], path, "cfg", True)
    embedder = load_embedder("contentvec", assets)
    audio = _speech(0.5)
    assert embedder.source == path
    np.testing.assert_allclose(embedder.embed(audio), _reference(tiny_models["group"], audio), atol=1e-6)


class _Payload:
    """Runs ``call(*args)`` when unpickled, like a booby-trapped checkpoint."""

    def __init__(self, call: Any, *args: Any) -> None:
        self.call, self.args = call, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.call, self.args


@pytest.mark.parametrize(
    ("attack", "zip_format"),
    [("os.system", True), ("os.system", False), ("builtins.exec", True)],
)
def test_malicious_checkpoint_is_refused_without_running(tmp_path: Path, attack: str, zip_format: bool) -> None:
    pwned = tmp_path / "pwned"
    payload = (
        _Payload(os.system, f"touch {pwned}") if attack == "os.system" else _Payload(exec, f"open({str(pwned)!r}, 'w')")
    )
    path = tmp_path / "hubert_base.pt"
    torch.save({"model": {"w": torch.zeros(3)}, "args": payload}, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UserError) as caught:
        load_embedder(str(path), AssetDir(tmp_path / "assets"))
    assert str(path) in str(caught.value) and "malicious" in str(caught.value)
    assert not pwned.exists()


def test_garbage_pt_is_a_user_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UserError, match=str(path)):
        load_embedder(str(path), AssetDir(tmp_path / "assets"))

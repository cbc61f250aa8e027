"""Blending: two exported models into one (the weighted average, its parents named), two pretrains into a merge."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rvc.cli import main
from rvc.experiment import AssetDir
from rvc.export import export_model, read_exported
from rvc.models.config import ModelConfig
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.models.weights import read_state_dict
from rvc.pretrained.pairs import list_pretrain_pairs
from tests.fake_experiment import make_extracted_experiment
from tests.fake_hub import tiny_pretrain_bytes

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(path: Path, seed: int, sample_rate: int = 40000, embedder: str = "contentvec") -> Path:
    torch.manual_seed(seed)
    config = ModelConfig.tiny(sample_rate)
    state = SynthesizerTrnMs768NSFsid(config).state_dict()
    metadata = {"embedder": embedder, "f0_method": "rmvpe", "name": path.stem}
    return export_model(state, config, path, epoch=10 + seed, step=100, metadata=metadata)


def _cli(tmp_path: Path, *argv: str) -> int:
    return main(["--logs-dir", str(tmp_path / "logs"), "--assets-dir", str(tmp_path / "assets"), *argv])


def test_blend_is_the_weighted_average_and_names_both_parents(tmp_path: Path) -> None:
    a, b = _model(tmp_path / "alto.pth", 0), _model(tmp_path / "bass.pth", 1)
    assert _cli(tmp_path, "blend", str(a), str(b), "--ratio", "0.3", "--name", "mix") == 0

    out = tmp_path / "logs" / "mix" / "mix.pth"
    blend, first, second = read_exported(out), read_exported(a), read_exported(b)
    for key, tensor in blend.state_dict.items():
        expected = 0.3 * first.state_dict[key].float() + 0.7 * second.state_dict[key].float()
        torch.testing.assert_close(tensor.float(), expected, atol=2e-3, rtol=2e-3)  # stored in fp16
    parents = blend.metadata["blend"]
    assert parents["ratio"] == 0.3
    assert (parents["a"]["file"], parents["b"]["file"]) == ("alto.pth", "bass.pth")
    assert parents["a"]["model_hash"] == first.metadata["model_hash"]
    assert blend.metadata["model_name"] == "mix" and blend.metadata["embedder"] == "contentvec"
    assert blend.metadata["f0_method"] == "rmvpe" and blend.config == first.config

    # The name of an experiment with data of its own is refused: the blend would sit among its files.
    make_extracted_experiment(tmp_path / "logs", "voice", train_clips=1, validation_clips=0)
    assert _cli(tmp_path, "blend", str(a), str(b), "--name", "voice") == 2
    assert not (tmp_path / "logs" / "voice" / "voice.pth").exists()
    # The same name again is refused (it would replace the blend) unless asked.
    assert _cli(tmp_path, "blend", str(a), str(b), "--name", "mix") == 2
    assert _cli(tmp_path, "blend", str(a), str(b), "--ratio", "1", "--name", "mix", "--overwrite") == 0
    torch.testing.assert_close(read_exported(out).state_dict["emb_g.weight"], first.state_dict["emb_g.weight"])


@pytest.mark.parametrize(
    ("other", "said"),
    [
        ({"sample_rate": 48000}, "alto.pth is a 40k model and other.pth a 48k one"),
        ({"embedder": "japanese_hubert_base"}, "other.pth on japanese_hubert_base"),
    ],
)
def test_models_that_do_not_fit_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], other: dict, said: str
) -> None:
    a = _model(tmp_path / "alto.pth", 0)
    b = _model(tmp_path / "other.pth", 1, **other)
    assert _cli(tmp_path, "blend", str(a), str(b), "--out", str(tmp_path / "c.pth")) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: cannot blend alto.pth with other.pth") and said in error
    assert error.count("\n") == 1 and not (tmp_path / "c.pth").exists()


def test_a_ratio_outside_0_to_1_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _model(tmp_path / "alto.pth", 0)
    assert _cli(tmp_path, "blend", str(a), str(a), "--ratio", "1.5", "--out", str(tmp_path / "c.pth")) == 2
    assert "from 0 to 1" in capsys.readouterr().err


def _pair(folder: Path, seed: int, sample_rate: int = 40000) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    g, d = tiny_pretrain_bytes(sample_rate, seed=seed)
    paths = folder / f"G{seed}.pth", folder / f"D{seed}.pth"
    paths[0].write_bytes(g)
    paths[1].write_bytes(d)
    return paths


def test_two_pretrains_merge_into_a_custom_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (g_a, d_a), (g_b, d_b) = _pair(tmp_path / "a", 0), _pair(tmp_path / "b", 1)
    argv = ["blend", "--pretrain", str(g_a), str(d_a), str(g_b), str(d_b), "--ratio", "0.5", "--name", "merged"]
    assert _cli(tmp_path, *argv) == 0

    assets = AssetDir(tmp_path / "assets")
    [pair] = list_pretrain_pairs(assets)
    assert (pair.name, pair.sample_rate, pair.origin) == ("merged", 40000, "custom")
    saved = torch.load(pair.g, weights_only=True)
    assert set(saved) == {"model", "iteration", "optimizer", "learning_rate"}
    assert any(key.endswith(".weight_g") for key in saved["model"])  # RVC's spelling
    for merged, first, second in ((pair.g, g_a, g_b), (pair.d, d_a, d_b)):
        ours, x, y = read_state_dict(merged), read_state_dict(first), read_state_dict(second)
        for key, tensor in ours.items():
            torch.testing.assert_close(tensor, (x[key] + y[key]) / 2)

    # A 48k generator does not merge with a 40k one; a D given as a G is named.
    g_48k, _ = _pair(tmp_path / "c", 2, sample_rate=48000)
    argv = ["blend", "--pretrain", str(g_a), str(d_a), str(g_48k), str(d_b), "--name", "bad"]
    assert _cli(tmp_path, *argv) == 2
    assert "G0.pth (40k) with G2.pth (48k)" in capsys.readouterr().err
    assert _cli(tmp_path, "blend", "--pretrain", str(d_a), str(d_a), str(g_b), str(d_b), "--name", "bad") == 2
    assert "given as a G file, but it is not an RVC generator" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"f0": 0}, "a model trained without pitch guidance"),
        ({"version": "v1"}, "an RVC v1 model"),
    ],
)
def test_v1_and_nof0_models_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, said: str
) -> None:
    a = _model(tmp_path / "alto.pth", 0)
    other = tmp_path / "other.pth"
    torch.save(torch.load(a, weights_only=True) | change, other)
    assert _cli(tmp_path, "blend", str(a), str(other), "--out", str(tmp_path / "c.pth")) == 2
    [error] = capsys.readouterr().err.splitlines()
    assert error.startswith(f"error: {other}: {said}")

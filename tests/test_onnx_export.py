"""ONNX export: the CLI writes NAME.onnx, ONNX Runtime runs it on the CPU like the PyTorch generator, exactly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rvc.cli import main
from rvc.experiment import Experiment
from rvc.experiment.features import FeaturesReport
from rvc.experiment.names import generator_file
from rvc.export import build_generator, read_exported
from rvc.models.config import ModelConfig
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.models.weights import to_rvc_spelling
from rvc.onnx_export import INPUTS, OPSET, example_inputs, torch_reference

onnxruntime = pytest.importorskip("onnxruntime", reason="pip install onnx onnxruntime (requirements-dev.txt)")


pytestmark = pytest.mark.usefixtures("one_thread")


def _trained(logs: Path) -> Experiment:
    """An experiment with one generator checkpoint (a tiny model whose flows count), settings and features."""
    experiment = Experiment(logs, "voice")
    experiment.checkpoints.folder.mkdir(parents=True)
    torch.manual_seed(0)
    generator = SynthesizerTrnMs768NSFsid(ModelConfig.tiny())
    with torch.no_grad():
        for name, param in generator.named_parameters():
            if ".post." in name:  # the flows' output layers start at zero
                param.normal_(0, 0.1)
    state = {"model": to_rvc_spelling(generator.state_dict()), "iteration": 3, "optimizer": {}, "learning_rate": 1e-4}
    torch.save(state, experiment.checkpoints.folder / generator_file(30))
    experiment.config_json.write_text(json.dumps({"model": ModelConfig.tiny().to_dict(), "train": {"epochs": 3}}))
    FeaturesReport(f0_method="rmvpe", embedder="contentvec").save(experiment)
    return experiment


def _cli(logs: Path, *argv: str) -> int:
    return main(["--logs-dir", str(logs), "--assets-dir", str(logs.parent / "assets"), *argv])


def test_export_onnx_runs_on_onnx_runtime_like_the_pytorch_generator(tmp_path: Path) -> None:
    experiment = _trained(tmp_path / "logs")
    assert _cli(tmp_path / "logs", "export", "--experiment", "voice", "--onnx") == 0

    path = experiment.onnx_model
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [
        ("feats", "tensor(float)"),
        ("p_len", "tensor(int64)"),
        ("pitch", "tensor(int64)"),
        ("pitchf", "tensor(float)"),
        ("sid", "tensor(int64)"),
    ]
    # What w-okada's voice changer reads to set the model up.
    changer = json.loads(session.get_modelmeta().custom_metadata_map["metadata"])
    assert changer | {"application": None} == {
        "application": None,
        "version": "2.1",
        "modelType": "pyTorchRVCv2",
        "samplingRate": 40000,
        "f0": True,
        "embChannels": 768,
        "embedder": "hubert_base",
        "embOutputLayer": 12,
        "useFinalProj": False,
    }
    import onnx

    assert [entry.version for entry in onnx.load(str(path)).opset_import] == [OPSET]

    generator = build_generator(read_exported(experiment.exported_model()))
    for frames in (37, 160):  # the time axes are dynamic
        inputs = example_inputs(frames, seed=frames)
        audio, prior_noise, source_noise = session.run(None, {name: inputs[name] for name in INPUTS})
        assert audio.shape == (1, 1, frames * 400) and np.abs(audio).max() <= 1.0
        assert prior_noise.std() > 0.5  # noise was drawn, and the run used it
        expected = torch_reference(generator, inputs, {"prior_noise": prior_noise, "source_noise": source_noise})
        np.testing.assert_allclose(audio, expected, atol=1e-5, rtol=0)


def test_without_the_onnx_packages_export_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    experiment = _trained(tmp_path / "logs")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else find_spec(name, *a))

    assert _cli(tmp_path / "logs", "export", "--experiment", "voice", "--onnx") == 2

    error = capsys.readouterr().err
    assert error == (
        "error: exporting ONNX needs the optional packages onnx and onnxruntime (onnx is missing): "
        "pip install onnx onnxruntime\n"
    )
    assert not experiment.exported_model().exists()  # refused before any work

"""Exported models: RVC's exact format, Applio's keys, the safe reader, the export CLI."""

from __future__ import annotations

import datetime
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rvc.errors import UserError
from rvc.experiment import Experiment
from rvc.experiment.dataset import DatasetReport
from rvc.experiment.features import FeaturesReport
from rvc.export import (
    build_generator,
    export_experiment,
    export_model,
    export_weights,
    read_exported,
)
from rvc.models.config import ModelConfig
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.models.weights import PretrainMismatchError, to_rvc_spelling

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
METADATA = {
    "embedder": "contentvec",
    "f0_method": "rmvpe",
    "dataset_seconds": 612.3,
    "best_epoch": 2,
    "overtrain": {"best_epoch": 2, "epochs_since_best": 1, "stopped": False},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny_generator(seed: int = 0) -> SynthesizerTrnMs768NSFsid:
    torch.manual_seed(seed)
    model = SynthesizerTrnMs768NSFsid(ModelConfig.tiny())
    with torch.no_grad():
        # The flows' output layers start at zero; give them weights so the flow path counts.
        for name, param in model.named_parameters():
            if ".post." in name:
                param.normal_(0, 0.1)
    return model.eval()


def _infer(model: SynthesizerTrnMs768NSFsid, frames: int = 40) -> torch.Tensor:
    """Run infer() on a fixed input with fixed noise: Tensor[1 x 1 x frames*hop]."""
    gen = torch.Generator().manual_seed(3)
    phone = torch.randn(1, frames, 768, generator=gen)
    pitch = torch.randint(1, 256, (1, frames), generator=gen)
    f0 = 100 + 200 * torch.rand(1, frames, generator=gen)
    torch.manual_seed(11)  # the prior's sample and the NSF source's noise
    return model.infer(phone, torch.tensor([frames]), pitch, f0, torch.tensor([0]))[0]


def _rvc_keys_without_enc_q(model: SynthesizerTrnMs768NSFsid) -> list[str]:
    return [key for key in to_rvc_spelling(model.state_dict()) if not key.startswith("enc_q.")]


def _export_tiny(tmp_path: Path, model: SynthesizerTrnMs768NSFsid, name: str = "voice.pth") -> Path:
    return export_model(model.state_dict(), model.cfg, tmp_path / name, epoch=3, step=30, metadata=METADATA)


@functools.cache
def _meta_generator_40k() -> SynthesizerTrnMs768NSFsid:
    with torch.device("meta"):
        return SynthesizerTrnMs768NSFsid(ModelConfig.for_sample_rate(40000))


def test_tiny_export_is_rvcs_format(tmp_path: Path) -> None:
    model = _tiny_generator()
    path = _export_tiny(tmp_path, model)

    data = torch.load(path, map_location="cpu", weights_only=True)

    assert list(data["weight"]) == _rvc_keys_without_enc_q(model)
    assert {t.dtype for t in data["weight"].values()} == {torch.float16}
    assert data["config"] == model.cfg.to_rvc_config_list()
    assert (data["info"], data["sr"], data["f0"], data["version"]) == ("3epoch", "40k", 1, "v2")
    assert type(data["f0"]) is int  # RVC writes 1, and w-okada's changer tests f0 == 1
    assert list(data)[:6] == ["weight", "config", "info", "sr", "f0", "version"]
    assert not [p for p in tmp_path.iterdir() if p.name != "voice.pth"]  # no temporary file left


def test_export_carries_our_metadata_and_applios_names(tmp_path: Path) -> None:
    data = torch.load(_export_tiny(tmp_path, _tiny_generator()), weights_only=True)

    for key, value in METADATA.items():
        assert data[key] == value
    assert (data["epochs"], data["steps"]) == (3, 30)
    assert data["app"].startswith("RVC Studio ")
    created = datetime.datetime.fromisoformat(data["created"])
    now = datetime.datetime.now(datetime.timezone.utc)  # not datetime.UTC: that is Python 3.11+
    assert created.tzinfo is not None and abs(now - created).total_seconds() < 600
    # Applio's Model Information tab: its names, its formats.
    assert (data["epoch"], data["step"], data["model_name"], data["speakers_id"]) == (3, 30, "voice", 1)
    assert (data["embedder_model"], data["dataset_length"], data["vocoder"]) == ("contentvec", "00:10:12", "HiFi-GAN")
    datetime.datetime.strptime(data["creation_date"], "%Y-%m-%dT%H:%M:%S.%f")  # Applio's prettify_date format
    assert "best epoch 2" in data["overtrain_info"]
    assert len(data["model_hash"]) == 64


def test_export_refuses_metadata_that_would_need_unsafe_loading(tmp_path: Path) -> None:
    model = _tiny_generator()
    with pytest.raises(TypeError, match="source"):
        export_model(model.state_dict(), model.cfg, tmp_path / "x.pth", epoch=1, step=1, metadata={"source": tmp_path})
    with pytest.raises(ValueError, match="version"):
        export_model(model.state_dict(), model.cfg, tmp_path / "x.pth", epoch=1, step=1, metadata={"version": "v3"})
    assert not list(tmp_path.iterdir())


def test_checkpoint_spelling_and_folded_weights_export_the_same_file_layout(tmp_path: Path) -> None:
    model = _tiny_generator()
    live = export_weights(model.state_dict(), model.cfg)
    rvc_checkpoint = {"module." + k: v for k, v in to_rvc_spelling(model.state_dict()).items()}  # a DDP save
    from_checkpoint = export_weights(rvc_checkpoint, model.cfg)
    # A fresh model, not a deepcopy: removing a parametrization from a deepcopy also breaks the
    # original (PyTorch shares the injected Parametrized class between them).
    folded_model = _tiny_generator().remove_weight_norm()
    folded = export_weights(folded_model.state_dict(), model.cfg)

    assert list(from_checkpoint) == list(folded) == list(live)
    for key, tensor in live.items():
        assert torch.equal(from_checkpoint[key], tensor)
    # Folded weights are split back into magnitude and direction: the same weights, to fp16 rounding.
    out_live = _infer(build_generator(read_exported(_export_tiny(tmp_path, model, "live.pth"))))
    path = export_model(folded_model.state_dict(), model.cfg, tmp_path / "folded.pth", epoch=3, step=30, metadata={})
    torch.testing.assert_close(_infer(build_generator(read_exported(path))), out_live, rtol=0, atol=2e-4)


def test_reader_rebuilds_a_generator_that_converts_like_the_original(tmp_path: Path) -> None:
    model = _tiny_generator()
    exported = read_exported(_export_tiny(tmp_path, model))

    assert exported.config == model.cfg  # our files carry the full configuration
    assert (exported.sample_rate, exported.f0, exported.version) == (40000, 1, "v2")
    assert exported.metadata["info"] == "3epoch" and exported.metadata["embedder"] == "contentvec"
    expected = _infer(model)
    got = _infer(build_generator(exported))
    scale = expected.abs().max()
    assert (got - expected).abs().max() < 0.01 * scale  # fp16 weights
    other = _infer(_tiny_generator(seed=1))
    assert (other - expected).abs().max() > 0.1 * scale  # a different model is far off: the check can fail


def test_full_size_export_has_rvcs_40k_key_list() -> None:
    reference = []
    for line in (DATA / "v2_generator_40k.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split("\t")
            if not key.startswith("enc_q."):
                reference.append((key, tuple(int(d) for d in shape.split(","))))
    model = _meta_generator_40k()

    weights = export_weights(model.state_dict(), model.cfg)

    assert [(key, tuple(t.shape)) for key, t in weights.items()] == reference
    assert {t.dtype for t in weights.values()} == {torch.float16}


def test_export_refuses_weights_of_another_sample_rate() -> None:
    with torch.device("meta"):
        state_48k = SynthesizerTrnMs768NSFsid(ModelConfig.for_sample_rate(48000)).state_dict()
    with pytest.raises(PretrainMismatchError, match=r"dec\.ups\.0\.weight_v"):
        export_weights(state_48k, ModelConfig.for_sample_rate(40000))


# ---------------------------------------------------------------- other tools' files


@pytest.fixture(scope="module")
def rvc_40k_weights() -> dict[str, torch.Tensor]:
    """A full-size 40k weight dict as RVC's and Applio's exporters write it (zeros: only shapes matter)."""
    weights = export_weights(_meta_generator_40k().state_dict(), ModelConfig.for_sample_rate(40000))
    return {key: torch.zeros(t.shape, dtype=torch.float16) for key, t in weights.items()}


def test_reads_rvc_webui_and_applio_files(tmp_path: Path, rvc_40k_weights: dict[str, torch.Tensor]) -> None:
    config = ModelConfig.for_sample_rate(40000).to_rvc_config_list()
    rvc = {"weight": rvc_40k_weights, "config": config, "info": "200epoch", "sr": "40k", "f0": 1, "version": "v2"}
    applio = {
        "weight": rvc_40k_weights,
        "config": config,
        "epoch": 200,
        "step": 4000,
        "sr": 40000,
        "f0": True,
        "version": "v2",
        "creation_date": "2025-01-02T03:04:05.678901",
        "model_hash": "ab" * 32,
        "overtrain_info": "Smoothed loss_g 30.000 and loss_d 3.000",
        "dataset_length": "00:10:12",
        "model_name": "someone",
        "author": None,
        "embedder_model": "contentvec",
        "speakers_id": 1,
        "vocoder": "HiFi-GAN",
    }
    no_version = {k: v for k, v in rvc.items() if k != "version"}  # older exporters: the 768-d weights say v2
    for name, data in (("rvc.pth", rvc), ("applio.pth", applio), ("no-version.pth", no_version)):
        torch.save(data, tmp_path / name)

        model = read_exported(tmp_path / name)

        assert model.config == ModelConfig.for_sample_rate(40000)
        assert (model.sample_rate, model.f0, model.version) == (40000, 1, "v2")
        assert list(model.state_dict) == list(rvc_40k_weights)
    assert read_exported(tmp_path / "applio.pth").metadata["model_name"] == "someone"
    assert read_exported(tmp_path / "rvc.pth").metadata == {"info": "200epoch"}


class _RunsAShellCommand:
    """What a malicious model file pickles: unpickling it would run a command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _tiny_file(tmp_path: Path) -> dict:
    return torch.load(_export_tiny(tmp_path, _tiny_generator(), "base.pth"), weights_only=True)


def test_refuses_a_malicious_pickle_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = _tiny_file(tmp_path)
    data["info"] = _RunsAShellCommand(f"touch {marker}")
    torch.save(data, tmp_path / "evil.pth")

    with pytest.raises(UserError, match="refused") as error:
        read_exported(tmp_path / "evil.pth")

    assert str(tmp_path / "evil.pth") in str(error.value) and "system" in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "v1"}, "v1 model"),
        ({"version": None}, "v1 model"),  # RVC reads no version as v1; the 768-d weights say v2 ...
        ({"f0": 0}, "without pitch guidance"),
        ({"f0": False}, "without pitch guidance"),
        ({"config": [1025, 32, 8]}, "18-value"),
        ({"config": "40k"}, "18-value"),
        ({"version": "v3"}, "unknown model version"),
    ],
)
def test_refuses_v1_nof0_and_bad_configs(tmp_path: Path, change: dict, message: str) -> None:
    data = _tiny_file(tmp_path)
    data.update(change)
    if change == {"version": None}:
        data["weight"]["enc_p.emb_phone.weight"] = torch.zeros(16, 256, dtype=torch.float16)  # ... these say v1
    torch.save(data, tmp_path / "bad.pth")

    with pytest.raises(UserError, match=message) as error:
        read_exported(tmp_path / "bad.pth")

    assert str(tmp_path / "bad.pth") in str(error.value)


def test_refuses_a_config_list_that_does_not_fit_the_weights(tmp_path: Path) -> None:
    data = _tiny_file(tmp_path)
    data["config"][3] = 32  # hidden channels 16 -> 32: our full config no longer agrees, the list wins
    data["config"][9] = 1  # resblock as an int: still readable
    torch.save(data, tmp_path / "edited.pth")
    with pytest.raises(PretrainMismatchError, match="differ in shape") as error:
        read_exported(tmp_path / "edited.pth")
    assert str(tmp_path / "edited.pth") in str(error.value)

    data["config"][2] = "wide"
    torch.save(data, tmp_path / "garbled.pth")
    with pytest.raises(UserError, match=r"garbled\.pth.*'config'"):
        read_exported(tmp_path / "garbled.pth")


def test_refuses_checkpoints_and_non_models(tmp_path: Path) -> None:
    model = _tiny_generator()
    torch.save(
        {"model": model.state_dict(), "iteration": 3, "optimizer": {}, "learning_rate": 1e-4}, tmp_path / "G.pth"
    )
    (tmp_path / "junk.pth").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UserError, match="training checkpoint"):
        read_exported(tmp_path / "G.pth")
    with pytest.raises(UserError, match="not a readable PyTorch"):
        read_exported(tmp_path / "junk.pth")
    with pytest.raises(UserError, match=r"absent\.pth does not exist"):
        read_exported(tmp_path / "absent.pth")
    with pytest.raises(UserError, match="is a folder, not a file"):  # was 'no such file', of a folder that is there
        read_exported(tmp_path)


# ---------------------------------------------------------------- an experiment's checkpoints


def _trained_experiment(logs: Path, name: str) -> tuple[Experiment, SynthesizerTrnMs768NSFsid]:
    """Lay out checkpoints, config.json and reports as the trainer and the data stages will."""
    experiment = Experiment(logs, name)
    folder = experiment.root / "checkpoints"
    folder.mkdir(parents=True)
    models = {10: _tiny_generator(seed=5), 30: _tiny_generator(seed=0), "best": _tiny_generator(seed=7)}
    for step, model in models.items():
        state = {k: v for k, v in to_rvc_spelling(model.state_dict()).items()}
        epoch = 2 if step == "best" else step // 10
        checkpoint = {"model": state, "iteration": epoch, "optimizer": {"state": {}}, "learning_rate": 1e-4}
        torch.save(checkpoint, folder / f"G_{step}.pth")
    config = {"model": ModelConfig.tiny().to_dict(), "train": {"epochs": 3}}
    experiment.config_json.write_text(json.dumps(config))
    FeaturesReport(f0_method="rmvpe", embedder="contentvec").save(experiment)
    DatasetReport(sample_rate=40000, total_seconds=75.0).save(experiment)
    best = {"v": 1, "kind": "best", "time": 1.0, "epoch": 2, "metrics": {"val/mel": 20.1}}
    experiment.progress_jsonl.write_text(json.dumps(best) + "\n")
    return experiment, models[30]


def test_cli_exports_the_latest_checkpoint(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    experiment, latest = _trained_experiment(logs, "my-voice")

    result = subprocess.run(
        [sys.executable, "-m", "rvc", "--logs-dir", str(logs), "export", "--experiment", "my-voice"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )

    assert result.returncode == 0, result.stderr
    data = torch.load(experiment.root / "my-voice.pth", weights_only=True)
    assert (data["info"], data["step"], data["model_name"]) == ("3epoch", 30, "my-voice")
    assert (data["embedder"], data["f0_method"], data["dataset_seconds"], data["best_epoch"]) == (
        "contentvec",
        "rmvpe",
        75.0,
        2,
    )
    expected = export_weights(latest.state_dict(), latest.cfg)
    assert all(torch.equal(data["weight"][k], v) for k, v in expected.items())


def test_best_checkpoint_exports_to_name_best(tmp_path: Path) -> None:
    experiment, _ = _trained_experiment(tmp_path / "logs", "my-voice")

    path = export_experiment(experiment, checkpoint="best")

    assert path == experiment.root / "my-voice_best.pth"
    model = read_exported(path)
    assert (model.metadata["info"], model.metadata["step"]) == ("2epoch", 0)
    with pytest.raises(UserError, match=r"G_99\.pth"):
        export_experiment(experiment, checkpoint="G_99.pth")
    experiment.config_json.unlink()
    with pytest.raises(UserError, match="python -m rvc config"):
        export_experiment(experiment)


def test_a_damaged_features_report_leaves_the_encoder_the_settings_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A truncated features.json made the export's embedder None, silently: the model was then loaded with
    the tools' default encoder instead of the one it was trained on."""
    from dataclasses import replace

    from rvc.experiment.config_file import save_config
    from rvc.export_metadata import experiment_metadata
    from tests.fake_experiment import tiny_config

    experiment = Experiment(tmp_path / "logs", "voice")
    config = tiny_config()
    save_config(experiment, replace(config, data=replace(config.data, embedder="japanese_hubert_base", seconds=75.0)))
    experiment.extract_report.write_text('{"f0_method": "rmv')
    with caplog.at_level("WARNING"):
        metadata = experiment_metadata(experiment)
    assert metadata["embedder"] == "japanese_hubert_base" and metadata["f0_method"] == config.data.f0_method
    assert metadata["dataset_seconds"] == 75.0
    assert f"{experiment.extract_report} is damaged" in caplog.text and "from config.json" in caplog.text

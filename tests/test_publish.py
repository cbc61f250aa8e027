"""python -m rvc publish uploads the model, its index, its ONNX graph and a model card to a local Hub, over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rvc.cli import main
from rvc.experiment import Experiment
from rvc.export import export_model
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.train.events import BestEvent, DoneEvent, EpochEvent, JobEndEvent, ProgressEvent, StartEvent, StepEvent
from rvc.train.progress import append_event, parse_line
from tests.fake_experiment import make_extracted_experiment, write_tiny_config
from tests.fake_hub import FakeHub, closed_port_url, serve_hub, write_tiny_pair

REPO = "me/voice-rvc"
TOKEN = "hf_test_write_token"


def make_finished(logs: Path, assets: Path, name: str = "voice") -> Experiment:
    """A finished tiny run: clips and features, settings naming a pretrain, events, NAME.pth, .index and .onnx."""
    experiment = make_extracted_experiment(logs, name)
    g, d = write_tiny_pair(assets / "pretrained_v2")
    config = write_tiny_config(experiment, epochs=3, pretrained_g=str(g), pretrained_d=str(d))
    torch.manual_seed(0)
    metadata = {"embedder": "contentvec", "f0_method": "rmvpe", "dataset_seconds": 4.8, "best_epoch": 2}
    generator = SynthesizerTrnMs768NSFsid(config.model)
    export_model(generator.state_dict(), config.model, experiment.exported_model(), epoch=3, step=30, metadata=metadata)
    write_index(experiment.index_file, 768)
    experiment.onnx_model.write_bytes(b"an onnx graph")
    events = [StartEvent(config={"train": {"c_mel": 45.0}}, total_steps=30, epochs=3)]
    for epoch in (1, 2, 3):
        step = epoch * 10
        events.append(StepEvent(epoch=epoch, step=step, metrics={"loss/g/mel": 900.0 / epoch, "loss/d/total": 3.0}))
        events.append(EpochEvent(epoch=epoch, step=step, validation={"loss/val/mel": 22.0 - epoch}))
    events += [BestEvent(epoch=2, value=20.1, step=20), DoneEvent(epoch=3, step=30)]
    for event in events:
        append_event(experiment.progress_jsonl, event)
    return experiment


def write_index(path: Path, dim: int) -> None:
    """A FAISS index of a few random ``dim``-d vectors, as the index stage writes one."""
    import faiss
    import numpy as np

    index = faiss.IndexFlatL2(dim)
    index.add(np.random.default_rng(0).standard_normal((16, dim)).astype(np.float32))
    faiss.write_index(index, str(path))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("publish")
    make_finished(root / "logs", root / "assets")
    return root


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with serve_hub() as server:
        server.token = TOKEN
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield server


def _publish(root: Path, *flags: str) -> int:
    argv = ["--logs-dir", str(root / "logs"), "--assets-dir", str(root / "assets"), "publish"]
    return main([*argv, "--experiment", "voice", "--repo", REPO, *flags])


def test_publish_uploads_the_model_index_onnx_and_a_model_card(
    root: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    from huggingface_hub import ModelCard

    assert _publish(root, "--private", "--with-sample", "--json-progress") == 0

    assert hub.repos[REPO]["visibility"] == "private"
    [commit] = hub.commits
    experiment = Experiment(root / "logs", "voice")
    assert sorted(commit.files) == ["README.md", "loss.png", "sample.wav", "voice.index", "voice.onnx", "voice.pth"]
    assert commit.files["voice.pth"] == experiment.exported_model().read_bytes()
    assert commit.files["loss.png"].startswith(b"\x89PNG") and commit.files["sample.wav"].startswith(b"RIFF")
    card = ModelCard(commit.files["README.md"].decode())
    assert card.data.pipeline_tag == "audio-to-audio" and "rvc" in card.data.tags
    assert card.data.rvc == {
        "version": "v2",
        "f0": True,
        "sample_rate": 40000,
        "embedder": "contentvec",
        "f0_method": "rmvpe",
        "epochs": 3,
        "steps": 30,
        "best_epoch": 2,
        "best_held_out_mel": 20.1,
        "dataset_seconds": 4.8,
        "pretrain": "G_tiny_40k (40k, folder)",
        "files": ["voice.index", "voice.onnx", "voice.pth"],
    }
    assert "| Best epoch | 2, smoothed held-out mel loss 20.100 |" in card.text
    assert "| Dataset | 0:00:05 (0.1 min) |" in card.text and "(loss.png)" in card.text
    assert 'src="sample.wav"' in card.text

    events = [parse_line(line) for line in capsys.readouterr().out.splitlines()]
    bars = [e for e in events if isinstance(e, ProgressEvent)]
    assert bars[0].task == "publish" and (bars[-1].done, bars[-1].total) == (3, 3)
    [end] = [e for e in events if isinstance(e, JobEndEvent)]
    assert end.status == "done" and end.message.startswith(f"{hub.url}/{REPO}: published README.md")

    # Again, without the sample: the repository exists (409, accepted) and a second commit replaces the files.
    assert _publish(root) == 0
    assert len(hub.commits) == 2 and "sample.wav" not in hub.commits[1].files
    assert not (experiment.publish_dir / "sample.wav").exists()


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("wrong token", "refused the token (401 unauthorised): run `hf auth login`"),
        ("offline", "could not be reached (ConnectError"),
        ("no token", "no Hugging Face token found: run `hf auth login`"),
        ("bad repo", "invalid Hugging Face repository 'me/voice-rvc/x'"),
    ],
)
def test_publish_failures_are_one_line_that_says_what_to_do(
    root: Path,
    hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    said: str,
) -> None:
    import huggingface_hub

    flags: list[str] = []
    if case == "wrong token":
        monkeypatch.setenv("HF_TOKEN", "hf_someone_elses")
    elif case == "offline":
        monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    elif case == "no token":
        monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    else:
        flags = ["--repo", f"{REPO}/x"]
    assert _publish(root, *flags) == 2
    stderr = capsys.readouterr().err
    [error] = [line for line in stderr.splitlines() if "error:" in line]  # beside the progress bar's lines
    assert error.startswith("error: ") and said in error and "Traceback" not in stderr, stderr
    assert hub.commits == []


def test_publish_names_what_is_missing(root: Path, tmp_path: Path, hub: FakeHub, capsys) -> None:
    experiment = make_extracted_experiment(root / "logs", "unexported")
    argv = ["--logs-dir", str(root / "logs"), "publish", "--experiment", "unexported", "--repo", REPO]
    assert main(argv) == 2
    assert "unexported has no exported model (unexported.pth): export it first" in capsys.readouterr().err
    experiment.exported_model().write_bytes((root / "logs" / "voice" / "voice.pth").read_bytes())
    assert main(argv) == 2
    assert "has no index (unexported.index): build it first" in capsys.readouterr().err
    assert main([*argv, "--without-index"]) == 0
    assert sorted(hub.commits[0].files) == ["README.md", "unexported.pth"]  # no events: no plot, and no ONNX
    assert json.loads(json.dumps(hub.repos[REPO]))["visibility"] == "public"


def test_publish_refuses_an_index_that_would_not_load_beside_the_model(
    tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """NAME.index was uploaded unread: a file that is no index, or a v1 index (256-d) beside a v2 model,
    went up for others to download. Each is named before any upload, and the flag to leave it out works."""
    experiment = make_finished(tmp_path / "logs", tmp_path / "assets")
    for write, said in (
        (lambda path: path.write_bytes(b"an index"), "not a readable FAISS index"),
        (lambda path: write_index(path, 256), "the index holds 256-d vectors but"),
    ):
        write(experiment.index_file)
        assert _publish(tmp_path) == 2
        assert f"{experiment.index_file}: {said}" in capsys.readouterr().err
    assert hub.commits == []
    assert _publish(tmp_path, "--without-index") == 0
    assert "voice.index" not in hub.commits[0].files

"""Making pretrains: many speakers from folders, streamed hours of data resumed exactly, and the G/D pair written.

The stages run through the real CLI (``rvc.cli.main``, in this process: no interpreter start-up per
stage) on a tiny model; the streamed run is the real ``Trainer`` with a stop at a chosen step.
"""

from __future__ import annotations

import io
import json
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
import torch
from torch.nn.utils import parametrize

from rvc.cli import main as cli_main
from rvc.config.validate import validate
from rvc.data.options import PrepareOptions
from rvc.data.prepare import prepare
from rvc.data.speakers import SPEAKER_SLOTS
from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace
from rvc.experiment.config_file import load_config
from rvc.models.config import ModelConfig
from rvc.models.discriminator import MultiPeriodDiscriminatorV2
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.pretrained.make import PRETRAIN_KEYS
from rvc.train.batches import StreamedBatches
from rvc.train.data import load_training_set
from rvc.train.loop import Trainer
from rvc.train.progress import ProgressWriter, read_events
from tests.fake_experiment import make_extracted_experiment, save_tiny_hubert, tiny_config, write_tiny_config
from tests.synth import speech_like
from webui import config_pretrains
from webui.prepare_report import load_dataset_report, summary_markdown

CPU = torch.device("cpu")


@pytest.fixture
def own_signals() -> Iterator[None]:
    """The trainer run in this process installs its Ctrl-C / SIGTERM handlers: give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _cli(workspace: Workspace, *args: str) -> None:
    folders = ["--logs-dir", str(workspace.logs_dir), "--assets-dir", str(workspace.assets_dir)]
    assert cli_main([*folders, *args]) == 0, args


def _rvc_shaped(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with weight norm as RVC's classes apply it (``torch.nn.utils.weight_norm``: weight_g / weight_v)."""
    for module in list(model.modules()):  # a copy: each swap changes the module tree
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            # The new weight norm's load hook (it renames weight_g/weight_v to its own spelling) outlives it.
            module._load_state_dict_pre_hooks.clear()
            with warnings.catch_warnings():  # deprecated, and exactly what RVC's code calls
                warnings.simplefilter("ignore", FutureWarning)
                torch.nn.utils.weight_norm(module)
    return model


def test_speaker_folders_train_their_own_rows_and_the_state_exports_as_a_pretrain(
    tmp_path: Path, own_signals: None, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    voices = tmp_path / "voices"
    for speaker, seed in (("bob", 1), ("alice", 2)):
        (voices / speaker).mkdir(parents=True)
        sf.write(voices / speaker / "take.wav", speech_like(16000, phrases=(2.5, 2.0), seed=seed), 16000)
    sf.write(voices / "loose.wav", speech_like(16000, phrases=(1.0,), seed=3), 16000)
    embedder = save_tiny_hubert(tmp_path / "hubert", layers=1)

    prepare_args = ["--experiment", "many", "--input", str(voices), "--speakers-from", "folders", "--workers", "1"]
    _cli(workspace, "prepare", *prepare_args)
    _cli(workspace, "extract", "--experiment", "many", "--f0", "pm", "--embedder", str(embedder), "--workers", "1")
    experiment = workspace.experiment("many")
    report = json.loads(experiment.dataset_report.read_text())
    assert [(s["id"], s["name"]) for s in report["speakers"]] == [(0, "alice"), (1, "bob")]
    assert {Path(c["source"]).parent.name: c["speaker"] for c in report["clips"]} == {"alice": 0, "bob": 1}
    assert [Path(r["path"]).name for r in report["rejected"]] == ["loose.wav"]  # in no speaker's folder
    summary = summary_markdown(load_dataset_report(experiment))
    assert "speakers: **2**" in summary and "| 1 | bob |" in summary

    _cli(workspace, "config", "--experiment", "many", "--tiny-model", "--epochs", "1", "--batch-size", "2")
    assert load_config(experiment).data.speakers == 2
    _cli(workspace, "train", "--experiment", "many", "--device", "cpu")
    # Each speaker's clips trained its own row of the speaker table: Adam's moment is non-zero there only.
    step = experiment.checkpoints.complete_steps()[-1]
    g = torch.load(experiment.checkpoints.paths(step).generator, weights_only=True)
    tiny = ModelConfig.tiny(40000)
    names = [name for name, _ in SynthesizerTrnMs768NSFsid(tiny).named_parameters()]
    moment = g["optimizer"]["state"][names.index("emb_g.weight")]["exp_avg"]
    assert [bool(row.abs().sum() > 0) for row in moment] == [True, True] + [False] * (tiny.spk_embed_dim - 2)

    _cli(workspace, "export", "--experiment", "many", "--pretrain", "--name", "mine")
    folder = workspace.assets.pretrained_dir / "mine" / "40k"
    pair = {kind: torch.load(folder / f"{kind}.pth", weights_only=True) for kind in "GD"}
    assert all(tuple(payload) == PRETRAIN_KEYS for payload in pair.values())
    assert pair["G"]["optimizer"]["state"] == {} and pair["G"]["optimizer"]["param_groups"]
    assert torch.equal(pair["G"]["model"]["emb_g.weight"], g["model"]["emb_g.weight"])
    # RVC's classes (weight_g / weight_v) load the pair with strict=True.
    _rvc_shaped(SynthesizerTrnMs768NSFsid(tiny)).load_state_dict(pair["G"]["model"], strict=True)
    discriminator = MultiPeriodDiscriminatorV2(divisor=tiny.discriminator_divisor)
    _rvc_shaped(discriminator).load_state_dict(pair["D"]["model"], strict=True)
    # ... and so do our config (checked against the model) and the config tab's dropdowns, under "custom".
    g_path, d_path = str(folder / "G.pth"), str(folder / "D.pth")
    _cli(workspace, "config", "--experiment", "many", "--pretrained-g", g_path, "--pretrained-d", d_path)
    assert load_config(experiment).train.pretrained_g == g_path
    choices = config_pretrains.pretrain_choices(workspace, 40000, None, None)
    assert ("custom: mine (mine/40k/G.pth)", g_path) in choices.generators
    assert ("custom: mine (mine/40k/D.pth)", d_path) in choices.discriminators
    best = [
        "--logs-dir",
        str(workspace.logs_dir),
        "export",
        "--experiment",
        "many",
        "--pretrain",
        "--checkpoint",
        "best",
    ]
    capsys.readouterr()
    assert cli_main(best) != 0 and "the best state keeps only its generator" in capsys.readouterr().err


def test_more_speakers_than_the_model_has_rows_are_refused_by_prepare_config_and_the_trainer(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    for i in range(SPEAKER_SLOTS + 1):
        (voices / f"speaker{i:03d}").mkdir(parents=True)
        sf.write(voices / f"speaker{i:03d}" / "a.wav", speech_like(8000, phrases=(0.2,), seed=i), 8000)
    experiment = Experiment(tmp_path / "logs", "crowd")
    with pytest.raises(UserError, match=f"{SPEAKER_SLOTS + 1} speaker folders .* 109 speaker rows"):
        prepare(experiment, [voices], PrepareOptions(speakers_from="folders", workers=1), progress=False)
    assert not experiment.audio_16k_dir.exists()

    # a dataset prepared with more speakers than a model has rows: config's Validate and the trainer say so
    config = tiny_config()
    config.data.speakers = config.model.spk_embed_dim + 1
    assert any("5 speakers but the model's speaker table has 4 rows" in error for error in validate(config).errors)
    extracted = make_extracted_experiment(tmp_path / "extracted")
    report = json.loads(extracted.dataset_report.read_text())
    report["clips"][0]["speaker"] = 4
    extracted.dataset_report.write_text(json.dumps(report))
    with pytest.raises(UserError, match="has 5 speakers but the model's speaker table has 4 rows"):
        load_training_set(extracted, "train", 40000, 400, speaker_slots=4)


_LOAD = StreamedBatches.step  # what each step's window is filled by


def _streamed_run(
    experiment: Experiment, monkeypatch: pytest.MonkeyPatch, stop_after: int | None = None
) -> tuple[list[list[tuple[str, int]]], list[dict]]:
    """Train the experiment streamed; return what each step's window held (clip, speaker) and the step losses."""
    seen: list[list[tuple[str, int]]] = []

    def step(self: StreamedBatches, epoch_rows: torch.Tensor, index: int) -> torch.Tensor:
        window = _LOAD(self, epoch_rows, index)
        rows = epoch_rows[index].reshape(-1).tolist()
        seen.append([(self.clips.names[r], int(s)) for r, s in zip(rows, self.data.speakers.tolist(), strict=True)])
        return window

    monkeypatch.setattr(StreamedBatches, "step", step)
    config = load_config(experiment)
    progress = ProgressWriter(experiment.progress_jsonl, io.StringIO())
    stop = (lambda: len(seen) >= stop_after) if stop_after else (lambda: False)
    assert Trainer(experiment, config, CPU, progress, stop, log=lambda _: None).run() == 0
    events = [e.to_json() for e in read_events(experiment.progress_jsonl)[0] if e.kind == "step"]
    return seen, events


def test_a_streamed_run_stopped_and_resumed_sees_the_batches_of_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = {}
    for name in ("whole", "resumed"):
        experiment = make_extracted_experiment(tmp_path / name, train_clips=6, validation_clips=1)
        speakers = {f"clip-{i:04d}": i % 3 for i in range(7)}  # three speakers
        report = json.loads(experiment.dataset_report.read_text())
        for clip in report["clips"]:
            clip["speaker"] = speakers[clip["name"]]
        experiment.dataset_report.write_text(json.dumps(report))
        write_tiny_config(experiment, epochs=2, data_placement="stream", save_every=100)
        runs[name] = experiment

    whole, whole_steps = _streamed_run(runs["whole"], monkeypatch)
    first, _ = _streamed_run(runs["resumed"], monkeypatch, stop_after=4)  # mid-epoch 2 (3 steps an epoch)
    rest, resumed_steps = _streamed_run(runs["resumed"], monkeypatch)

    assert len(whole) == 6 and first + rest == whole
    assert all(speaker == speakers[clip] for batch in whole for clip, speaker in batch)
    assert {speaker for batch in whole for _, speaker in batch} == {0, 1, 2}
    # the same batches on the same weights and random slices: the very same losses, step for step
    assert [e["step"] for e in resumed_steps] == list(range(1, 7))
    assert [e["metrics"] for e in resumed_steps] == [e["metrics"] for e in whole_steps]

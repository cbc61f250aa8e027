"""Hostile and careless input (issue 15): every case ends in a message naming the file or option and what
to do, exit status 2, no traceback; nothing the user made is lost.

Most cases run the real CLI in this process (tests.hostile.cli: the same ``main``, without an
interpreter's start); a few run it as a subprocess, where the process boundary is the point.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rvc.config.train import TrainConfig
from rvc.experiment import Experiment
from tests.fake_experiment import make_extracted_experiment, save_tiny_hubert, write_tiny_config
from tests.hostile import cli, cli_process

# ------------------------------------------------------------------ a damaged config.json


@pytest.fixture
def configured(tmp_path: Path) -> Experiment:
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    write_tiny_config(experiment)
    return experiment


def _edited(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], bytes]:
    def edit(good: dict[str, Any]) -> bytes:
        data = copy.deepcopy(good)
        change(data)
        return json.dumps(data).encode()

    return edit


DAMAGED_CONFIGS: dict[str, tuple[Callable[[dict[str, Any]], bytes], str]] = {
    "random bytes": (lambda good: bytes(range(128, 256)) * 3, "cannot be read"),
    "truncated": (lambda good: json.dumps(good).encode()[:90], "not JSON"),
    "empty": (lambda good: b"", "not JSON"),
    "a JSON list": (lambda good: b"[1, 2]", "not a JSON object"),
    "no model section": (_edited(lambda d: d.pop("model")), "'model'"),
    "train is a list": (_edited(lambda d: d.update(train=[])), "'train'"),
    "epochs is text": (_edited(lambda d: d["train"].update(epochs="ten")), 'train.epochs: expected int (got "ten")'),
    "hop_length 0": (_edited(lambda d: d["model"].update(hop_length=0)), "hop_length"),
    "segment_size negative": (_edited(lambda d: d["model"].update(segment_size=-4)), "segment_size"),
    "upsample_rates text": (_edited(lambda d: d["model"].update(upsample_rates="10,10")), "model.upsample_rates"),
    "betas of three": (_edited(lambda d: d["train"].update(betas=[0.8, 0.9, 0.99])), "train.betas"),
    "unknown field": (_edited(lambda d: d["train"].update(epoch=3)), "train.epoch"),
    "version 7": (_edited(lambda d: d.update(version=7)), "version"),
    "data seconds NaN": (  # the trainer said "the dataset's nan minutes suggest at most 16"
        _edited(lambda d: d["data"].update(seconds=float("nan"))),
        "data.seconds: expected a finite number (got nan)",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_CONFIGS))
def test_a_damaged_config_is_refused_by_name_in_config_and_train(configured: Experiment, case: str) -> None:
    damage, words = DAMAGED_CONFIGS[case]
    path = configured.config_json
    path.write_bytes(damage(json.loads(path.read_text())))
    damaged = path.read_bytes()
    for stage in (["config"], ["train", "--device", "cpu"]):
        cli(configured.root.parent, *stage, "--experiment", configured.name).refused(str(path), words)
    assert path.read_bytes() == damaged  # refused, not overwritten: the user may want to repair it


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("batch_size", 0, "--batch-size 0 must be between 1 and 1024"),
        ("batch_size", 1_000_000_000, "--batch-size 1000000000 must be between 1 and 1024"),
        ("lr", float("inf"), "--lr inf is not a finite number: use one greater than 0 and at most 1"),
        ("c_mel", -45.0, "--c-mel -45 must be greater than 0"),
    ],
)
def test_a_config_value_out_of_range_stops_training_and_names_the_flag_that_fixes_it(
    configured: Experiment, field: str, value: float, words: str
) -> None:
    data = json.loads(configured.config_json.read_text())
    data["train"][field] = value
    configured.config_json.write_text(json.dumps(data))
    cli(configured.root.parent, "train", "--device", "cpu", "--experiment", configured.name).refused(
        str(configured.config_json), words, "python -m rvc config --experiment voice"
    )
    # ... and `config` is how it is corrected: it reads the file, applies the flag and saves.
    good = getattr(TrainConfig(), field)
    fixed = cli(
        configured.root.parent, "config", "--experiment", configured.name, f"--{field.replace('_', '-')}", str(good)
    )
    assert fixed.code == 0, fixed.stderr
    assert json.loads(configured.config_json.read_text())["train"][field] == good


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--lr", "inf", "--lr inf is not a finite number: use one greater than 0 and at most 1"),
        ("--lr", "nan", "--lr nan is not a finite number"),
        ("--lr", "0", "--lr 0 must be greater than 0 and at most 1"),
        ("--c-mel", "-45", "--c-mel -45 must be greater than 0"),
        ("--c-kl", "-1", "--c-kl -1 must be at least 0"),
        ("--lr-gamma", "0", "--lr-gamma 0 must be greater than 0 and at most 1"),
        ("--lr-gamma", "1.5", "--lr-gamma 1.5 must be greater than 0 and at most 1"),
        ("--log-every-steps", "0", "--log-every-steps 0 must be at least 1"),
        ("--log-every-seconds", "-1", "--log-every-seconds -1 must be at least 0"),
        ("--batch-size", "0", "--batch-size 0 must be between 1 and 1024"),
        ("--batch-size", "1000000000", "--batch-size 1000000000 must be between 1 and 1024"),
        ("--epochs", "0", "--epochs 0 must be between 1 and 100000"),
        ("--eps", "0", "--eps 0 must be greater than 0"),
        ("--betas", "0.8,1.5", "--betas 0.8,1.5: each must be at least 0 and below 1"),
        ("--grad-clip", "-1", "--grad-clip -1 must be greater than 0"),
        ("--cosine-period", "0", "--cosine-period 0 must be at least 1"),
        ("--overtrain-patience", "-1", "--overtrain-patience -1 must be at least 0"),
        ("--seed", "-1", "--seed -1 must be between 0 and 4294967295"),
        ("--lr-milestones", "0,10", "--lr-milestones [0, 10]: each must be an epoch, at least 1"),
        ("--grad-accum", "99999999999", "--grad-accum 99999999999 must be between 1 and 1024"),
    ],
)
def test_config_refuses_values_that_make_no_sense_with_the_allowed_range(
    configured: Experiment, flag: str, value: str, words: str
) -> None:
    before = configured.config_json.read_bytes()
    ran = cli(configured.root.parent, "config", "--experiment", configured.name, flag, value)
    ran.refused("not saved", words)
    assert "estimated GPU memory" not in ran.stdout  # no estimate from a value out of range
    assert configured.config_json.read_bytes() == before


def test_the_real_cli_refuses_a_damaged_config_without_a_traceback(configured: Experiment) -> None:
    configured.config_json.write_bytes(b"\x80\x81 not utf-8")
    cli_process(configured.root.parent, "train", "--device", "cpu", "--experiment", "voice").refused(
        str(configured.config_json), "delete it and save the settings again"
    )
    ran = cli_process(configured.root.parent, "config", "--experiment", "voice", "--lr", "inf")
    ran.refused(str(configured.config_json))


def test_debug_shows_the_traceback(configured: Experiment) -> None:
    configured.config_json.write_text("[]")
    ran = cli(configured.root.parent, "--debug", "config", "--experiment", "voice")
    assert ran.code == 2 and "Traceback" in ran.stderr and "not a JSON object" in ran.stderr


def test_the_shared_validation_names_the_ui_labels_too() -> None:
    from rvc.config.experiment import ExperimentConfig
    from rvc.config.validate import validate
    from webui.config_handlers import ui_text

    config = ExperimentConfig(train=TrainConfig(lr=float("inf"), batch_size=0))
    errors = [ui_text(error) for error in validate(config).errors]
    assert "'Learning rate' inf is not a finite number: use one greater than 0 and at most 1" in errors
    assert "'Batch size' 0 must be between 1 and 1024" in errors


# ------------------------------------------------------------------ damaged features and content encoders


def _random_bytes(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 4)


FEATURE_DAMAGE: dict[str, tuple[Callable[[Experiment], Path], str]] = {
    "f0 of random bytes": (
        lambda e: _damage(e.clip_f0("clip-0001"), _random_bytes),
        "is not a readable array",
    ),
    "coarse f0 of two dimensions": (
        lambda e: _damage(e.clip_f0_coarse("clip-0000"), lambda p: np.save(p, np.ones((3, 3), np.int64))),
        "not 1-d numbers",
    ),
    "coarse f0 out of range": (  # indexed the model's pitch table: a torch IndexError traceback
        lambda e: _damage(e.clip_f0_coarse("clip-0001"), lambda p: np.save(p, np.full(9, 300, np.int64))),
        "holds coarse pitch values outside 1..255 (from 300 to 300)",
    ),
    "content of the wrong width": (
        lambda e: _damage(e.clip_features("clip-0001"), lambda p: np.save(p, np.zeros((9, 256), np.float32))),
        "holds 256-d content features but the model takes 768-d",
    ),
    "all-NaN content": (
        lambda e: _damage(e.clip_features("clip-0000"), lambda p: np.save(p, np.full((9, 768), np.nan, np.float32))),
        "holds only NaN or infinite values",
    ),
    "a pickled object as content": (
        lambda e: _damage(e.clip_features("clip-0000"), lambda p: np.save(p, np.array([{"a": 1}]), allow_pickle=True)),
        "is not a readable array",
    ),
    "a clip that is not audio": (
        lambda e: _damage(e.clip_audio("clip-0001", 40000), _random_bytes),
        "is not readable audio",
    ),
}


def _damage(path: Path, write: Callable[[Path], None]) -> Path:
    write(path)
    return path


@pytest.mark.parametrize("case", sorted(FEATURE_DAMAGE))
def test_damaged_features_stop_training_naming_the_file(configured: Experiment, case: str) -> None:
    damage, words = FEATURE_DAMAGE[case]
    path = damage(configured)
    ran = cli(configured.root.parent, "train", "--device", "cpu", "--experiment", configured.name)
    ran.refused(str(path), words)
    assert path.exists()  # the user decides what to do with it


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Content-encoder folders: a 256-d HuBERT, a damaged safetensors, a pickle that safe loading refuses."""
    import shutil

    root = tmp_path_factory.mktemp("encoders")
    good = save_tiny_hubert(root / "narrow", hidden_size=256, layers=1)
    damaged = root / "damaged"
    shutil.copytree(good, damaged)
    weights = (damaged / "model.safetensors").read_bytes()
    (damaged / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    pickled = root / "pickled"
    shutil.copytree(good, pickled)
    (pickled / "model.safetensors").unlink()
    with open(pickled / "pytorch_model.bin", "wb") as file:
        pickle.dump(_RunsCode(), file, protocol=2)
    return {"narrow": good, "damaged": damaged, "pickled": pickled}


class _RunsCode:
    """A pickle that would run a command when loaded unsafely."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch /tmp/rvc-hostile-pickle-ran",))


@pytest.mark.parametrize(
    ("encoder", "words"),
    [
        ("narrow", ("--embedder:", "gives 256-d features, but RVC v2 trains on 768-d")),
        ("damaged", ("model.safetensors", "damaged or not a model")),
        ("pickled", ("pytorch_model.bin", "objects other than tensors")),
    ],
)
def test_extract_refuses_an_unusable_content_encoder_by_name(
    tmp_path: Path, encoders: dict[str, Path], encoder: str, words: tuple[str, ...]
) -> None:
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=1, validation_clips=0, seconds=0.3)
    _write_16k_clips(experiment)
    before = experiment.clip_features("clip-0000").read_bytes()
    ran = cli(
        experiment.root.parent, "extract", "--experiment", "voice", "--only", "content", "--device", "cpu",
        "--embedder", str(encoders[encoder]),
    )  # fmt: skip
    ran.refused(*words)
    assert experiment.clip_features("clip-0000").read_bytes() == before  # nothing written from it
    assert not Path("/tmp/rvc-hostile-pickle-ran").exists()


def _write_16k_clips(experiment: Experiment) -> None:
    import soundfile as sf

    from tests.synth import harmonic_tone

    for name in ("clip-0000",):
        path = experiment.clip_audio_16k(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, harmonic_tone(0.3, 16000, 150.0, 160.0), 16000, subtype="FLOAT")


# ------------------------------------------------------------------ the recordings folder


@pytest.fixture(scope="module")
def awkward_recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Recordings with a name that is not UTF-8, a linked sub-folder on another 'disk' and a link loop."""
    import soundfile as sf

    from tests.synth import speech_like

    root = tmp_path_factory.mktemp("recordings")
    recordings, elsewhere = root / "recordings", root / "other-disk"
    recordings.mkdir()
    elsewhere.mkdir()
    sf.write(recordings / "plain.wav", speech_like(16000, (1.5,), seed=1), 16000)
    sf.write(recordings / "latin-1.wav", speech_like(16000, (1.5,), seed=2), 16000)
    os.rename(
        recordings / "latin-1.wav", os.fsencode(recordings) + b"/caf\xe9 \xff.wav"
    )  # soundfile writes UTF-8 names
    sf.write(elsewhere / "linked.wav", speech_like(16000, (1.5,), seed=3), 16000)
    (recordings / "session 2").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "back").symlink_to(recordings, target_is_directory=True)  # a loop through the link
    return recordings


def test_prepare_reads_names_that_are_not_utf8_and_linked_folders(tmp_path: Path, awkward_recordings: Path) -> None:
    from rvc.experiment.dataset import DatasetReport

    logs = tmp_path / "logs"
    for _ in range(2):  # a name once in the folder must not break the next runs either
        ran = cli(logs, "prepare", "--experiment", "voice", "--input", str(awkward_recordings), "--no-progress")
        assert ran.code == 0, ran.stderr
    report = DatasetReport.load(Experiment(logs, "voice"))
    used = sorted(Path(row.path).name for row in report.sources if row.status == "ok")
    assert used == sorted(["plain.wav", os.fsdecode(b"caf\xe9 \xff.wav"), "linked.wav"])
    assert any("already read" in (row.reason or "") for row in report.rejected)  # the loop, reported


def test_prepare_refuses_the_experiments_own_folder_as_input(configured: Experiment) -> None:
    clips = sorted(configured.root.rglob("*"))
    for given in (configured.root, configured.clip_audio("clip-0000", 40000).parent):
        ran = cli(configured.root.parent, "prepare", "--experiment", "voice", "--input", str(given))
        ran.refused(f"--input {given}", "own folder")
    assert sorted(configured.root.rglob("*")) == clips


def test_prepare_refuses_the_logs_folder_and_another_experiments_clips_but_reads_its_downloads(
    configured: Experiment,
) -> None:
    """The logs folder, or a folder of another experiment, was read as recordings: its clips, sliced again."""
    import soundfile as sf

    from tests.synth import speech_like

    logs = configured.root.parent
    cli(logs, "prepare", "--experiment", "new", "--input", str(logs)).refused(
        f"--input {logs} is the experiments folder: its clips are not recordings"
    )
    clips = configured.clip_audio("clip-0000", 40000).parent
    cli(logs, "prepare", "--experiment", "new", "--input", str(clips)).refused(
        f"--input {clips} is inside experiment 'voice''s folder ({configured.root})"
    )
    assert not (logs / "new").exists()
    configured.downloads_dir.mkdir()  # another experiment's downloaded recordings are recordings
    sf.write(configured.downloads_dir / "take.wav", speech_like(16000, (1.5,), gap_seconds=0.3), 16000)
    ran = cli(logs, "prepare", "--experiment", "new", "--input", str(configured.downloads_dir), "--no-progress")
    assert ran.code == 0, ran.stderr


# ------------------------------------------------------------------ nothing of the user's lost


def test_infer_refuses_to_write_over_the_recording_it_converts(tmp_path: Path) -> None:
    import soundfile as sf

    recording = tmp_path / "take 1.wav"
    sf.write(recording, np.zeros(1600, np.float32), 16000)
    before = recording.read_bytes()
    for output in (recording, tmp_path, tmp_path / "." / "take 1.wav"):
        ran = cli(tmp_path / "logs", "infer", "--model", str(tmp_path / "absent.pth"), "--input", str(recording),
                  "--output", str(output))  # fmt: skip
        ran.refused("is the recording being converted", "take 1-converted.wav")
    assert recording.read_bytes() == before


def test_a_prepare_of_another_folder_says_it_replaces_the_dataset(tmp_path: Path) -> None:
    import soundfile as sf

    from tests.synth import speech_like

    first, second = tmp_path / "first", tmp_path / "second"
    for i, folder in enumerate((first, second)):
        folder.mkdir()
        sf.write(folder / f"take{i}.wav", speech_like(16000, (1.2,), seed=i), 16000)
    logs = tmp_path / "logs"
    assert cli(logs, "prepare", "--experiment", "voice", "--input", str(first), "--no-progress").code == 0
    ran = cli(logs, "prepare", "--experiment", "voice", "--input", str(second), "--no-progress")
    assert ran.code == 0, ran.stderr
    assert f"replacing the dataset: 1 source(s) prepared before from {first}" in ran.stdout + ran.stderr
    assert (first / "take0.wav").exists()


# ------------------------------------------------------------------ resource exhaustion


@pytest.mark.parametrize(("shape", "words"), [("wide", "more than 200,000 values"), ("deep", "deeper than 64 levels")])
def test_a_config_that_would_expand_without_bound_is_refused_naming_the_file(
    tmp_path: Path, shape: str, words: str
) -> None:
    import time

    import torch

    node: Any = "a"
    for _ in range(40 if shape == "wide" else 100):
        node = [node, node] if shape == "wide" else [node]  # wide: one list referenced twice, 2**40 once expanded
    path = tmp_path / "hubert_base.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "cfg": {"model": node}}, path)
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=1, validation_clips=0, seconds=0.3)
    _write_16k_clips(experiment)

    started = time.perf_counter()
    ran = cli(experiment.root.parent, "extract", "--experiment", "voice", "--only", "content", "--device", "cpu",
              "--embedder", str(path))  # fmt: skip
    ran.refused(str(path), words)
    assert time.perf_counter() - started < 30


# ------------------------------------------------------------------ leftovers, a full disk, memory


def _payload(step: int | None) -> dict[str, Any]:
    import torch

    payload: dict[str, Any] = {"model": {"w": torch.zeros(2)}, "iteration": 1, "optimizer": {}, "learning_rate": 1e-4}
    if step is not None:
        payload["step"] = step  # what this trainer writes; RVC's files have none
    return payload


def test_a_run_start_removes_what_an_interrupted_save_left(tmp_path: Path) -> None:
    from rvc.experiment.checkpoints import Checkpoints, complete_steps, save_torch, write_state

    folder = tmp_path / "checkpoints"
    write_state(folder, 10, _payload(10), _payload(10), {"step": 10})
    save_torch(_payload(20), folder / "G_20.pth")  # killed after G, before D and the state
    save_torch(_payload(20), folder / "D_20.pth")
    save_torch(_payload(5), folder / "G_5.pth")  # killed while pruning: the state went first
    (folder / ".G_30.pth.abc123.tmp").write_bytes(b"half")
    save_torch(_payload(None), folder / "G_2333333.pth")  # an RVC run's generator, put there by the user
    (folder / "G_7.pth").write_bytes(b"not a checkpoint")  # not ours to judge

    removed = Checkpoints(folder, "voice").remove_leftovers()

    assert sorted(p.name for p in removed) == [".G_30.pth.abc123.tmp", "D_20.pth", "G_20.pth", "G_5.pth"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "D_10.pth",
        "G_10.pth",
        "G_2333333.pth",
        "G_7.pth",
        "state_10.pt",
    ]
    assert complete_steps(folder) == [10]


def test_a_full_disk_during_a_save_is_a_message_and_leaves_no_half_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from rvc.errors import UserError
    from rvc.experiment import checkpoints

    folder = tmp_path / "checkpoints"
    checkpoints.write_state(folder, 10, _payload(10), _payload(10), {"step": 10})
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_write = checkpoints.atomic_write_bytes

    def full_disk(path: Path, data: bytes, fsync: bool = True) -> None:
        if path.name.startswith("D_"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data, fsync)

    monkeypatch.setattr(checkpoints, "atomic_write_bytes", full_disk)
    with pytest.raises(UserError) as error:
        checkpoints.write_state(folder, 20, _payload(20), _payload(20), {"step": 20})

    assert "No space left on device" in str(error.value) and "step 10 is intact" in str(error.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no G_20.pth, step 10 untouched


def test_a_state_with_a_foreign_g_or_d_file_is_refused_naming_what_to_delete(tmp_path: Path) -> None:
    """A generator copied over D_<step>.pth, or an exported model over G_<step>.pth, stopped train in a traceback."""
    import torch

    from rvc.errors import UserError
    from rvc.experiment import checkpoints
    from rvc.train.models import build_models
    from rvc.train.overtrain import OvertrainDetector
    from rvc.train.resume import TrainState, restore, state_extra
    from tests.fake_experiment import tiny_config

    config, cpu = tiny_config(), torch.device("cpu")
    models, detector = build_models(config, cpu), OvertrainDetector(patience=3)
    extra = state_extra(models, TrainState(step=10), detector, config, cpu)
    g = {"model": models.generator.state_dict(), "optimizer": models.optimizer_g.state_dict()}
    folder = tmp_path / "checkpoints"
    checkpoints.write_state(folder, 10, g, dict(g), extra)  # D_10.pth holds the generator
    loaded = checkpoints.load_state(folder, 10)
    with pytest.raises(UserError, match=r"D_10\.pth does not fit this model") as error:
        restore(loaded, models, detector, config, cpu, checkpoints.Checkpoints(folder, "voice"))
    assert "delete G_10.pth, D_10.pth and state_10.pt" in str(error.value)

    torch.save({"weight": {"w": torch.zeros(1)}, "config": []}, folder / "G_10.pth")  # an exported model
    with pytest.raises(UserError, match=r"G_10\.pth is not a training checkpoint"):
        checkpoints.load_state(folder, 10)


def test_a_state_saved_with_contiguous_moments_resumes_into_channels_last_weights(tmp_path: Path) -> None:
    """The saver's host copies (and other tools' files) hold contiguous moments; on a GPU the period
    discriminators' weights are channels-last, and fused AdamW refused the mix at the first resumed step."""
    import torch

    from rvc.experiment import checkpoints
    from rvc.train.models import build_models
    from rvc.train.overtrain import OvertrainDetector
    from rvc.train.resume import TrainState, restore, state_extra
    from tests.fake_experiment import tiny_config

    config, cpu = tiny_config(), torch.device("cpu")
    saved, detector = build_models(config, cpu, channels_last=True), OvertrainDetector(patience=3)
    for model, optimizer in ((saved.generator, saved.optimizer_g), (saved.discriminator, saved.optimizer_d)):
        for param in model.parameters():
            param.grad = torch.ones_like(param)
        optimizer.step()

    def contiguous(optimizer: torch.optim.Optimizer) -> dict:
        state = optimizer.state_dict()
        state["state"] = {k: {n: v.contiguous() for n, v in s.items()} for k, s in state["state"].items()}
        return state

    g = {"model": saved.generator.state_dict(), "optimizer": contiguous(saved.optimizer_g)}
    d = {"model": saved.discriminator.state_dict(), "optimizer": contiguous(saved.optimizer_d)}
    folder = tmp_path / "checkpoints"
    checkpoints.write_state(folder, 10, g, d, state_extra(saved, TrainState(step=10), detector, config, cpu))
    resumed = build_models(config, cpu, channels_last=True)
    where = checkpoints.Checkpoints(folder, "voice")
    restore(checkpoints.load_state(folder, 10), resumed, detector, config, cpu, where)

    turned = 0
    for optimizer in (resumed.optimizer_g, resumed.optimizer_d):
        for param, state in optimizer.state.items():
            for name in ("exp_avg", "exp_avg_sq"):
                assert state[name].stride() == param.stride(), name
                turned += not param.is_contiguous()
    assert turned > 0  # the test met channels-last weights
    original = dict(saved.discriminator.named_parameters())
    for name, param in resumed.discriminator.named_parameters():
        expected = saved.optimizer_d.state[original[name]]["exp_avg"]
        assert torch.equal(resumed.optimizer_d.state[param]["exp_avg"], expected), name


def test_running_out_of_host_memory_is_a_message(configured: Experiment, monkeypatch: pytest.MonkeyPatch) -> None:
    from rvc.train import loop

    def allocate(self: Any) -> int:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried")

    monkeypatch.setattr(loop.Trainer, "run", allocate)
    ran = cli(configured.root.parent, "train", "--device", "cpu", "--experiment", "voice")
    ran.refused("ran out of memory at batch size 2", "--batch-size 1")


# ------------------------------------------------------------------ the web app


def test_the_app_refuses_share_without_a_login_unless_told(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.hostile import ROOT

    command = [sys.executable, str(ROOT / "app.py"), "--share", "--logs-dir", str(tmp_path / "logs")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "--share-without-auth" in result.stderr and "--auth USER:PASS" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "logs").exists()  # refused before anything


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"share": True}, "'Public share link (gradio.live)': a public link"),
        ({"logs_dir": "/etc"}, "'Experiments folder (logs)': /etc is a system folder"),
        ({"logs_dir": "/usr/share/rvc"}, "'Experiments folder (logs)': /usr/share/rvc is a system folder"),
        ({"assets_dir": "/"}, "'Weights folder (assets)': / is a system folder"),
        ({"logs_dir": "{file}/logs"}, "is a file, not a folder"),
    ],
)
def test_the_settings_tab_refuses_a_public_link_without_login_and_system_folders(
    tmp_path: Path, change: dict[str, Any], words: str
) -> None:
    from rvc.experiment import Workspace
    from webui.context import AppContext
    from webui.settings import Settings
    from webui.tabs import settings as tab

    (tmp_path / "a-file").write_text("x")
    settings_file = tmp_path / "rvc_studio_settings.json"
    ctx = AppContext.create(Workspace(tmp_path / "logs", tmp_path / "assets"), Settings(), settings_file)
    values = [getattr(ctx.settings, name) for name in tab.FIELD_ORDER]
    for name, value in change.items():
        values[tab.FIELD_ORDER.index(name)] = (
            value.format(file=tmp_path / "a-file") if isinstance(value, str) else value
        )
    message, _, _ = tab.save(ctx, *values, False)
    assert "Not saved" in message and words in message, message
    assert not settings_file.exists()
    values[tab.FIELD_ORDER.index("auth")] = "me:secret"  # with a login, the link is fine
    if change == {"share": True}:
        assert "Saved" in tab.save(ctx, *values, False)[0]


# ------------------------------------------------------------------ while the experiment trains


def test_stages_that_change_an_experiment_refuse_while_it_trains(configured: Experiment, tmp_path: Path) -> None:
    import subprocess
    import sys

    # A stand-in trainer: holds the experiment's training lock as rvc.train does, with its pid in it.
    holder = (
        "import fcntl, os, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
        "f.truncate(0); f.write(str(os.getpid())); f.flush(); print('held', flush=True); time.sleep(120)"
    )
    trainer = subprocess.Popen(
        [sys.executable, "-c", holder, str(configured.train_lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert trainer.stdout is not None and trainer.stdout.readline().strip() == "held"
        before = {p: p.read_bytes() for p in configured.root.rglob("*") if p.is_file() and p != configured.train_lock}
        recordings = tmp_path / "other-recordings"
        recordings.mkdir()
        for args in (
            ["prepare", "--input", str(recordings)],
            ["extract", "--device", "cpu"],
            ["config", "--epochs", "5"],
            ["index"],
            ["export"],
        ):
            ran = cli(configured.root.parent, args[0], "--experiment", "voice", *args[1:])
            ran.refused("experiment 'voice' is training", f"pid {trainer.pid}", f"{args[0]} would change")
        after = {p: p.read_bytes() for p in configured.root.rglob("*") if p.is_file() and p != configured.train_lock}
        assert after == before
    finally:
        trainer.kill()
        trainer.communicate()

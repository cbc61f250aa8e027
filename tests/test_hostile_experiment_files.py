"""Hand-edited and damaged files inside an experiment folder, fourth sweep: what a user who opens the folder in
an editor, a crash, or a sync tool leaves there, run through the real CLI stages that read it (config, train,
index, export, publish). Each ends in one ``error:`` line naming the file and what to do, status 2, no traceback
(tests.hostile.Ran.refused), and the file is left as it was; or, where the edit is harmless, the stage works.

Cases that were already handled well are not repeated here: a damaged config.json (wrong types, missing
sections, unknown keys, numbers as text, null, NaN: test_hostile_input), damaged reports
(test_experiment_records), clip lists that are not UTF-8 or name ``../x`` in train and index, and feature files
that are not arrays, of the wrong width or all NaN (test_hostile_cli, test_hostile_input), garbled lines in
progress.jsonl (test_progress, test_run_state), and a state whose counters are not counters (test_hostile_files).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rvc.experiment import Experiment
from tests.fake_experiment import make_extracted_experiment, write_tiny_config
from tests.hostile import Ran, cli

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def configured(tmp_path: Path) -> Experiment:
    """Three training clips and one held-out clip, extracted and configured (a tiny model, one epoch)."""
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=3, validation_clips=1, seconds=0.3)
    write_tiny_config(experiment, epochs=1)
    return experiment


def _stage(experiment: Experiment, *stage: str) -> Ran:
    return cli(experiment.logs_dir, *stage, "--experiment", experiment.name)


def _train(experiment: Experiment) -> Ran:
    return _stage(experiment, "train", "--device", "cpu")


# ------------------------------------------------------------------ the clip lists


def test_a_clip_list_saved_by_a_windows_editor_is_read(configured: Experiment) -> None:
    """Notepad saves with a byte-order mark and CRLF line ends: the mark stuck to the first name, and config,
    train and index refused the list as damaged ("'\\ufeffclip-0000' is not a clip name")."""
    configured.train_clips.write_bytes("\ufeffclip-0000\r\nclip-0001\r\n\r\nclip-0002\r\n".encode())
    for stage in (["config"], ["index"]):
        ran = _stage(configured, *stage)
        assert ran.code == 0, ran.stderr
    ran = _train(configured)
    assert ran.code == 0, ran.stderr
    assert '"train_clips":3' in ran.stdout.replace(" ", "")


def test_a_clip_listed_twice_is_refused_naming_the_list(configured: Experiment) -> None:
    """A merge or a sync tool's copy left a name twice: it trained twice as often as every other clip (and went
    into the index twice), silently."""
    content = b"clip-0000\nclip-0001\nclip-0002\nclip-0001\n"
    configured.train_clips.write_bytes(content)
    for stage in (["train", "--device", "cpu"], ["index"]):
        _stage(configured, *stage).refused(
            f"{configured.train_clips} lists clip 'clip-0001' twice (clips 2 and 4)", "remove the repeated line"
        )
    assert configured.train_clips.read_bytes() == content


def test_a_held_out_clip_also_listed_for_training_is_refused(configured: Experiment) -> None:
    """A held-out clip copied into the training list trained on with status 0: its validation loss fell with the
    training loss, and the best epoch and the overtraining warning it decides meant nothing."""
    configured.train_clips.write_text("clip-0000\nclip-0001\nclip-0003\n")
    _train(configured).refused(
        str(configured.train_clips), str(configured.validation_clips), "both list clip-0003",
        "a held-out clip must not be trained on", "remove each from one of the two files",
    )  # fmt: skip
    assert not configured.checkpoints.folder.exists()


def test_a_listed_clip_the_experiment_does_not_hold_names_the_list(configured: Experiment) -> None:
    """A name typed into the list that prepare never made was refused as "clip clip-9999 is missing <four
    files>: run extract again", which cannot help: extract makes features of the dataset's clips only."""
    configured.validation_clips.write_text("clip-0003\nclip-9999\n")
    message = _train(configured).refused(
        f"{configured.validation_clips} names clip 'clip-9999'", "no audio or features of that name",
        "remove the line, or prepare the dataset again",
    )  # fmt: skip
    assert "run `python -m rvc extract" not in message


def test_config_refuses_a_clip_list_that_is_not_utf8_by_name(configured: Experiment) -> None:
    """`config` counted the lists' lines itself: bytes that are not UTF-8 ended it with "config failed
    unexpectedly (UnicodeDecodeError ...)", and a name such as ../x was counted as a clip."""
    before = configured.config_json.read_bytes()
    for content, words in ((b"\xff\xfe clip-0000\n", "cannot be read"), (b"clip-0000\n../x\n", "is not a clip name")):
        configured.train_clips.write_bytes(content)
        for flags in ([], ["--epochs", "3"]):
            _stage(configured, "config", *flags).refused(f"{configured.train_clips} is damaged", words)
    assert configured.config_json.read_bytes() == before


def test_config_says_a_hand_edited_model_shape_is_not_the_preset(configured: Experiment) -> None:
    """hidden_channels of 10**9 written into config.json passed `config` without a word, and training then
    ran out of memory with advice to lower the batch. Any shape other than the v2 preset of its rate is said:
    no pretrain fits it, and no other tool loads its exports."""
    import json

    from rvc.config.experiment import ExperimentConfig
    from rvc.config.validate import validate
    from rvc.models.config import ModelConfig

    saved = json.loads(configured.config_json.read_text())
    saved["model"] = ModelConfig.for_sample_rate(40000).to_dict() | {"hidden_channels": 10**9}
    configured.config_json.write_text(json.dumps(saved))
    ran = _stage(configured, "config")
    assert ran.code == 0, ran.stderr
    said = "suggestion: the model's shape is not RVC v2's 40k preset (hidden_channels 1000000000, not 192)"
    assert said in ran.stdout and "--sample-rate 40000` writes the preset back" in ran.stdout
    preset = validate(ExperimentConfig(ModelConfig.for_sample_rate(48000)))
    assert not any("model's shape" in suggestion for suggestion in preset.suggestions)


# ------------------------------------------------------------------ feature files that are not their clip's


def _save(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


@pytest.mark.parametrize("case", ["held-out f0 cut short", "content without rows", "f0 of another clip"])
def test_feature_files_that_do_not_cover_their_clip_stop_training_naming_them(
    configured: Experiment, case: str
) -> None:
    """Training took the shortest of a clip's files: an f0 file of 2 frames for the held-out clip ended the
    first validation with a torch traceback (a padding larger than the clip); an empty content file or a longer
    clip's f0 trained with status 0 on padding, or on another clip's pitch."""
    if case == "held-out f0 cut short":
        path = _save(configured.clip_f0("clip-0003"), np.full(2, 150.0, np.float32))
    elif case == "content without rows":
        path = _save(configured.clip_features("clip-0001"), np.zeros((0, 768), np.float32))
    else:
        path = _save(configured.clip_f0("clip-0002"), np.full(300, 150.0, np.float32))
    _train(configured).refused(
        f"{path} covers", f"but its clip {configured.clip_audio(path.stem, 40000)} lasts 0.30 s",
        "delete it and run `python -m rvc extract --experiment voice` again",
    )  # fmt: skip
    assert path.exists()


def test_a_clip_changed_after_extraction_is_named_itself(configured: Experiment) -> None:
    """A clip cut short after extraction trained with status 0 on its first 0.1 s and the rest of its features
    against silence: now the clip is named, with how to make it again."""
    audio = configured.clip_audio("clip-0001", 40000)
    wav, rate = sf.read(audio, dtype="float32")
    sf.write(audio, wav[:4000], rate, subtype="FLOAT")
    _train(configured).refused(
        f"{audio} lasts 0.10 s but its features cover", "changed after extraction", "delete it, then prepare"
    )


# ------------------------------------------------------------------ the checkpoints folder


@pytest.fixture
def trained(configured: Experiment) -> Experiment:
    ran = _train(configured)
    assert ran.code == 0, ran.stderr
    assert configured.checkpoints.complete_steps() == [2]
    return configured


@pytest.mark.parametrize("stray", ["a copy of G_2 as G_5", "junk bytes as G_9", "an empty G_9"])
def test_export_latest_passes_over_a_stray_generator_of_a_higher_step(trained: Experiment, stray: str) -> None:
    """`export` took the G_<step>.pth of the highest number for "latest": a copy of an older step was exported
    in the run's place (and stayed "latest" after every later save), and a damaged one ended every export with
    "not a readable PyTorch model file ... download or export it again"."""
    folder = trained.checkpoints.folder
    if stray == "a copy of G_2 as G_5":
        shutil.copy(folder / "G_2.pth", folder / "G_5.pth")
    else:
        (folder / "G_9.pth").write_bytes(b"" if "empty" in stray else b"not a checkpoint")
    assert _stage(trained, "config", "--epochs", "2").code == 0
    ran = _train(trained)  # resumes at step 2 and saves step 4
    assert ran.code == 0 and trained.checkpoints.complete_steps() == [2, 4], ran.stderr
    ran = _stage(trained, "export")
    assert ran.code == 0, ran.stderr
    assert "step 4" in ran.stdout
    assert torch.load(trained.exported_model(), weights_only=True)["step"] == 4
    assert len(list(folder.glob("G_[59].pth"))) == 1  # not ours to delete


def test_a_resume_names_the_empty_state_file(trained: Experiment) -> None:
    """A zero-byte state file (a crash, a sync tool) beside its G and D stopped the resume with "cannot read the
    training state at step 7 in <folder> ()": the empty parentheses said nothing of which file or why."""
    folder = trained.checkpoints.folder
    shutil.copy(folder / "G_2.pth", folder / "G_7.pth")
    shutil.copy(folder / "D_2.pth", folder / "D_7.pth")
    (folder / "state_7.pt").write_bytes(b"")
    _train(trained).refused(f"{folder / 'state_7.pt'} is damaged (it is empty)", "delete state_7.pt")
    assert (folder / "state_7.pt").exists()


@pytest.mark.parametrize(
    ("content", "words"), [(b"\xff\xfe clip-0003\n", "cannot be read"), (b"../x\n", "not a clip name")]
)
def test_publish_with_a_sample_refuses_a_damaged_clip_list_by_name(
    trained: Experiment, monkeypatch: pytest.MonkeyPatch, content: bytes, words: str
) -> None:
    """`publish --with-sample` read the lists itself to pick the clip it renders: bytes that are not UTF-8 or a
    name such as ../x ended it with "publish failed unexpectedly (UnicodeDecodeError / ValueError)"."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")  # the folder is laid out before anything is sent
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    trained.validation_clips.write_bytes(content)
    ran = _stage(trained, "publish", "--repo", "me/voice", "--with-sample", "--without-index")
    ran.refused(f"{trained.validation_clips} is damaged", words, "prepare the dataset again")

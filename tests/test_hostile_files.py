"""Hostile and careless files given to the command line, third sweep: models, checkpoints, pretrains and
f0 curves that are damaged or of the wrong kind. Each ends in one ``error:`` line naming the file and what
to do, status 2, no traceback (tests.hostile.Ran.refused), and nothing is written from it.

Files that were already refused well (truncated or foreign torch files, wrong config lists, garbage or
mis-sized indexes, empty, silent, NaN, 6-channel or 384 kHz recordings, a FIFO in a folder) are covered by
test_infer, test_export, test_blend, test_prepare and test_hostile_input; these are what still got through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from rvc.experiment import Experiment
from tests.fake_experiment import make_extracted_experiment, tiny_config, write_tiny_config
from tests.hostile import Ran, cli
from tests.test_blend import _model

pytestmark = pytest.mark.usefixtures("one_thread")


def _edited(source: Path, target: Path, change: Any) -> Path:
    """Save a copy of the torch file ``source`` as ``target`` after ``change(data)``."""
    data = torch.load(source, weights_only=True)
    change(data)
    torch.save(data, target)
    return target


def _poison(state: dict[str, torch.Tensor], value: float = float("nan")) -> None:
    for key, tensor in state.items():
        if tensor.is_floating_point():
            state[key] = torch.full_like(tensor, value)


def _recording(folder: Path) -> Path:
    import soundfile as sf

    from tests.synth import speech_like

    path = folder / "take.wav"
    sf.write(path, speech_like(16000, (0.5,), gap_seconds=0.1), 16000)
    return path


def _infer(folder: Path, model: Path, *flags: str) -> tuple[Ran, Path]:
    output = folder / "out.wav"
    ran = cli(folder / "logs", "infer", "--model", str(model), "--input", str(_recording(folder)),
              "--output", str(output), "--f0", "pm", "--device", "cpu", *flags)  # fmt: skip
    return ran, output


# ------------------------------------------------------------------ weights that are not numbers


def test_infer_and_blend_refuse_a_model_whose_weights_are_nan(tmp_path: Path) -> None:
    """A model of NaN weights (a run that diverged, an fp16 overflow) converted with status 0 into a clip of
    full-scale -1.0, and blended (status 0) into another NaN model."""
    good = _model(tmp_path / "good.pth", 0)
    damaged = _edited(_model(tmp_path / "src.pth", 1), tmp_path / "damaged.pth", lambda d: _poison(d["weight"]))
    ran, output = _infer(tmp_path, damaged)
    ran.refused(f"{damaged}: ", "hold NaN or infinite values", "export it again from an earlier checkpoint")
    assert not output.exists()
    mix = tmp_path / "mix.pth"
    cli(tmp_path / "logs", "blend", str(good), str(damaged), "--out", str(mix)).refused(str(damaged), "NaN")
    assert not mix.exists()


@pytest.fixture
def trained(tmp_path: Path) -> tuple[Experiment, dict[str, torch.Tensor]]:
    """A configured tiny experiment and a generator state dict that fits it."""
    from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid

    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    write_tiny_config(experiment)
    torch.manual_seed(0)
    return experiment, SynthesizerTrnMs768NSFsid(tiny_config().model).state_dict()


def _checkpoint(path: Path, state: dict[str, torch.Tensor], **keys: Any) -> Path:
    torch.save({"model": state, "iteration": 3, "optimizer": {}, "learning_rate": 1e-4} | keys, path)
    return path


def _export(experiment: Experiment, checkpoint: Path) -> tuple[Ran, Path]:
    out = checkpoint.parent / "exported.pth"
    ran = cli(
        experiment.logs_dir, "export", "--experiment", "voice", "--checkpoint", str(checkpoint), "--out", str(out)
    )
    return ran, out


@pytest.mark.parametrize("value", [float("nan"), 1e6])  # 1e6 is finite, but infinite in the export's fp16
def test_export_refuses_a_checkpoint_whose_weights_are_not_finite(
    trained: tuple[Experiment, dict[str, torch.Tensor]], tmp_path: Path, value: float
) -> None:
    """The export wrote a model of NaN (or, past fp16's 65504, infinite) weights and said it was done."""
    experiment, state = trained
    _poison(state, value)
    checkpoint = _checkpoint(tmp_path / "G_30.pth", state)
    ran, out = _export(experiment, checkpoint)
    ran.refused(f"{checkpoint}: ", "hold NaN or infinite values", "export an earlier checkpoint")
    assert not out.exists()


def test_config_refuses_a_pretrain_whose_weights_are_nan(tmp_path: Path) -> None:
    """config saved it, and every step of the run that followed was skipped as non-finite until the trainer
    gave up saying the run diverged: lower --lr or use fp32, neither of which helps."""
    from tests.fake_hub import tiny_pretrain_bytes

    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    write_tiny_config(experiment)
    before = experiment.config_json.read_bytes()
    g_bytes, d_bytes = tiny_pretrain_bytes(40000)
    (tmp_path / "G.pth").write_bytes(g_bytes)
    d = tmp_path / "D.pth"
    d.write_bytes(d_bytes)
    g = _edited(tmp_path / "G.pth", tmp_path / "G_nan.pth", lambda data: _poison(data["model"]))
    ran = cli(
        experiment.logs_dir, "config", "--experiment", "voice", "--pretrained-g", str(g), "--pretrained-d", str(d)
    )
    ran.refused(f"{g}: ", "hold NaN or infinite values")
    assert experiment.config_json.read_bytes() == before


# ------------------------------------------------------------------ a checkpoint of the wrong kind


@pytest.mark.parametrize("iteration", [None, "ten", float("nan")])
def test_export_reads_a_checkpoint_whose_iteration_is_not_a_number(
    trained: tuple[Experiment, dict[str, torch.Tensor]], tmp_path: Path, iteration: object
) -> None:
    """Another tool's G file with "iteration": None (or text) ended in 'export failed unexpectedly
    (TypeError: int() argument ...)', status 1; the number only labels the export."""
    from rvc.export import read_exported

    experiment, state = trained
    checkpoint = _checkpoint(tmp_path / "G_other.pth", state, iteration=iteration, step="x")
    ran, out = _export(experiment, checkpoint)
    assert ran.code == 0, ran.stderr
    assert read_exported(out).metadata["info"] == "0epoch"


def test_export_names_a_checkpoint_that_is_not_this_experiments_generator(
    trained: tuple[Experiment, dict[str, torch.Tensor]], tmp_path: Path
) -> None:
    """A D file (or a 48k G) given as --checkpoint was 'the generator state to export does not fit the 40k
    v2 generator', naming no file."""
    from rvc.models.discriminator import MultiPeriodDiscriminatorV2

    experiment, _ = trained
    discriminator = MultiPeriodDiscriminatorV2(divisor=tiny_config().model.discriminator_divisor).state_dict()
    checkpoint = _checkpoint(tmp_path / "D_30.pth", discriminator)
    ran, out = _export(experiment, checkpoint)
    ran.refused(f"{checkpoint} does not fit the 40k v2 generator", "this is a discriminator (D) file")
    assert not out.exists()


def test_a_resume_refuses_a_state_whose_counters_are_not_counters(tmp_path: Path) -> None:
    """A state file whose counters were edited: an epoch of text and a history that is no list ended in
    tracebacks, and a step of -3 trained on, writing G_-1.pth. Each is named, and the state is left as it was."""
    from rvc.experiment import checkpoints as checkpoint
    from rvc.experiment.checkpoints import save_torch

    logs = tmp_path / "logs"
    experiment = make_extracted_experiment(logs, train_clips=4)
    write_tiny_config(experiment, epochs=1, batch_size=2)
    assert cli(logs, "train", "--experiment", "voice", "--device", "cpu").code == 0
    folder = experiment.root / "checkpoints"
    state_file = checkpoint.state_paths(folder, 2).state
    saved = torch.load(state_file, weights_only=True)
    write_tiny_config(experiment, epochs=2, batch_size=2)
    for change, words in (
        ({"epoch": "one"}, "epoch is 'one', not a whole number of 0 or more"),
        ({"step": -3}, "step is -3, not a whole number of 0 or more"),
        ({"history": "x"}, "history is not a list of epochs"),
        ({"lr_scale": float("nan")}, "lr_scale is nan, not a positive number"),
        ({"speed": 1}, "no counter is called 'speed'"),
    ):
        save_torch(saved | {"train_state": saved["train_state"] | change}, state_file)
        ran = cli(logs, "train", "--experiment", "voice", "--device", "cpu")
        ran.refused(f"{state_file} is damaged (its counters: {words}): delete G_2.pth, D_2.pth and state_2.pt")
        assert checkpoint.complete_steps(folder) == [2]


# ------------------------------------------------------------------ what a model records


@pytest.mark.parametrize("recorded", ["/home/someone/encoders/my-hubert", "spin"])
def test_infer_names_the_model_whose_recorded_encoder_is_not_here(tmp_path: Path, recorded: str) -> None:
    """A model trained with a custom encoder on another machine (or naming an encoder we do not know) said
    "unknown content encoder '...': choose one of ...", naming neither the model nor the flag that helps."""
    model = _edited(_model(tmp_path / "src.pth", 0), tmp_path / "voice.pth", lambda d: d.update(embedder=recorded))
    ran, output = _infer(tmp_path, model)
    ran.refused(f"{model}: the model records its content encoder as {recorded!r}", "--embedder PATH")
    assert not output.exists()


# ------------------------------------------------------------------ an f0 curve


@pytest.mark.parametrize("hz", ["1e39", "1e300"])
def test_infer_refuses_an_f0_file_whose_pitch_is_no_pitch(tmp_path: Path, hz: str) -> None:
    """1e39 Hz (infinite in the generator's float32) or 1e300 Hz converted with status 0 into a clip of
    full-scale -1.0; now the line is named, before any model loads."""
    curve = tmp_path / "curve.txt"
    curve.write_text(f"0.0,220\n0.2,{hz}\n")
    ran, output = _infer(tmp_path, tmp_path / "absent.pth", "--f0-file", str(curve))
    ran.refused(f"{curve}, line 2: f0 {float(hz):g} Hz is no pitch (at most 20000 Hz)")
    assert not output.exists()


# ------------------------------------------------------------------ a path that is there but no file


def test_infer_says_what_is_wrong_with_an_index_or_recording_that_is_no_file(tmp_path: Path) -> None:
    """A folder given as --index (the experiment's, which holds NAME.index) said 'no such index file', and a
    link to nothing given as --input 'no such file or folder': both beside a name the user can see there."""
    model, folder, link = _model(tmp_path / "voice.pth", 0), tmp_path / "experiment", tmp_path / "take.wav"
    folder.mkdir()
    ran, output = _infer(tmp_path, model, "--index", str(folder))
    ran.refused(f"{folder} is a folder, not a file: give the index file (.index) built for the model")
    link.unlink()
    link.symlink_to(tmp_path / "moved.wav")
    ran = cli(tmp_path / "logs", "infer", "--model", str(model), "--input", str(link), "--output", str(output))
    ran.refused(f"--input {link} is a link to nothing (broken, or a loop): give a recording, or a folder of them")
    assert not output.exists()

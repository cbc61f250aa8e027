"""Hostile and careless command lines, second sweep: paths of the wrong kind, damaged lists, values past a
type's range. Each ends in one ``error:`` line naming the path or option and what to do, status 2, no
traceback (tests.hostile.Ran.refused), and nothing the user had is changed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_experiment import make_extracted_experiment
from tests.hostile import cli
from tests.test_blend import _model

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------ a file where a folder goes, and the reverse


def _recordings(root: Path) -> Path:
    import soundfile as sf

    from tests.synth import speech_like

    folder = root / "recordings"
    folder.mkdir()
    sf.write(folder / "take.wav", speech_like(16000, (1.0,), gap_seconds=0.3), 16000)
    return folder


def test_prepare_names_a_file_that_stands_where_the_logs_or_experiment_folder_goes(tmp_path: Path) -> None:
    recordings = _recordings(tmp_path)
    logs_file = tmp_path / "logs-file"
    logs_file.write_text("mine")
    cli(logs_file, "prepare", "--experiment", "voice", "--input", str(recordings), "--no-progress").refused(
        f"{logs_file} is a file, not a folder", "move that file away or choose another place"
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "voice").write_text("mine too")
    cli(logs, "prepare", "--experiment", "voice", "--input", str(recordings), "--no-progress").refused(
        f"cannot make the folder {logs / 'voice'}: a file has that name"
    )
    assert logs_file.read_text() == "mine" and (logs / "voice").read_text() == "mine too"


def test_prepare_refuses_a_url_that_is_not_a_web_address(tmp_path: Path) -> None:
    cli(tmp_path / "logs", "prepare", "--experiment", "voice", "--url", "recordings/take.wav").refused(
        "--url: 'recordings/take.wav' is not a link: give a web address beginning with https://"
    )
    assert not (tmp_path / "logs").exists()


def test_index_out_of_the_wrong_kind_is_refused_by_name(tmp_path: Path) -> None:
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    (folder / "kept.txt").write_text("mine")
    cli(experiment.logs_dir, "index", "--experiment", "voice", "--out", str(folder)).refused(
        f"cannot write {folder}: it is a folder; give the path of a file to write"
    )
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    cli(experiment.logs_dir, "index", "--experiment", "voice", "--out", str(a_file / "voice.index")).refused(
        f"cannot make the folder {a_file}: a file has that name"
    )
    assert (folder / "kept.txt").read_text() == "mine" and a_file.read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_index_and_export_out_naming_a_recording_leave_it_alone(tmp_path: Path) -> None:
    """An --out that names an existing file of another kind (here a recording) is refused, not replaced."""
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    recording = _recordings(tmp_path) / "take.wav"
    before = recording.read_bytes()
    cli(experiment.logs_dir, "index", "--experiment", "voice", "--out", str(recording)).refused(
        f"{recording} exists and is not an index (.index)"
    )
    cli(experiment.logs_dir, "export", "--experiment", "voice", "--out", str(recording)).refused(
        f"{recording} exists and is not a model (.pth)"
    )
    assert recording.read_bytes() == before


def test_blend_out_below_a_file_and_an_assets_dir_that_is_a_file_are_refused(tmp_path: Path) -> None:
    from tests.fake_hub import tiny_pretrain_bytes

    a, b = _model(tmp_path / "m0.pth", 0), _model(tmp_path / "m1.pth", 1)
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    cli(tmp_path / "logs", "blend", str(a), str(b), "--out", str(a_file / "sub" / "mix.pth")).refused(
        f"cannot make the folder {a_file / 'sub'}: {a_file} is a file, not a folder"
    )

    pairs = []
    for seed in (0, 1):
        g, d = tiny_pretrain_bytes(40000, seed=seed)
        (tmp_path / f"G{seed}.pth").write_bytes(g)
        (tmp_path / f"D{seed}.pth").write_bytes(d)
        pairs += [str(tmp_path / f"G{seed}.pth"), str(tmp_path / f"D{seed}.pth")]
    ran = cli(tmp_path / "logs", "blend", "--pretrain", *pairs, "--name", "merge", assets=a_file)
    ran.refused(
        f"cannot make the folder {a_file / 'pretrained_v2' / 'merge' / '40k'}: {a_file} is a file, not a folder"
    )
    assert a_file.read_text() == "mine"


def test_a_blend_of_a_model_with_itself_is_refused_as_the_ui_refuses_it(tmp_path: Path) -> None:
    a = _model(tmp_path / "m0.pth", 0)
    same = tmp_path / "sub" / ".." / "m0.pth"
    cli(tmp_path / "logs", "blend", str(a), str(same), "--out", str(tmp_path / "mix.pth")).refused(
        f"A and B are the same file ({a})", "blend two different models"
    )
    assert not (tmp_path / "mix.pth").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        # -1 was read as 0 retries without a word.
        (["pretrained", "download", "rmvpe", "--retries", "-1"], "expected 0 or more retries, got -1"),
        # banana was refused in words naming `python -m rvc extract`, a command the user did not type.
        (["run", "--experiment", "voice", "--input", "x", "--f0", "banana"], "argument --f0: invalid choice: 'banana'"),
        # 10**9 workers: as many processes as files (prepare) or clips (extract), each loading its libraries.
        (["prepare", "--experiment", "voice", "--input", "x", "--workers", "1000000000"], "between 0 and 256"),
        (["extract", "--experiment", "voice", "--workers", "300"], "--workers 300 must be between 0 and 256"),
    ],
)
def test_a_flag_value_that_cannot_work_is_refused_by_the_command_typed(
    tmp_path: Path, args: list[str], said: str
) -> None:
    cli(tmp_path / "logs", *args).refused(said)
    assert not (tmp_path / "logs").exists()


# ------------------------------------------------------------------ a damaged clip list


@pytest.mark.parametrize(
    ("listing", "content", "words"),
    [
        ("train_clips", b"\xff\xfe clip-0000\n", "cannot be read: 'utf-8' codec can't decode"),
        ("validation_clips", b"clip-0001\n../../x\n", "clip 2, '../../x', is not a clip name"),
    ],
)
def test_a_damaged_clip_list_stops_train_and_index_naming_it(
    tmp_path: Path, listing: str, content: bytes, words: str
) -> None:
    from tests.fake_experiment import write_tiny_config

    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=1, validation_clips=1, seconds=0.3)
    write_tiny_config(experiment)
    path: Path = getattr(experiment, listing)
    path.write_bytes(content)
    stages = [["train", "--device", "cpu"]] + ([["index"]] if listing == "train_clips" else [])
    for stage in stages:
        cli(experiment.logs_dir, *stage, "--experiment", "voice").refused(
            f"{path} is damaged", words, "prepare the dataset again"
        )
    assert path.read_bytes() == content


# ------------------------------------------------------------------ values past what the code can hold


def test_a_model_rate_that_is_not_whole_kilohertz_is_refused_naming_the_config(tmp_path: Path) -> None:
    import json

    from tests.fake_experiment import write_tiny_config

    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=1, validation_clips=0, seconds=0.3)
    write_tiny_config(experiment)
    data = json.loads(experiment.config_json.read_text())
    data["model"]["sample_rate"] = 12345
    experiment.config_json.write_text(json.dumps(data))
    damaged = experiment.config_json.read_bytes()
    for stage in (["train", "--device", "cpu"], ["config"]):
        cli(experiment.logs_dir, *stage, "--experiment", "voice").refused(
            str(experiment.config_json), "sample_rate must be a whole number of kHz, such as 40000 (got 12345)"
        )
    assert experiment.config_json.read_bytes() == damaged


@pytest.mark.parametrize("seed", ["99999999999999999999999", "-1"])
def test_infer_refuses_a_seed_out_of_range_before_loading_anything(tmp_path: Path, seed: str) -> None:
    import soundfile as sf

    recording = tmp_path / "take.wav"
    sf.write(recording, [0.0] * 1600, 16000)
    ran = cli(tmp_path / "logs", "infer", "--model", str(tmp_path / "absent.pth"), "--input", str(recording),
              "--output", str(tmp_path / "out.wav"), "--seed", seed)  # fmt: skip
    ran.refused(f"--seed {seed} must be between 0 and 4294967295")
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        # 1e308 overflowed in every worker (a traceback a recording); a clip over a minute is refused.
        ("--chunk", "1e308", "--chunk 1e+308 must be at most 60"),
        # banana: prepare read, sliced and wrote every clip (denoising off: nothing asked the device).
        ("--device", "banana", "--device 'banana' is not a device: use auto, cpu, cuda or cuda:N"),
    ],
)
def test_prepare_refuses_a_value_that_cannot_work_before_any_work(
    tmp_path: Path, flag: str, value: str, says: str
) -> None:
    recordings = _recordings(tmp_path)
    logs = tmp_path / "logs"
    cli(logs, "prepare", "--experiment", "voice", "--input", str(recordings), flag, value).refused(says)
    assert not (logs / "voice").exists()


def test_extract_refuses_a_device_that_is_no_device_before_any_work(tmp_path: Path) -> None:
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    cli(experiment.logs_dir, "extract", "--experiment", "voice", "--device", "cuda:first").refused(
        "--device 'cuda:first' is not a device"
    )
    assert not experiment.extract_report.exists() and not experiment.extract_manifest.exists()


def test_config_refuses_epochs_past_the_maximum(tmp_path: Path) -> None:
    """--epochs 99999999999999999999 was saved, and the run then trained as if it would never end."""
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    cli(experiment.logs_dir, "config", "--experiment", "voice", "--epochs", "99999999999999999999").refused(
        "--epochs 99999999999999999999 must be between 1 and 100000"
    )
    assert not experiment.config_json.exists()


def test_config_of_a_misspelt_experiment_is_refused_and_makes_no_folder(tmp_path: Path) -> None:
    """config --experiment voise made logs/voise/config.json: an experiment with no data, listed everywhere."""
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    typo = experiment.logs_dir / "voise"
    cli(experiment.logs_dir, "config", "--experiment", "voise").refused(
        f"experiment 'voise' does not exist ({typo} is not there", "prepare it first"
    )
    cli(experiment.logs_dir, "config", "--experiment", "voice", "--import-from", "voise").refused(
        "experiment 'voise' does not exist"
    )
    assert not typo.exists() and not experiment.config_json.exists()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--epochs", "0"], "--epochs 0 must be between 1 and 100000"),
        (["--batch-size", "0"], "--batch-size"),
        (["--auto-stop", "maybe"], "--auto-stop"),
        (["--pretrained-g", "G.pth"], "--pretrained-g is set but --pretrained-d is not: give both"),
        (["--pretrained-d", "D.pth"], "--pretrained-d is set but --pretrained-g is not: give both"),
        (["--pretrained-g", "G.pth", "--pretrained-d", "D.pth"], "--pretrained-g G.pth is not a file"),
        (
            ["--embedder", "contentvek"],
            "--embedder 'contentvek' is no known content encoder",
        ),  # extract said it, after prepare
    ],
)
def test_run_refuses_bad_training_settings_before_it_prepares_anything(
    tmp_path: Path, flags: list[str], said: str
) -> None:
    """These were refused only by the config stage, after prepare and extract had run (about 27 s in)."""
    recordings = _recordings(tmp_path)
    logs = tmp_path / "logs"
    cli(logs, "run", "--experiment", "voice", "--input", str(recordings), "--tiny-model", *flags).refused(said)
    assert not (logs / "voice").exists()


def test_run_refuses_a_rate_the_configured_experiment_cannot_train_before_replacing_its_dataset(
    tmp_path: Path,
) -> None:
    """config keeps a configured experiment's model, so a run at another rate was refused by config after
    prepare had replaced the experiment's dataset (and extract had run): nothing of it may change."""
    from tests.fake_experiment import write_tiny_config

    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    write_tiny_config(experiment)  # a 40 kHz model
    before = experiment.dataset_report.read_bytes()
    recordings = _recordings(tmp_path)
    argv = ["run", "--experiment", "voice", "--input", str(recordings), "--tiny-model"]
    cli(experiment.logs_dir, *argv, "--sample-rate", "48000").refused(
        f"experiment voice is configured for a 40000 Hz model ({experiment.config_json}): run it with "
        "--sample-rate 40000"
    )
    assert experiment.dataset_report.read_bytes() == before


def test_an_error_under_a_progress_bar_starts_a_line_of_its_own(tmp_path: Path) -> None:
    """export's bar was open when it found no saved state, and the error line was glued onto the bar's."""
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    stderr = cli(experiment.logs_dir, "export", "--experiment", "voice").refused()
    assert "export" in stderr  # the bar was drawn
    # Lines as a terminal shows them: a bar redraws itself after "\r", so split on newlines only.
    assert any(line.startswith("error: ") for line in stderr.split("\n")), repr(stderr)


# ------------------------------------------------------------------ a file of the wrong kind given as weights


def test_config_names_a_pretrain_that_is_not_a_torch_file(tmp_path: Path) -> None:
    """A text file given as --pretrained-g ended in 'config failed unexpectedly (KeyError: 105)'."""
    from tests.fake_experiment import write_tiny_config
    from tests.fake_hub import tiny_pretrain_bytes

    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    write_tiny_config(experiment)
    before = experiment.config_json.read_bytes()
    notes, d = tmp_path / "notes.pth", tmp_path / "D.pth"
    notes.write_text("hi\n")
    d.write_bytes(tiny_pretrain_bytes(40000)[1])
    ran = cli(
        experiment.logs_dir, "config", "--experiment", "voice", "--pretrained-g", str(notes), "--pretrained-d", str(d)
    )
    ran.refused(f"{notes}: not a readable PyTorch file")
    assert experiment.config_json.read_bytes() == before


# ------------------------------------------------------------------ a path the system refuses


@pytest.mark.parametrize("case", ["infer --output", "prepare --input", "--events-file"])
def test_a_path_the_system_refuses_is_named_with_what_to_do(tmp_path: Path, case: str) -> None:
    """Each ended in 'failed unexpectedly (OSError: [Errno 36] File name too long ...)' or IsADirectoryError."""
    recordings = _recordings(tmp_path)
    long = str(tmp_path / ("a" * 300 + ".wav"))
    take, too_long = str(recordings / "take.wav"), f"{long}: File name too long; choose a shorter name"
    folder = f"{recordings}: Is a directory; it is a folder: give the path of a file"
    prepare = ["prepare", "--experiment", "voice", "--input"]
    argv, said = {
        "infer --output": (["infer", "--model", str(tmp_path / "m.pth"), "--input", take, "--output", long], too_long),
        "prepare --input": ([*prepare, long], too_long),
        "--events-file": ([*prepare, str(recordings), "--json-progress", "--events-file", str(recordings)], folder),
    }[case]
    cli(tmp_path / "logs", *argv).refused(said)
    assert (recordings / "take.wav").is_file()


def test_an_events_file_without_json_progress_is_refused_before_any_work(tmp_path: Path) -> None:
    """The file was left unwritten without a word: the events are written only with --json-progress."""
    recordings, logs, events = _recordings(tmp_path), tmp_path / "logs", tmp_path / "events.jsonl"
    ran = cli(logs, "prepare", "--experiment", "voice", "--input", str(recordings), "--events-file", str(events))
    ran.refused(f"--events-file {events} is written with --json-progress: add --json-progress")
    assert not (logs / "voice").exists() and not events.exists()


@pytest.mark.parametrize("where", ["logs", "experiment"])
def test_a_symbolic_link_loop_where_a_folder_goes_is_named(tmp_path: Path, where: str) -> None:
    """--logs-dir a link to itself printed a RuntimeError traceback (Path.resolve before any stage); an
    experiment folder that is one ended in 'prepare failed unexpectedly (RuntimeError: Symlink loop ...)'."""
    recordings = _recordings(tmp_path)
    logs = tmp_path / "logs"
    loop = logs if where == "logs" else logs / "voice"
    loop.parent.mkdir(exist_ok=True)
    loop.symlink_to(loop)
    ran = cli(logs, "prepare", "--experiment", "voice", "--input", str(recordings), "--no-progress")
    ran.refused(str(loop), "a symbolic link there points back to itself: fix or remove the link")


def test_a_link_to_nothing_where_the_experiment_folder_goes_is_named(tmp_path: Path) -> None:
    """mkdir met the link (FileExistsError) and the message said 'a file has that name'."""
    recordings, experiment = _recordings(tmp_path), tmp_path / "logs" / "voice"
    experiment.parent.mkdir()
    experiment.symlink_to(tmp_path / "moved-away")
    ran = cli(experiment.parent, "prepare", "--experiment", "voice", "--input", str(recordings), "--no-progress")
    ran.refused(f"cannot make the folder {experiment}", "a symbolic link there points to nothing: fix or remove")


def test_train_names_a_file_where_its_tensorboard_folder_goes(tmp_path: Path) -> None:
    """The trainer's own handler printed a FileExistsError traceback and 'training failed', status 1."""
    from tests.fake_experiment import write_tiny_config

    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=2, validation_clips=0, seconds=0.3)
    write_tiny_config(experiment)
    experiment.tensorboard_dir.write_text("mine")
    ran = cli(experiment.logs_dir, "train", "--experiment", "voice", "--device", "cpu")
    ran.refused(f"{experiment.tensorboard_dir}: File exists; a file has that name: move it away")
    assert experiment.tensorboard_dir.read_text() == "mine"

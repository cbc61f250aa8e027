"""The prepare stage end to end: real files in, clips, lists, report and cache out."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from rvc.cli import main as cli_main
from rvc.data.options import PrepareOptions
from rvc.data.prepare import PrepareResult, prepare
from rvc.data.process import SourceJob, process_source
from rvc.data.slicer import SlicerParams
from rvc.data.split import SplitClip, split_dataset
from rvc.errors import UserError
from rvc.experiment import Experiment
from tests.conftest import FFMPEG, BadInputs
from tests.synth import harmonic_tone, silence, speech_like
from tests.tiny_whisper import save_tiny_whisper

REPO = Path(__file__).resolve().parents[1]
PHRASES = (2.5, 3.5, 2.0)  # voiced seconds of each test recording; 0.8 s of silence around each

REPORT_KEYS = {
    "version", "sample_rate", "total_seconds", "total_hms", "clip_count", "train_clip_count",
    "validation_clip_count", "sources", "rejected", "clips", "speakers", "options",
}  # fmt: skip
SOURCE_KEYS = {"path", "sha256", "status", "reason", "clips", "seconds", "cached"}
CLIP_KEYS = {"name", "source", "start", "end", "seconds", "split", "speaker"}


def _speech(path: Path, sr: int = 16000, phrases: tuple[float, ...] = PHRASES, seed: int = 0, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, speech_like(sr, phrases=phrases, seed=seed), sr, **kw)
    return path


def _run(logs: Path, inputs: list[Path], name: str = "voice", **options: Any) -> PrepareResult:
    options.setdefault("workers", 1)
    return prepare(Experiment(logs, name), inputs, PrepareOptions(**options), progress=False)


def _wav_mtimes(experiment: Experiment) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in experiment.root.glob("audio_*/*.wav")}


def _frames(path: Path) -> int:
    return int(sf.info(str(path)).frames)


def _rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(s["path"]).name: s for s in report["sources"]}


def _check_clip_files(experiment: Experiment, report: dict[str, Any], chunk: float = 3.0) -> None:
    """Every listed clip exists at both rates with matching lengths, within the length bounds."""
    sr = report["sample_rate"]
    for clip in report["clips"]:
        target, low = experiment.clip_audio(clip["name"], sr), experiment.clip_audio_16k(clip["name"])
        assert sf.info(str(target)).samplerate == sr and sf.info(str(low)).samplerate == 16000
        seconds_target, seconds_16k = _frames(target) / sr, _frames(low) / 16000
        assert abs(seconds_target - seconds_16k) <= 1 / 16000 + 1 / sr
        assert abs(seconds_target - clip["seconds"]) < 1e-3
        assert 0.5 - 1e-3 <= clip["seconds"] <= chunk + 1e-3


# --- the command line ---------------------------------------------------------------------


def _cli(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [*prefix, sys.executable, "-m", "rvc", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def test_cli_end_to_end_then_nothing_to_do(tmp_path: Path, write_audio: Callable[..., Path]) -> None:
    inputs = tmp_path / "recordings"
    _speech(inputs / "a.wav", 44100, seed=1, subtype="PCM_16")
    stereo = np.stack([speech_like(48000, phrases=PHRASES, seed=2)] * 2, axis=1)
    write_audio(inputs / "sub" / "b.flac", stereo, 48000)
    lossy = "m4a" if FFMPEG else "ogg"  # m4a goes through ffmpeg
    subtype = "VORBIS" if lossy == "ogg" else None
    write_audio(inputs / f"c.{lossy}", speech_like(44100, phrases=PHRASES, seed=3), 44100, subtype)
    logs = tmp_path / "logs"
    args = ["--logs-dir", str(logs), "prepare", "--experiment", "voice", "--input", str(inputs)]
    args += ["--workers", "2", "--max-silence-kept", "0.1", "--validation", "0", "--no-progress"]

    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1].startswith("prepared 3 source(s)")
    experiment = Experiment(logs, "voice")
    report = json.loads(experiment.dataset_report.read_text())
    assert set(report) == REPORT_KEYS
    assert all(set(s) == SOURCE_KEYS for s in report["sources"])
    assert all(set(c) == CLIP_KEYS for c in report["clips"])
    assert report["sample_rate"] == 40000 and report["rejected"] == []
    assert report["clip_count"] == len(report["clips"]) == report["train_clip_count"]
    _check_clip_files(experiment, report)
    for row in report["sources"]:
        assert row["status"] == "ok" and not row["cached"]
        # Kept audio = the phrases plus at most 0.1 s of silence (and the RMS window's reach) at each side.
        assert sum(PHRASES) - 0.05 <= row["seconds"] <= sum(PHRASES) + len(PHRASES) * 2 * 0.17
    assert report["total_seconds"] == pytest.approx(sum(r["seconds"] for r in report["sources"]), abs=0.01)
    listed = experiment.train_clips.read_text().split()
    assert sorted(listed) == sorted(c["name"] for c in report["clips"])
    assert experiment.validation_clips.read_text() == ""
    before = _wav_mtimes(experiment)
    assert len(before) == 2 * report["clip_count"]

    second = _cli(*args)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().startswith("nothing to do: 3 sources unchanged")
    assert _wav_mtimes(experiment) == before


def test_help_shows_every_option_with_its_default() -> None:
    result = _cli("prepare", "--help")
    assert result.returncode == 0
    # One entry per option: argparse starts each at a two-space indent.
    entries = {e.split()[0].rstrip(","): " ".join(e.split()) for e in re.split(r"\n  (?=-)", result.stdout)[1:]}
    for flag, default in [
        ("--sample-rate", "40000"), ("--cut", "automatic"), ("--chunk", "3.0"), ("--overlap", "0.3"),
        ("--threshold", "-42.0"), ("--min-length", "1.5"), ("--min-interval", "0.4"), ("--hop", "0.015"),
        ("--max-silence-kept", "0.5"), ("--min-clip", "0.5"), ("--normalize", "post"), ("--wav-format", "float32"),
        ("--validation", "auto"), ("--validation-min-seconds", "0.0"), ("--device", "auto"), ("--workers", "0"),
        ("--whisper-model", "base"), ("--slice-start-offset", "0.0"), ("--slice-end-offset", "0.0"),
        ("--denoise-strength", "1.0"), ("--highpass", "True"), ("--denoise", "False"), ("--trim-silence", "False"),
        ("--transcribe", "False"), ("--retranscribe", "False"), ("--slice-by-whisper", "False"), ("--input", "[]"),
        ("--url", "[]"), ("--language", "None"),
    ]:  # fmt: skip
        entry = entries[flag]
        assert entry[entry.index("(default:") :].startswith(f"(default: {default})"), entry


@pytest.mark.parametrize("name", ["../x", ".hidden", "a/b", "a b"])
def test_unsafe_experiment_names_are_refused(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    _speech(tmp_path / "in" / "a.wav")
    logs = tmp_path / "logs"
    status = cli_main(["--logs-dir", str(logs), "prepare", "--experiment", name, "--input", str(tmp_path / "in")])
    assert status == 2
    err = capsys.readouterr().err
    assert "invalid experiment name" in err and "letters, digits" in err
    assert not logs.exists() or not any(logs.iterdir())
    assert not (tmp_path / "x").exists()


# --- bad input ----------------------------------------------------------------------------


def test_bad_files_are_listed_with_a_reason_and_nothing_else_is_lost(tmp_path: Path, bad_inputs: BadInputs) -> None:
    result = _run(tmp_path / "logs", [bad_inputs.folder])
    report = result.report
    rows = _rows(report)
    assert set(rows) == {p.name for p in bad_inputs.folder.iterdir()}  # every entry is accounted for
    for name, word in bad_inputs.rejected.items():
        assert rows[name]["status"] == "rejected", name
        assert word in rows[name]["reason"], (name, rows[name]["reason"])
        assert rows[name]["clips"] == 0
    assert {Path(r["path"]).name for r in report["rejected"]} == set(bad_inputs.rejected)
    for name in bad_inputs.usable:
        assert rows[name]["status"] == "ok" and rows[name]["clips"] >= 1, rows[name]
        assert rows[name]["seconds"] >= 2.0 - 0.05
    assert "%" in rows["clipped.wav"]["reason"]  # says how much is clipped
    _check_clip_files(Experiment(tmp_path / "logs", "voice"), report)
    assert result.rejected == len(bad_inputs.rejected)


def test_an_unreadable_file_is_listed_as_permission_denied(tmp_path: Path) -> None:
    _speech(tmp_path / "in" / "good.wav")
    locked = _speech(tmp_path / "in" / "locked.wav", seed=1)
    locked.chmod(0)
    try:
        if not _readable(locked):
            report = _run(tmp_path / "logs", [tmp_path / "in"]).report
        else:
            # Root (or CAP_DAC_OVERRIDE) reads through chmod 000. Run the real CLI without the two
            # capabilities that bypass file permissions, so the read really fails as it would for a user.
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running with permission-bypassing capabilities and no setpriv to drop them")
            drop = (setpriv, "--bounding-set=-dac_override,-dac_read_search")
            args = ["--logs-dir", str(tmp_path / "logs"), "prepare", "--experiment", "voice"]
            result = _cli(*args, "--input", str(tmp_path / "in"), "--no-progress", prefix=drop)
            if result.returncode != 0 and "setpriv" in result.stderr:
                pytest.skip(f"setpriv cannot drop capabilities here: {result.stderr.strip()}")
            assert result.returncode == 0, result.stderr
            report = json.loads(Experiment(tmp_path / "logs", "voice").dataset_report.read_text())
    finally:
        locked.chmod(0o644)
    rows = _rows(report)
    assert rows["locked.wav"]["status"] == "rejected"
    assert "permission denied" in rows["locked.wav"]["reason"]
    assert rows["good.wav"]["status"] == "ok" and rows["good.wav"]["clips"] >= 1


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
    except PermissionError:
        return False
    return True


def test_fails_fast_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError, match=str(missing)):
        _run(tmp_path / "logs", [missing])
    a_file = _speech(tmp_path / "one.wav")
    with pytest.raises(UserError, match="is a file, not a folder"):
        _run(tmp_path / "logs", [a_file])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no audio files in"):
        _run(tmp_path / "logs", [tmp_path / "empty"])
    bad = tmp_path / "bad"
    bad.mkdir()
    sf.write(bad / "quiet.wav", silence(2.0, 16000), 16000)
    (bad / "noise.mp3").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(UserError, match="no usable audio") as raised:
        _run(tmp_path / "logs", [bad])
    assert "quiet.wav: silent" in str(raised.value) and "noise.mp3: unreadable" in str(raised.value)
    report = json.loads(Experiment(tmp_path / "logs", "voice").dataset_report.read_text())
    assert len(report["rejected"]) == 2 and report["clip_count"] == 0


# --- the cache ----------------------------------------------------------------------------


def test_cache_reuses_adds_redoes_and_removes(tmp_path: Path) -> None:
    inputs, logs = tmp_path / "in", tmp_path / "logs"
    experiment = Experiment(logs, "voice")
    _speech(inputs / "a.wav", 22050, seed=1)
    _speech(inputs / "b.wav", 16000, seed=2, subtype="FLOAT")
    first = _run(logs, [inputs])
    assert first.processed == 2
    before = _wav_mtimes(experiment)

    again = _run(logs, [inputs])
    assert again.processed == 0 and again.summary.startswith("nothing to do: 2 sources unchanged")
    assert _wav_mtimes(experiment) == before
    assert all(r["cached"] for r in again.report["sources"])

    _speech(inputs / "c.wav", 32000, seed=3)  # a new file: only it is processed
    added = _run(logs, [inputs])
    assert added.processed == 1 and added.unchanged == 2
    assert {n: r["cached"] for n, r in _rows(added.report).items()} == {"a.wav": True, "b.wav": True, "c.wav": False}
    now = _wav_mtimes(experiment)
    assert {p: now[p] for p in before} == before
    assert len(now) == 2 * added.report["clip_count"]

    low = {p: m for p, m in now.items() if p.parent == experiment.audio_16k_dir}
    rate = _run(logs, [inputs], sample_rate=32000)  # target-rate slices redone, 16 kHz ones kept
    assert rate.processed == 3 and rate.report["sample_rate"] == 32000
    assert {p: m for p, m in _wav_mtimes(experiment).items() if p.parent == experiment.audio_16k_dir} == low
    _check_clip_files(experiment, rate.report)
    assert [c["name"] for c in rate.report["clips"]] == [c["name"] for c in added.report["clips"]]
    assert _run(logs, [inputs]).processed == 0  # back to 40 kHz: those files are still there

    rechunked = _run(logs, [inputs], chunk=2.0)  # a slicing parameter: everything redone
    assert rechunked.processed == 3
    _check_clip_files(experiment, rechunked.report, chunk=2.0)
    names = {c["name"] for c in rechunked.report["clips"]}
    manifest = json.loads(experiment.prepare_manifest.read_text())
    owned = {c["name"] for e in manifest["sources"].values() for c in e["clips"]}
    assert names <= owned
    assert {p.stem for p in experiment.audio_16k_dir.iterdir()} == owned  # stale clips are gone
    assert {p.stem for p in experiment.audio_dir(40000).iterdir()} == owned
    assert not any(experiment.audio_dir(32000).iterdir())  # the 32 kHz clips of the old cut too

    (inputs / "b.wav").unlink()
    removed = _run(logs, [inputs], chunk=2.0)
    assert removed.removed == 1 and removed.processed == 0
    assert "b.wav" not in _rows(removed.report)
    assert not any("b-" in p.name for p in experiment.root.glob("audio_*/*.wav"))


def test_a_second_run_on_the_same_experiment_waits_its_turn(tmp_path: Path) -> None:
    import fcntl

    _speech(tmp_path / "in" / "a.wav")
    experiment = Experiment(tmp_path / "logs", "voice")
    experiment.ensure()
    fd = os.open(experiment.root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another prepare run"):
            _run(tmp_path / "logs", [tmp_path / "in"])
    finally:
        os.close(fd)
    assert _run(tmp_path / "logs", [tmp_path / "in"]).processed == 1


# --- the validation split -----------------------------------------------------------------


def test_validation_takes_whole_recordings_when_there_are_several(tmp_path: Path) -> None:
    for i, phrases in enumerate([(2.0,), (2.0, 2.0), (2.5, 2.5, 2.5), (5.0, 5.0)]):
        _speech(tmp_path / "in" / f"s{i}.wav", phrases=phrases, seed=i)
    report = _run(tmp_path / "logs", [tmp_path / "in"], validation=3).report
    by_source: dict[str, set[str]] = {}
    for clip in report["clips"]:
        by_source.setdefault(clip["source"], set()).add(clip["split"])
    assert all(len(splits) == 1 for splits in by_source.values())  # no recording is in both
    assert {"train"} in by_source.values() and {"validation"} in by_source.values()
    assert 3 <= report["validation_clip_count"] <= 4
    experiment = Experiment(tmp_path / "logs", "voice")
    assert set(experiment.validation_clips.read_text().split()) == {
        c["name"] for c in report["clips"] if c["split"] == "validation"
    }


def test_a_single_recording_gives_its_final_stretch_without_overlap(tmp_path: Path) -> None:
    _speech(tmp_path / "in" / "long.wav", phrases=(7.0, 7.0), seed=5)  # two long slices, 3 chunks each
    report = _run(tmp_path / "logs", [tmp_path / "in"], validation=2).report
    validation = [c for c in report["clips"] if c["split"] == "validation"]
    train = [c for c in report["clips"] if c["split"] == "train"]
    assert len(validation) == 2 and train
    stretch_start = min(c["start"] for c in validation)
    assert all(c["start"] < stretch_start for c in train)
    assert all(c["end"] <= stretch_start for c in train)  # the overlapping neighbour was held back
    assert "held back" in report["sources"][0]["reason"]


def test_auto_validation_needs_ten_clips_and_short_clips_can_go_to_validation(tmp_path: Path) -> None:
    _speech(tmp_path / "in" / "a.wav", phrases=(2.0, 0.3, 2.0), seed=6)
    params = {"slicer": SlicerParams(min_length=0.4, max_silence_kept=0.05)}
    plain = _run(tmp_path / "logs", [tmp_path / "in"], **params).report
    assert plain["validation_clip_count"] == 0  # auto: under 10 clips, nothing held out
    assert all(c["seconds"] >= 0.5 for c in plain["clips"])  # the 0.3 s word was dropped

    kept = _run(tmp_path / "logs", [tmp_path / "in"], validation_min_seconds=1.0, **params).report
    short = [c for c in kept["clips"] if c["seconds"] < 1.0]
    assert len(short) == 1 and short[0]["split"] == "validation"
    assert all(c["split"] == "train" for c in kept["clips"] if c["seconds"] >= 1.0)


def test_split_rules_on_their_own() -> None:
    def clips(prefix: str, n: int) -> list[SplitClip]:
        return [SplitClip(f"{prefix}{i}", 2.7 * i, 2.7 * i + 3.0, 3.0) for i in range(n)]

    many = {"a": clips("a", 40), "b": clips("b", 2), "c": clips("c", 30)}
    split = split_dataset(many, "auto")  # 5% of 72 = 4: b (2 clips) whole, then 2 from the end of a
    assert {n for n in split.validation if n.startswith("b")} == {"b0", "b1"}
    assert len(split.validation) == 4 and "a38" in split.validation and "a39" in split.validation
    assert split.held_back == ("a37",)  # it overlaps a38
    assert split_dataset({"a": clips("a", 9)}, "auto").validation == ()
    assert len(split_dataset({"a": clips("a", 20)}, 0.25).validation) == 5
    with pytest.raises(UserError, match="nothing would be left to train on"):
        split_dataset({"a": clips("a", 3)}, 3)


# --- cut modes, levels, optional processing -------------------------------------------------


def test_simple_and_none_cut_modes(tmp_path: Path) -> None:
    _speech(tmp_path / "in" / "a.wav", phrases=(2.0, 2.0), seed=7)  # 6.4 s in all
    duration = sf.info(str(tmp_path / "in" / "a.wav")).duration
    simple = _run(tmp_path / "logs", [tmp_path / "in"], "simple", cut="simple", validation=0).report
    assert all(c["seconds"] <= 3.0 + 1e-3 for c in simple["clips"])
    assert simple["clips"][0]["start"] == 0.0 and simple["clips"][-1]["end"] == pytest.approx(duration, abs=1e-3)
    whole = _run(tmp_path / "logs", [tmp_path / "in"], "whole", cut="none", wav_format="pcm16", validation=0).report
    assert len(whole["clips"]) == 1 and whole["clips"][0]["seconds"] == pytest.approx(duration, abs=1e-3)
    written = Experiment(tmp_path / "logs", "whole").clip_audio(whole["clips"][0]["name"], 40000)
    assert sf.info(str(written)).subtype == "PCM_16"


def test_the_experiment_folder_is_not_read_as_input(tmp_path: Path) -> None:
    _speech(tmp_path / "in" / "a.wav")
    logs = tmp_path / "logs"
    first = _run(logs, [tmp_path / "in"])
    again = _run(logs, [tmp_path])  # the input folder now holds the logs folder and its clips too
    assert [Path(r["path"]).name for r in again.report["sources"]] == ["a.wav"]
    assert again.processed == 0 and again.report["clips"] == first.report["clips"]


def test_whisper_spans_become_the_clips(tmp_path: Path) -> None:
    # The spans come from rvc.data.transcribe.slice_spans in a real run; here they are given, so the cut is known.
    sr = 16000
    path = _speech(tmp_path / "a.wav", sr, phrases=(2.0, 5.0), seed=3)  # phrases at 0.8-2.8 s and 3.6-8.6 s
    experiment = Experiment(tmp_path / "logs", "voice")
    job = SourceJob(path, "ab" * 32, "a-abababab", PrepareOptions(), experiment, spans=((0.7, 2.9), (3.5, 8.7)))
    result = process_source(job)
    assert result.ok, result.reason
    spans = [(c.start, c.end) for c in result.clips]
    assert spans[0] == pytest.approx((0.7, 2.9), abs=1e-3)  # short enough: one clip
    assert (
        len(spans) == 3 and spans[1][0] == pytest.approx(3.5, abs=1e-3) and spans[-1][1] == pytest.approx(8.7, abs=1e-3)
    )
    assert all(c.seconds <= 3.0 + 1e-3 for c in result.clips)
    assert all(experiment.clip_audio_16k(c.name).is_file() for c in result.clips)
    nothing = process_source(SourceJob(path, "cd" * 32, "a-cdcdcdcd", PrepareOptions(), experiment, spans=()))
    assert not nothing.ok and "Whisper found no segment" in (nothing.reason or "")


def test_post_normalisation_and_absurd_peaks(tmp_path: Path) -> None:
    sr = 16000
    quiet = harmonic_tone(2.0, sr, 150, amplitude=0.1, noise_db=-90, seed=1)
    broken = harmonic_tone(2.0, sr, 150, amplitude=3.0, noise_db=-90, seed=2)  # float data far beyond full scale
    audio = np.concatenate([silence(0.8, sr), quiet, silence(0.8, sr), broken, silence(0.8, sr)])
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", audio, sr, subtype="FLOAT")
    experiment = Experiment(tmp_path / "logs", "post")
    report = _run(tmp_path / "logs", [tmp_path / "in"], "post", validation=0).report
    assert len(report["clips"]) == 1 and report["clips"][0]["end"] < 3.6  # only the quiet phrase
    assert "peak above 2.5" in report["sources"][0]["reason"]
    clip, _ = sf.read(experiment.clip_audio(report["clips"][0]["name"], 40000))
    # RVC's blend: x / peak * 0.9 * 0.75 + 0.25 * x, so a 0.1 peak becomes 0.675 + 0.025.
    assert np.max(np.abs(clip)) == pytest.approx(0.7, abs=0.03)
    raw = _run(tmp_path / "logs", [tmp_path / "in"], "raw", normalize="none", highpass=False, validation=0).report
    clip, _ = sf.read(Experiment(tmp_path / "logs", "raw").clip_audio(raw["clips"][0]["name"], 40000))
    assert np.max(np.abs(clip)) == pytest.approx(0.1, abs=0.01)
    # pre: the whole file is scaled to peak 0.9 (by 0.9 / 3.0); the broken phrase is still judged on its raw peak.
    pre = _run(tmp_path / "logs", [tmp_path / "in"], "pre", normalize="pre", highpass=False, validation=0).report
    assert len(pre["clips"]) == 1
    clip, _ = sf.read(Experiment(tmp_path / "logs", "pre").clip_audio(pre["clips"][0]["name"], 40000))
    assert np.max(np.abs(clip)) == pytest.approx(0.1 * 0.9 / 3.0, abs=0.003)


def test_spectral_gating_removes_steady_noise_and_keeps_the_voice() -> None:
    from rvc.data.denoise import spectral_gate

    sr = 16000
    rng = np.random.default_rng(0)
    tone = np.concatenate([np.zeros(sr), harmonic_tone(1.0, sr, 150, amplitude=0.5, noise_db=-200), np.zeros(sr)])
    noisy = (tone + 0.01 * rng.standard_normal(len(tone))).astype(np.float32)  # -40 dB of steady hiss
    clean = spectral_gate(noisy, sr, device="cpu")
    assert clean.shape == noisy.shape and clean.dtype == np.float32

    def level(x: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64))))

    assert level(clean[: sr // 2]) < level(noisy[: sr // 2]) - 15  # hiss in the pause: mostly gone
    voice = slice(sr + sr // 4, 2 * sr - sr // 4)
    assert abs(level(clean[voice]) - level(tone[voice])) < 1.0  # the voice: kept


def test_denoise_and_trim_silence_in_the_pipeline(tmp_path: Path) -> None:
    sr = 16000
    audio = speech_like(sr, phrases=(1.5, 1.5), gap_seconds=2.0)
    audio = audio + 0.003 * np.random.default_rng(1).standard_normal(len(audio)).astype(np.float32)
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", audio, sr, subtype="FLOAT")
    options = {"cut": "none", "denoise": True, "device": "cpu", "trim_silence": True, "validation": 0}
    report = _run(tmp_path / "logs", [tmp_path / "in"], **options).report
    (clip,) = report["clips"]
    # 9 s with three 2 s silences -> 3 s of phrases + ~1 s of silence left, from 1.75 s to 7.25 s.
    assert clip["seconds"] == pytest.approx(4.0, abs=0.15)
    assert clip["start"] == pytest.approx(1.75, abs=0.05) and clip["end"] == pytest.approx(7.25, abs=0.05)
    data, _ = sf.read(Experiment(tmp_path / "logs", "voice").clip_audio(clip["name"], 40000))
    assert float(np.sqrt(np.mean(data[: int(0.2 * 40000)] ** 2))) < 0.003 / 4  # the hiss before the voice is gated


# --- links ----------------------------------------------------------------------------------


@pytest.fixture
def media_server(tmp_path: Path) -> Iterator[str]:
    """Serve a folder holding voice.wav over HTTP on localhost; yield the base URL."""
    served = tmp_path / "served"
    _speech(served / "voice.wav", seed=9, subtype="PCM_16")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_url_is_downloaded_with_yt_dlp_and_prepared(
    tmp_path: Path, media_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("yt_dlp", reason="yt-dlp is not installed (it is in requirements-dev.txt)")
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # the server is local
    experiment = Experiment(tmp_path / "logs", "voice")
    url = f"{media_server}/voice.wav"
    first = prepare(experiment, [], PrepareOptions(workers=1), urls=[url], progress=False)
    (row,) = first.report["sources"]
    assert row["status"] == "ok" and row["clips"] >= 3
    assert Path(row["path"]).parent == experiment.downloads_dir
    downloaded = Path(row["path"]).stat().st_mtime_ns
    again = prepare(experiment, [], PrepareOptions(workers=1), urls=[url], progress=False)
    assert again.processed == 0 and again.summary.startswith("nothing to do: 1 sources unchanged")
    assert Path(row["path"]).stat().st_mtime_ns == downloaded  # not fetched again
    missing = prepare(experiment, [], PrepareOptions(workers=1), urls=[f"{media_server}/nope.wav"], progress=False)
    failed = [r for r in missing.report["rejected"] if r["path"].endswith("nope.wav")]
    assert failed and "download failed" in failed[0]["reason"]


# --- whisper --------------------------------------------------------------------------------


def test_transcribe_writes_whisper_json_and_the_ljspeech_lists(tmp_path: Path) -> None:
    pytest.importorskip("whisper", reason="openai-whisper is not installed")

    from rvc.data.transcribe import WhisperOptions
    from rvc.experiment import AssetDir

    # A tiny randomly initialised Whisper in whisper's own checkpoint format: the code path is real, the text is not.
    checkpoint = save_tiny_whisper(tmp_path / "tiny-random.pt")
    _speech(tmp_path / "in" / "s.wav", phrases=(2.0, 2.5, 2.0), seed=1)  # one recording: decoding is the cost
    experiment = Experiment(tmp_path / "logs", "voice")
    options = WhisperOptions(model=str(checkpoint), language="en", device="cpu")

    def run() -> PrepareResult:
        return prepare(
            experiment,
            [tmp_path / "in"],
            PrepareOptions(workers=1, validation=1),
            whisper=options,
            assets=AssetDir(tmp_path / "assets"),
            progress=False,
        )

    report = run().report
    cache = json.loads(experiment.whisper_json.read_text())
    assert {r["sha256"] for r in report["sources"]} <= set(cache["sources"])
    for listing, split in ((experiment.transcript_train, "train"), (experiment.transcript_validation, "validation")):
        lines = listing.read_text().splitlines()
        names = [c["name"] for c in report["clips"] if c["split"] == split]
        assert sorted(line.split("|", 1)[0] for line in lines) == sorted(f"audio_40k/{n}.wav" for n in names)
    transcribed = experiment.whisper_json.stat().st_mtime_ns
    again = run()
    assert again.processed == 0 and experiment.whisper_json.stat().st_mtime_ns == transcribed

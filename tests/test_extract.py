"""The extract stage end to end: real f0 methods, a tiny real HubertModel, the cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rvc.errors import UserError
from rvc.experiment import AssetDir, Experiment
from rvc.experiment.features import FeaturesReport
from rvc.features.extract import ExtractOptions, extract_features
from rvc.fileio import atomic_write_json
from tests.fake_experiment import save_tiny_hubert
from tests.synth import harmonic_tone

REPO = Path(__file__).resolve().parents[1]


def _fake_prepared(experiment: Experiment, seconds: list[float]) -> list[str]:
    """Write 16 kHz clips and a dataset.json as the prepare stage does."""
    names = []
    clips = []
    for i, length in enumerate(seconds):
        name = f"voice-0123abcd-{i:04d}"
        names.append(name)
        audio = harmonic_tone(length, 16000, f0_start=180.0 + 20 * i, seed=i)
        path = experiment.clip_audio_16k(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, 16000, subtype="FLOAT")
        clips.append(
            {"name": name, "source": "voice.wav", "start": 0.0, "end": length, "seconds": length, "split": "train"}
        )
    atomic_write_json(
        experiment.dataset_report,
        {"version": 1, "sample_rate": 40000, "total_seconds": sum(seconds), "clip_count": len(clips), "clips": clips},
    )
    return names


@pytest.fixture
def embedder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_hubert(tmp_path_factory.mktemp("embedder") / "tiny-hubert")


def test_extract_writes_aligned_features_and_caches(tmp_path: Path, embedder_path: Path) -> None:
    experiment = Experiment(tmp_path / "logs", "voice")
    names = _fake_prepared(experiment, [1.0, 1.0, 0.73])
    assets = AssetDir(tmp_path / "assets")
    options = ExtractOptions(f0_method="harvest", embedder=str(embedder_path), device="cpu", workers=1)
    messages: list[str] = []

    report = extract_features(experiment, assets, options, log=messages.append)

    assert report.f0_computed == 3 and report.content_computed == 3 and not report.failed
    for i, name in enumerate(names):
        n_samples = sf.info(str(experiment.clip_audio_16k(name))).frames
        f0 = np.load(experiment.clip_f0(name))
        coarse = np.load(experiment.clip_f0_coarse(name))
        feats = np.load(experiment.clip_features(name))
        assert f0.dtype == np.float32 and f0.shape == (n_samples // 160 + 1,)
        assert coarse.shape == f0.shape and coarse.min() >= 1 and coarse.max() <= 255
        assert feats.dtype == np.float32 and feats.ndim == 2 and feats.shape[1] == 768
        # content at 50 frames/s, pitch at 100: repeated x2, the content falls short of the pitch frames only
        # by HuBERT's 25 ms receptive field (RVC crops both to the shorter)
        assert 0 <= f0.shape[0] - 2 * feats.shape[0] <= 4
        voiced = f0[20:-20][f0[20:-20] > 0]
        assert np.median(np.abs(1200 * np.log2(voiced / (180.0 + 20 * i)))) < 20
    written = {p: p.stat().st_mtime_ns for p in experiment.root.rglob("*.npy")}

    again = extract_features(experiment, assets, options, log=messages.append)

    assert again.f0_computed == 0 and again.content_computed == 0 and again.cached == 3
    assert messages[-1].startswith("nothing to do")
    assert {p: p.stat().st_mtime_ns for p in experiment.root.rglob("*.npy")} == written

    # another f0 method redoes pitch only; the content features stay
    changed = extract_features(experiment, assets, ExtractOptions(**{**options.__dict__, "f0_method": "pm"}))
    assert changed.f0_computed == 3 and changed.content_computed == 0
    assert {p: p.stat().st_mtime_ns for p in experiment.features_dir.glob("*.npy")} == {
        p: t for p, t in written.items() if p.parent == experiment.features_dir
    }


def test_extract_reports_a_broken_clip_and_goes_on(tmp_path: Path, embedder_path: Path) -> None:
    experiment = Experiment(tmp_path / "logs", "voice")
    names = _fake_prepared(experiment, [0.8, 0.8])
    experiment.clip_audio_16k(names[1]).write_bytes(b"RIFF\x00\x00garbage")
    options = ExtractOptions(f0_method="pm", embedder=str(embedder_path), device="cpu", workers=1)

    report = extract_features(experiment, AssetDir(tmp_path / "assets"), options, log=lambda _: None)

    assert [f.clip for f in report.failed] == [names[1]]
    assert experiment.clip_features(names[0]).is_file() and not experiment.clip_features(names[1]).exists()
    assert FeaturesReport.load(experiment) == report and report.ready_clips == 1
    saved = json.loads(experiment.extract_report.read_text())  # the file's schema, as other tools read it
    assert saved["failed"][0]["clip"] == names[1] and saved["ready_clips"] == 1


def test_extract_cli_fails_when_not_one_clip_is_ready(tmp_path: Path, embedder_path: Path) -> None:
    import argparse

    from rvc.cli.extract import add_arguments, run
    from rvc.experiment import Workspace
    from rvc.jobs.reporter import Reporter

    experiment = Experiment(tmp_path / "logs", "voice")
    for name in _fake_prepared(experiment, [0.8, 0.8]):
        experiment.clip_audio_16k(name).write_bytes(b"RIFF\x00\x00garbage")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--experiment", "voice", "--f0", "pm", "--embedder", str(embedder_path)])
    args.device, args.workers = "cpu", 1

    assert run(args, Workspace(tmp_path / "logs", tmp_path / "assets"), Reporter()) == 1


def test_extract_without_prepare_says_what_to_do(tmp_path: Path) -> None:
    experiment = Experiment(tmp_path / "logs", "voice")
    with pytest.raises(UserError, match="rvc prepare"):
        extract_features(experiment, AssetDir(tmp_path / "assets"), ExtractOptions(f0_method="pm", device="cpu"))


def test_extract_cli_missing_embedder_names_repo_and_folder(tmp_path: Path) -> None:
    experiment = Experiment(tmp_path / "logs", "voice")
    _fake_prepared(experiment, [0.5])
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rvc",
            "--logs-dir",
            str(tmp_path / "logs"),
            "--assets-dir",
            str(tmp_path / "assets"),
            "extract",
            "--experiment",
            "voice",
            "--f0",
            "pm",
            "--embedder",
            "contentvec",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "contentvec" in result.stderr and str(tmp_path / "assets") in result.stderr


@pytest.mark.parametrize(
    "content",
    [
        '{"version": 1, "entries": {"clip-0000": {"audio_sha',  # an interrupted copy
        '{"version": 1, "entries": {"clip-0000": 5}}',
        '{"version": 1, "entries": [3]}',
        '{"version": 1, "entries": {"clip-0000": {"audio_sha256": "a", "colour": "red"}}}',
        "[1, 2]",
    ],
)
def test_a_damaged_extract_manifest_is_a_cache_to_rebuild_not_an_error(tmp_path: Path, content: str) -> None:
    """Each of these ended extract in 'failed unexpectedly' (JSONDecodeError, TypeError, AttributeError)."""
    from rvc.features.clip_cache import Manifest

    path = tmp_path / "extract_manifest.json"
    path.write_text(content)
    manifest = Manifest(path)
    assert manifest.entries == {}
    manifest.save()  # the next save replaces it with a good one
    assert Manifest(path).entries == {} and json.loads(path.read_text())["version"] == 1

"""The FAISS index stage: RVC's IVF layout, self-retrieval, atomic writes, bad clips, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from rvc.errors import UserError
from rvc.experiment import Experiment
from rvc.index import build_index, ivf_lists, write_index_atomic

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _two_threads():
    """This machine's cores are shared: keep faiss's OpenMP from oversubscribing them."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    yield
    faiss.omp_set_num_threads(before)


def _experiment(logs: Path, clips: dict[str, np.ndarray], name: str = "voice") -> Experiment:
    """Write content features and clips_train.txt as the extract stage leaves them."""
    experiment = Experiment(logs, name)
    experiment.features_dir.mkdir(parents=True)
    for clip, features in clips.items():
        np.save(experiment.clip_features(clip), features)
    experiment.train_clips.write_text("".join(f"{clip}\n" for clip in clips))
    return experiment


def _features(frames: int, seed: int, dim: int = 768) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((frames, dim)).astype(np.float32)


def _assert_no_temp_files(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("vectors", "lists"),
    [(1, 1), (5, 1), (38, 1), (39, 1), (78, 2), (5000, 128), (10_000, 256), (200_000, 5128), (1_000_000, 16_000)],
)
def test_ivf_lists_follows_rvc(vectors: int, lists: int) -> None:
    # min(16·√N, N // 39), at least 1: N // 39 binds up to ~389k vectors, 16·√N above.
    assert ivf_lists(vectors) == lists


def _assert_finds_itself(index: faiss.Index, vectors: np.ndarray) -> None:
    distances, ids = index.search(vectors, 1)
    np.testing.assert_array_equal(ids[:, 0], np.arange(len(vectors)))
    np.testing.assert_allclose(distances[:, 0], 0.0, atol=1e-3)


def test_five_vectors_make_a_one_list_index(tmp_path: Path) -> None:
    features = _features(5, seed=1)
    experiment = _experiment(tmp_path / "logs", {"only": features})
    lines: list[str] = []

    report = build_index(experiment, log=lines.append)

    assert report.path == experiment.index_file == experiment.root / "voice.index"
    assert (report.vectors, report.indexed, report.n_lists, report.dim, report.clips) == (5, 5, 1, 768, 1)
    assert not report.kmeans and not report.skipped
    index = faiss.read_index(str(report.path))
    assert index.ntotal == 5
    assert faiss.extract_index_ivf(index).nlist == 1
    _assert_finds_itself(index, features)
    _assert_no_temp_files(experiment.root)
    assert any("IVF1,Flat" in line for line in lines)


def test_five_thousand_vectors_are_searchable_in_clip_order(tmp_path: Path) -> None:
    clips = {f"clip{i}": _features(frames, seed=i) for i, frames in enumerate((1200, 1300, 1250, 1250))}
    experiment = _experiment(tmp_path / "logs", clips)

    report = build_index(experiment, log=lambda _: None)

    assert (report.vectors, report.indexed, report.n_lists, report.clips) == (5000, 5000, 128, 4)
    index = faiss.read_index(str(report.path))
    ivf = faiss.extract_index_ivf(index)
    assert (ivf.nlist, ivf.nprobe, index.ntotal) == (128, 1, 5000)
    everything = np.concatenate(list(clips.values()))
    # Ids follow clip order (no shuffle), so an id maps back to its clip and frame.
    np.testing.assert_array_equal(index.reconstruct_n(0, index.ntotal), everything)
    _assert_finds_itself(index, everything)
    _assert_no_temp_files(experiment.root)


def test_above_the_threshold_the_index_holds_kmeans_centres(tmp_path: Path) -> None:
    # 10 well-separated blobs: the centres must land on them, not between them.
    rng = np.random.default_rng(7)
    blobs = rng.standard_normal((10, 768)).astype(np.float32) * 10
    points = blobs[rng.integers(0, 10, 5000)] + rng.standard_normal((5000, 768)).astype(np.float32) * 0.1
    experiment = _experiment(tmp_path / "logs", {"a": points[:2500], "b": points[2500:]})

    report = build_index(experiment, log=lambda _: None, kmeans_threshold=1000, kmeans_centres=100)

    assert report.kmeans
    assert (report.vectors, report.indexed, report.n_lists) == (5000, 100, ivf_lists(100)) == (5000, 100, 2)
    index = faiss.read_index(str(report.path))
    centres = index.reconstruct_n(0, index.ntotal)
    assert centres.shape == (100, 768)
    # Every blob has a centre on it and no centre sits between blobs (they are ~390 apart) ...
    blob_to_centre, _ = faiss.knn(blobs, centres, 1)  # squared distances
    centre_to_blob, _ = faiss.knn(centres, blobs, 1)
    assert np.sqrt(blob_to_centre.max()) < 3.0
    assert np.sqrt(centre_to_blob.max()) < 3.0
    # ... and centres are means of many points: closer to their blob than a single point
    # (noise norm 0.1·√768 ≈ 2.8), which a random sample of the data would not be.
    assert np.median(np.sqrt(centre_to_blob)) < 1.0


def test_bad_clips_are_skipped_and_named(tmp_path: Path) -> None:
    nan = _features(50, seed=2)
    nan[3, 5] = np.nan
    clips = {"good": _features(60, seed=1), "nan": nan, "flat": np.zeros(768, dtype=np.float32)}
    experiment = _experiment(tmp_path / "logs", clips)
    (experiment.features_dir / "pickled.npy").write_bytes(b"not numpy at all")
    with experiment.train_clips.open("a") as handle:
        handle.write("missing\npickled\n")
    lines: list[str] = []

    report = build_index(experiment, log=lines.append)

    assert (report.vectors, report.clips) == (60, 1)
    skipped = {line.split(": ", 1)[0]: line for line in report.skipped}
    assert sorted(skipped) == ["flat", "missing", "nan", "pickled"]
    for clip, reason in (
        ("nan", "NaN"),
        ("flat", "(768,)"),
        ("missing", "no features file"),
        ("pickled", "unreadable"),
    ):
        assert reason in skipped[clip]
    assert sum("skipping" in line for line in lines) == 4


def test_no_usable_features_is_a_user_error(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path / "logs", {})
    experiment.train_clips.write_text("ghost\n")
    with pytest.raises(UserError, match="python -m rvc extract"):
        build_index(experiment, log=lambda _: None)
    with pytest.raises(UserError, match=r"clips_train\.txt"):
        build_index(Experiment(tmp_path / "logs", "never-prepared"), log=lambda _: None)


def test_failed_write_keeps_the_old_index(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path / "logs", {"only": _features(5, seed=1)})
    path = build_index(experiment, log=lambda _: None).path
    before = path.read_bytes()

    with pytest.raises(TypeError):
        write_index_atomic("not an index", path)  # faiss refuses after the temporary file exists

    assert path.read_bytes() == before
    _assert_no_temp_files(experiment.root)


def test_cli_builds_the_index(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    features = _features(100, seed=3)
    experiment = _experiment(logs, {"a": features[:40], "b": features[40:]}, name="cli-voice")

    result = subprocess.run(
        [sys.executable, "-m", "rvc", "--logs-dir", str(logs), "index", "--experiment", "cli-voice"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )

    assert result.returncode == 0, result.stderr
    assert "IVF2,Flat" in result.stdout
    index = faiss.read_index(str(logs / "cli-voice" / "cli-voice.index"))
    assert index.ntotal == 100
    _assert_finds_itself(index, features)
    assert experiment.root == logs.resolve() / "cli-voice"

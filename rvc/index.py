"""The FAISS retrieval index of an experiment: RVC's ``IVF{n},Flat`` over the training clips' content features.

At conversion time RVC looks up the nearest training frames of each input frame in this index
and blends them into the input features, which pulls the timbre towards the trained voice.
The file is what the RVC WebUI, Applio and real-time changers load (``faiss.read_index``, then
``index.search`` and ``index.reconstruct_n``), so the layout follows RVC's ``train_index``:

- n = max(1, min(16·√N, N // 39)) inverted lists, ``nprobe`` 1;
- above 200k vectors, k-means first reduces them to 10k centres and the index holds the centres;
- vectors are added in batches of 8192.

Differences from RVC, none visible in the file: rows are not shuffled (faiss samples its own
training subset, so the order does not matter, and unshuffled ids map back to clip and frame);
no ``total_fea.npy`` is written (current RVC and Applio read the vectors back from the index);
above the threshold only the k-means sample is read into memory, so millions of frames fit.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rvc.errors import UserError
from rvc.experiment import Experiment
from rvc.experiment.dataset import read_clip_list
from rvc.fileio import make_folder, writing_to
from rvc.jobs.reporter import Reporter

KMEANS_THRESHOLD = 200_000  # RVC: above this many vectors, index k-means centres instead
KMEANS_CENTRES = 10_000  # RVC: how many centres
KMEANS_POINTS_PER_CENTRE = 20  # k-means sample: 200k vectors at 10k centres, a bounded cost whatever N is
KMEANS_ITERATIONS = 10  # Lloyd iterations; the centres only need to cover the feature space
ADD_BATCH = 8192  # RVC adds vectors in batches of this size
DEFAULT_NPROBE = 1  # lists searched per query, as RVC writes it (its UI never changes it)
SEED = 1234

Log = Callable[[str], Any]


def ivf_lists(vectors: int) -> int:
    """Return RVC's number of inverted lists for ``vectors`` rows: max(1, min(16·√N, N // 39)).

    N // 39 keeps at least 39 training points per list (faiss's minimum for a stable k-means);
    the max(1, …) lets 1 to 38 vectors make a one-list index, which RVC's formula (0) cannot.
    """
    return max(1, min(int(16 * math.sqrt(vectors)), vectors // 39))


@dataclass(frozen=True)
class IndexReport:
    """What `build_index` did."""

    vectors: int  # N: feature frames gathered from the training clips
    indexed: int  # rows in the index: N, or the k-means centres above the threshold
    n_lists: int  # n of IVF{n},Flat
    dim: int  # feature width (768 for v2)
    clips: int  # clips whose features were used
    skipped: tuple[str, ...]  # "clip: reason" for clips left out
    kmeans: bool  # True when the index holds k-means centres
    seconds: float
    path: Path


@dataclass(frozen=True)
class _FeatureFile:
    clip: str
    path: Path
    frames: int


def _read_clip_names(experiment: Experiment) -> list[str]:
    path = experiment.train_clips
    if not path.is_file():
        raise UserError(
            f"{path} does not exist: run `python -m rvc prepare` and `python -m rvc extract` "
            f"for experiment {experiment.name!r} first"
        )
    return read_clip_list(path)


def _open_features(path: Path) -> np.ndarray:
    """Memory-map a features file without reading its rows (no pickles: allow_pickle=False)."""
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _scan_features(experiment: Experiment, log: Log) -> tuple[list[_FeatureFile], int, list[str]]:
    """Check every training clip's features file by its header; return the usable ones and the width."""
    files: list[_FeatureFile] = []
    skipped: list[str] = []
    dim = 0
    for clip in _read_clip_names(experiment):
        try:
            path = experiment.clip_features(clip)
        except ValueError:
            skipped.append(f"{clip}: not a valid clip name")
            continue
        if not path.is_file():
            skipped.append(f"{clip}: no features file {path} (extraction failed or was not run)")
            continue
        try:
            array = _open_features(path)
        except (OSError, ValueError) as exc:
            skipped.append(f"{clip}: unreadable features file {path} ({exc})")
            continue
        if array.ndim != 2 or array.shape[0] == 0 or array.dtype not in (np.float32, np.float16):
            skipped.append(f"{clip}: {path} holds {array.dtype} {tuple(array.shape)}, expected float32 (frames, 768)")
            continue
        dim = dim or int(array.shape[1])
        if array.shape[1] != dim:
            skipped.append(f"{clip}: {path} has {array.shape[1]}-d features, the other clips {dim}-d")
            continue
        files.append(_FeatureFile(clip, path, int(array.shape[0])))
    for line in skipped:
        log(f"index: skipping {line}")
    if not files:
        raise UserError(
            f"no usable content features for the training clips of {experiment.name!r} in "
            f"{experiment.features_dir}: run `python -m rvc extract --experiment {experiment.name}` first"
        )
    return files, dim, skipped


def _gather(
    files: list[_FeatureFile], dim: int, rows: np.ndarray | None, log: Log, reporter: Reporter
) -> tuple[np.ndarray, list[tuple[_FeatureFile, str]]]:
    """Read all rows (``rows`` None) or the given sorted global row numbers into one float32 array.

    Fills one preallocated array rather than concatenating, so peak memory is the result's size.
    A file with NaN or infinite values is left out whole. Returns (vectors, [(file, reason)] left out).
    """
    total = sum(f.frames for f in files) if rows is None else len(rows)
    out = np.empty((total, dim), dtype=np.float32)
    starts = np.cumsum([0] + [f.frames for f in files])
    filled = 0
    bad: list[tuple[_FeatureFile, str]] = []
    bar = reporter.bar("index: read features", len(files), "clip")
    for i, file in enumerate(files):
        bar.update()
        features = _open_features(file.path)
        if rows is None:
            block = np.asarray(features)
        else:
            lo, hi = np.searchsorted(rows, [starts[i], starts[i + 1]])
            block = features[rows[lo:hi] - starts[i]]
        if not np.isfinite(block).all():
            bad.append((file, f"{file.clip}: {file.path} contains NaN or infinite values; extract it again"))
            log(f"index: skipping {bad[-1][1]}")
            continue
        out[filled : filled + len(block)] = block
        filled += len(block)
    bar.close()
    return out[:filled], bad


def _kmeans_centres(vectors: np.ndarray, centres: int, seed: int) -> np.ndarray:
    """Reduce vectors to ``centres`` k-means centres with faiss (CPU, all cores).

    faiss.Kmeans rather than RVC's sklearn MiniBatchKMeans: faiss is already a dependency
    (scikit-learn is not), it runs full Lloyd iterations with multithreaded BLAS, and the caller's
    sample (20 per centre) bounds its cost whatever N is. Measured on 16 CPU cores: 1M vectors to
    a finished index in 97 s, while MiniBatchKMeans as RVC calls it took 130 s for the k-means
    alone; RVC's plain path at 200k vectors (IVF5128 training) took 79 s.
    """
    import faiss

    kmeans = faiss.Kmeans(
        vectors.shape[1],
        centres,
        niter=KMEANS_ITERATIONS,
        seed=seed,
        max_points_per_centroid=KMEANS_POINTS_PER_CENTRE,  # the caller's sample is already this size
        # 20 points per centre is below faiss's recommended 39 (it would warn), and enough to
        # place centres that cover the features, which is all retrieval needs of them.
        min_points_per_centroid=1,
        verbose=False,
    )
    kmeans.train(vectors)
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


def train_ivf(vectors: np.ndarray, nprobe: int = DEFAULT_NPROBE) -> Any:
    """Train and fill an ``IVF{n},Flat`` index over ``vectors`` (float32 [N x D]).

    n = `ivf_lists(N)`. Returns the faiss index with ``nprobe`` set.
    """
    import faiss

    count, dim = vectors.shape
    n_lists = ivf_lists(count)
    index = faiss.index_factory(dim, f"IVF{n_lists},Flat")
    ivf = faiss.extract_index_ivf(index)
    if count < 39:
        # One list holding every vector: searching it is exact, so faiss's "please provide at
        # least 39 training points" warning does not apply.
        ivf.cp.min_points_per_centroid = 1
    ivf.nprobe = nprobe
    index.train(vectors)
    for start in range(0, count, ADD_BATCH):
        index.add(vectors[start : start + ADD_BATCH])
    return index


def write_index_atomic(index: Any, path: Path) -> None:
    """Write a faiss index through a temporary file in the same folder, fsync and rename."""
    import faiss

    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        faiss.write_index(index, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        with writing_to(path):
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_index(
    experiment: Experiment,
    out: Path | None = None,
    log: Log = print,
    *,
    kmeans_threshold: int = KMEANS_THRESHOLD,
    kmeans_centres: int = KMEANS_CENTRES,
    nprobe: int = DEFAULT_NPROBE,
    seed: int = SEED,
    reporter: Reporter | None = None,
) -> IndexReport:
    """Build the experiment's retrieval index from its training clips' content features.

    Reads ``content_768/<clip>.npy`` (float32 [T x 768]) for every clip in ``clips_train.txt``,
    skipping (and naming) clips without usable features. Above ``kmeans_threshold`` vectors the
    index holds ``kmeans_centres`` k-means centres instead. Writes ``out`` (default
    ``Experiment.index_file``) atomically. ``reporter`` shows the reading of the features (default: silent).
    """
    if kmeans_threshold < 1 or kmeans_centres < 1 or nprobe < 1:
        raise ValueError("kmeans_threshold, kmeans_centres and nprobe must be positive")
    started = time.perf_counter()
    path = Path(out) if out is not None else experiment.index_file
    files, dim, skipped = _scan_features(experiment, log)
    total = sum(f.frames for f in files)
    use_kmeans = total > kmeans_threshold and total > kmeans_centres
    rows = None
    if use_kmeans:
        # Only the k-means sample is read: memory stays bounded however many frames there are.
        sample_size = min(total, kmeans_centres * KMEANS_POINTS_PER_CENTRE)
        rows = np.sort(np.random.default_rng(seed).choice(total, size=sample_size, replace=False))
    vectors, bad = _gather(files, dim, rows, log, reporter if reporter is not None else Reporter())
    skipped = skipped + [reason for _, reason in bad]
    clips = len(files) - len(bad)
    if clips == 0:
        raise UserError(
            f"every training clip's features in {experiment.features_dir} were unusable: "
            f"run `python -m rvc extract --experiment {experiment.name}` again"
        )
    vectors_used = total - sum(file.frames for file, _ in bad)
    if use_kmeans and len(vectors) > kmeans_centres:
        log(f"index: k-means {vectors_used} vectors -> {kmeans_centres} centres (sample of {len(vectors)})")
        vectors = _kmeans_centres(vectors, kmeans_centres, seed)
    else:
        use_kmeans = False
    n_lists = ivf_lists(len(vectors))
    log(f"index: IVF{n_lists},Flat over {len(vectors)} {dim}-d vectors from {clips} clips")
    index = train_ivf(vectors, nprobe=nprobe)
    write_index_atomic(index, path)
    seconds = time.perf_counter() - started
    log(f"index: wrote {path} ({seconds:.1f} s)")
    return IndexReport(
        vectors=vectors_used,
        indexed=len(vectors),
        n_lists=n_lists,
        dim=dim,
        clips=clips,
        skipped=tuple(skipped),
        kmeans=use_kmeans,
        seconds=seconds,
        path=path,
    )

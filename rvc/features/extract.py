"""The extract stage: pitch and content features for every prepared clip.

Reads the clips that ``prepare`` listed in its dataset report (their 16 kHz
copies) and writes, per clip, f0 in Hz and coarse f0 at 100 frames/s and
768-d content features at 50 frames/s. Work is cached per clip: a clip whose
16 kHz audio and extraction settings are unchanged is not computed again.

GPU methods run batched in this process while a thread reads the next batch
from disk; CPU pitch methods run in a pool of processes, one per core.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from rvc.choices import F0Method, InferencePrecision
from rvc.errors import UserError
from rvc.experiment import AssetDir, Experiment
from rvc.experiment.dataset import DatasetReport
from rvc.experiment.features import FailedClip, FeaturesReport
from rvc.fileio import atomic_save_npy, atomic_write_json, read_json, sha256_file, sha256_json
from rvc.jobs.process import worker_pool
from rvc.jobs.reporter import PrintReporter, Reporter
from rvc.settings import check_declared, setting

MANIFEST_VERSION = 1
# Save the manifest after this many newly computed clips, so an interrupted run keeps its work.
MANIFEST_SAVE_EVERY = 64


ExtractPart = Literal["all", "f0", "content"]


@dataclass(frozen=True)
class ExtractOptions:
    """How pitch and content features are computed."""

    f0_method: F0Method = setting(
        "rmvpe",
        "rmvpe: robust, fast on a GPU (RVC's choice); crepe: accurate, slow; fcpe: fast; harvest, dio, pm: CPU only",
        label="Pitch (f0) method",
        flag="--f0",
    )
    embedder: str = setting(
        "contentvec",
        "content encoder: contentvec (for RVC's pretrains), hubert_base, chinese_hubert_base, japanese_hubert_base, "
        "korean_hubert_base, or the path of a Hugging Face folder or fairseq .pt",
        label="Content embedder",
    )
    device: str = setting("auto", "auto, cuda, cuda:N or cpu (auto picks CUDA when present)", label="Device")
    batch_size: int = setting(16, "clips per GPU batch (content and GPU pitch methods)", label="Batch size", minimum=1)
    precision: InferencePrecision = setting(
        "auto", "embedder precision on a GPU (auto: fp16)", label="Embedder precision"
    )
    workers: int = setting(
        0, "processes for CPU pitch methods (0 = one per core)", label="Pitch worker processes", minimum=0
    )
    f0_min: float = setting(50.0, "lowest pitch searched, Hz", label="Lowest pitch (Hz)")
    f0_max: float = setting(1100.0, "highest pitch searched, Hz", label="Highest pitch (Hz)")
    only: ExtractPart = setting(
        "all", "extract one part only (the other is kept): all, f0 or content", label="Extract only"
    )

    def check(self) -> None:
        """Raise a UserError naming the option when a value cannot work."""
        check_declared(self)
        if not 0 < self.f0_min < self.f0_max:
            raise UserError("$f0_min must be above 0 and below $f0_max", field="f0_min", options=ExtractOptions)


@dataclass
class _ClipEntry:
    audio_sha256: str
    f0_key: str | None = None
    content_key: str | None = None


class _Manifest:
    """Per-clip record of which settings produced the files on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        data = read_json(path, default=None)
        self.entries: dict[str, _ClipEntry] = {}
        if data and data.get("version") == MANIFEST_VERSION:
            self.entries = {name: _ClipEntry(**entry) for name, entry in data["entries"].items()}
        self._unsaved = 0

    def save(self) -> None:
        atomic_write_json(
            self.path,
            {"version": MANIFEST_VERSION, "entries": {name: asdict(e) for name, e in sorted(self.entries.items())}},
        )
        self._unsaved = 0

    def touched(self) -> None:
        self._unsaved += 1
        if self._unsaved >= MANIFEST_SAVE_EVERY:
            self.save()


def _dataset_clips(experiment: Experiment) -> tuple[list[str], DatasetReport]:
    """Return the clip names the dataset report lists, and the report."""
    report = DatasetReport.load(experiment)
    names = report.clip_names()
    if not names:
        raise UserError(f"{experiment.dataset_report} lists no clips: prepare the dataset again with usable audio")
    return names, report


def read_clip_16k(path: Path) -> np.ndarray:
    """Read a prepared 16 kHz clip as float32 mono (N,)."""
    import soundfile as sf

    audio, sample_rate = sf.read(str(path), dtype="float32", always_2d=False)
    if sample_rate != 16000:
        raise ValueError(f"{path} is {sample_rate} Hz, expected 16000 Hz: prepare the dataset again")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _embedder_identity(embedder: str) -> str:
    """A cache key part that changes when the embedder's weights change."""
    path = Path(embedder)
    if path.exists():
        stats = [
            (str(p.relative_to(path)) if path.is_dir() else p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in (sorted(path.rglob("*")) if path.is_dir() else [path])
            if p.is_file()
        ]
        return sha256_json({"path": str(path.resolve()), "files": stats})
    return embedder


def _batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _load_batch(load: Callable[[str], np.ndarray | Exception], names: list[str]) -> list[np.ndarray | Exception]:
    return [load(name) for name in names]


def _prefetched(
    batches: Iterator[list[str]], load: Callable[[str], np.ndarray | Exception]
) -> Iterator[tuple[list[str], list[np.ndarray | Exception]]]:
    """Yield each batch with its audio, reading the next batch on a thread while the GPU works."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = None
        for batch in batches:
            future = pool.submit(_load_batch, load, batch)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (batch, future)
        if pending is not None:
            yield pending[0], pending[1].result()


# --- pitch --------------------------------------------------------------

# Per-process estimator for the CPU pool (built once per worker by _init_f0_worker).
_WORKER_STATE: dict[str, Any] = {}


def _init_f0_worker(method: str, assets_root: str, f0_min: float, f0_max: float) -> None:
    import torch

    from rvc.jobs.process import exit_with_parent

    exit_with_parent()  # a stage killed with -9 must not leave its workers behind

    # Each worker is one core's worth of work; torch's own thread pool would oversubscribe.
    torch.set_num_threads(1)
    from rvc.f0 import create_f0_estimator

    _WORKER_STATE["estimator"] = create_f0_estimator(method, AssetDir(Path(assets_root)), "cpu", f0_min, f0_max)


def _f0_worker(audio_path: str) -> np.ndarray | str:
    try:
        audio = read_clip_16k(Path(audio_path))
        return np.asarray(_WORKER_STATE["estimator"].estimate(audio), dtype=np.float32)
    except Exception as error:  # reported per clip; one bad clip must not stop the stage
        return f"{type(error).__name__}: {error}"


def _write_f0(experiment: Experiment, clip: str, f0_hz: np.ndarray) -> None:
    from rvc.f0 import coarse_f0

    atomic_save_npy(experiment.clip_f0(clip), f0_hz.astype(np.float32))
    atomic_save_npy(experiment.clip_f0_coarse(clip), coarse_f0(f0_hz))


def _extract_f0(
    experiment: Experiment,
    assets: AssetDir,
    clips: list[str],
    options: ExtractOptions,
    device: str,
    on_done: Callable[[str, str | None], None],
    estimator: Any,
    reporter: Reporter,
) -> None:
    """Compute f0 for ``clips``; call ``on_done(clip, error_or_None)`` for each."""
    bar = reporter.bar(f"pitch ({options.f0_method})", len(clips), "clip")
    try:
        if estimator.uses_gpu:
            load = _safe_loader(experiment)
            for names, audios in _prefetched(_batches(clips, options.batch_size), load):
                good = [(n, a) for n, a in zip(names, audios, strict=True) if isinstance(a, np.ndarray)]
                for name, audio in zip(names, audios, strict=True):
                    if isinstance(audio, Exception):
                        on_done(name, f"unreadable 16 kHz clip: {audio}")
                if good:
                    results = estimator.estimate_batch([a for _, a in good])
                    for (name, _), f0 in zip(good, results, strict=True):
                        _write_f0(experiment, name, np.asarray(f0, dtype=np.float32))
                        on_done(name, None)
                bar.update(len(names))
            return
        # CPU methods: the pool builds its own estimator, one per worker process
        workers = options.workers or os.cpu_count() or 1
        paths = [str(experiment.clip_audio_16k(name)) for name in clips]
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # fork after torch threads exist can deadlock
        init_args = (options.f0_method, str(assets.root), options.f0_min, options.f0_max)
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_f0_worker, initargs=init_args)
        # On a stop or an error the workers are killed: their chunks are not waited for.
        with worker_pool(pool):
            chunksize = max(1, min(16, len(paths) // (workers * 4)))
            for name, result in zip(clips, pool.map(_f0_worker, paths, chunksize=chunksize), strict=True):
                if isinstance(result, str):
                    on_done(name, result)
                else:
                    _write_f0(experiment, name, result)
                    on_done(name, None)
                bar.update(1)
    finally:
        bar.close()


# --- content ------------------------------------------------------------


def _safe_loader(experiment: Experiment) -> Callable[[str], np.ndarray | Exception]:
    def load(name: str) -> np.ndarray | Exception:
        try:
            return read_clip_16k(experiment.clip_audio_16k(name))
        except Exception as error:  # reported per clip by the caller
            return error

    return load


def _embedder_dtype(precision: str, device: str) -> str:
    if not device.startswith("cuda") or precision == "fp32":
        return "float32"
    if precision == "fp16":
        return "float16"
    if precision == "bf16":
        return "bfloat16"
    # auto: fp16 is as fast as bf16 for HuBERT on an H100 and about 8x closer to fp32 (measured)
    return "float16"


def _extract_content(
    experiment: Experiment,
    clips: list[str],
    options: ExtractOptions,
    on_done: Callable[[str, str | None], None],
    embedder: Any,
    reporter: Reporter,
) -> None:
    """Compute content features for ``clips``; call ``on_done(clip, error_or_None)`` for each."""
    import torch

    if embedder.device.type == "cpu":
        torch.set_num_threads(options.workers or os.cpu_count() or 1)
    # Sorting by length puts equal-length clips (most are exactly --chunk seconds) in the same batch,
    # so the embedder can batch them without padding.
    lengths = {name: _clip_frames(experiment, name) for name in clips}
    ordered = sorted(clips, key=lambda name: (lengths[name], name))
    embedder_name = Path(options.embedder).name if "/" in options.embedder else options.embedder
    bar = reporter.bar(f"content ({embedder_name})", len(clips), "clip")
    try:
        for names, audios in _prefetched(_batches(ordered, options.batch_size), _safe_loader(experiment)):
            good = [(n, a) for n, a in zip(names, audios, strict=True) if isinstance(a, np.ndarray)]
            for name, audio in zip(names, audios, strict=True):
                if isinstance(audio, Exception):
                    on_done(name, f"unreadable 16 kHz clip: {audio}")
            if good:
                for name, feats in _embed_or_explain(embedder, good):
                    if isinstance(feats, str):
                        on_done(name, feats)
                        continue
                    atomic_save_npy(experiment.clip_features(name), np.asarray(feats, dtype=np.float32))
                    on_done(name, None)
            bar.update(len(names))
    finally:
        bar.close()


def _embed_or_explain(embedder: Any, clips: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray | str]]:
    """Embed a batch; when the batch is refused (one clip too short, NaNs), embed clip by clip."""
    try:
        return list(zip([n for n, _ in clips], embedder.embed_batch([a for _, a in clips]), strict=True))
    except ValueError:
        results: list[tuple[str, np.ndarray | str]] = []
        for name, audio in clips:
            try:
                results.append((name, embedder.embed(audio)))
            except ValueError as error:
                results.append((name, str(error)))
        return results


def _clip_frames(experiment: Experiment, name: str) -> int:
    import soundfile as sf

    try:
        return int(sf.info(str(experiment.clip_audio_16k(name))).frames)
    except Exception:  # an unreadable clip sorts first and is reported when it is loaded
        return 0


# --- the stage ----------------------------------------------------------


def _forget_removed_clips(experiment: Experiment, manifest: _Manifest, clips: list[str]) -> int:
    """Delete the feature files and manifest entries of clips no longer in the dataset; return the files removed."""
    keep = set(clips)
    removed = 0
    for folder in (experiment.f0_dir, experiment.f0_coarse_dir, experiment.features_dir):
        if not folder.is_dir():
            continue
        for path in folder.glob("*.npy"):
            if path.stem not in keep:
                path.unlink(missing_ok=True)
                removed += 1
    for name in list(manifest.entries):
        if name not in keep:
            del manifest.entries[name]
    return removed


@dataclass
class _Plan:
    """What a run computes: the clips each part needs, and the clips that failed (clip -> reason)."""

    f0_key: str  # the f0 settings' hash, kept per clip in the manifest
    content_key: str  # the embedder's hash, likewise
    need_f0: list[str] = field(default_factory=list)
    need_content: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def nothing_to_do(self) -> bool:
        return not self.need_f0 and not self.need_content

    def cached(self, clips: list[str]) -> int:
        """Count the clips this run neither computes nor lists as failed."""
        busy = set(self.need_f0) | set(self.need_content) | set(self.failed)
        return sum(1 for name in clips if name not in busy)


def _plan(experiment: Experiment, manifest: _Manifest, clips: list[str], options: ExtractOptions) -> _Plan:
    """Find the clips whose audio, settings or files changed since the manifest recorded them."""
    plan = _Plan(
        f0_key=sha256_json({"method": options.f0_method, "f0_min": options.f0_min, "f0_max": options.f0_max}),
        content_key=sha256_json({"embedder": _embedder_identity(options.embedder)}),
    )
    for name in clips:
        audio_path = experiment.clip_audio_16k(name)
        if not audio_path.is_file():
            plan.failed[name] = f"missing {audio_path}: prepare the dataset again"
            continue
        audio_sha = sha256_file(audio_path)
        entry = manifest.entries.get(name)
        if entry is None or entry.audio_sha256 != audio_sha:
            entry = manifest.entries[name] = _ClipEntry(audio_sha)
        f0_stale = entry.f0_key != plan.f0_key or not (
            experiment.clip_f0(name).is_file() and experiment.clip_f0_coarse(name).is_file()
        )
        content_stale = entry.content_key != plan.content_key or not experiment.clip_features(name).is_file()
        if f0_stale and options.only in ("all", "f0"):
            plan.need_f0.append(name)
        if content_stale and options.only in ("all", "content"):
            plan.need_content.append(name)
    return plan


@dataclass
class _Recorder:
    """Record each clip a part finishes: its key in the manifest and a count in the report, or its failure."""

    plan: _Plan
    manifest: _Manifest
    report: FeaturesReport

    def f0_done(self, name: str, error: str | None) -> None:
        if error is not None:
            self.plan.failed[name] = f"f0: {error}"
            return
        self.manifest.entries[name].f0_key = self.plan.f0_key
        self.report.f0_computed += 1
        self.manifest.touched()

    def content_done(self, name: str, error: str | None) -> None:
        if error is not None:
            self.plan.failed[name] = f"content: {error}"
            return
        self.manifest.entries[name].content_key = self.plan.content_key
        self.report.content_computed += 1
        self.manifest.touched()


def extract_features(
    experiment: Experiment,
    assets: AssetDir,
    options: ExtractOptions,
    log: Callable[[str], None] = print,
    reporter: Reporter | None = None,
) -> FeaturesReport:
    """Compute f0 and content features for every prepared clip that needs them.

    Returns the report that is also written as the experiment's features report. Clips whose
    extraction fails are listed in ``report.failed`` and the stage goes on. ``reporter`` shows
    each part's progress (default: tqdm bars on stderr); stopped midway (SIGTERM, Ctrl-C), the
    stage saves its per-clip cache first, so the next run continues where this one ended.
    """
    reporter = reporter if reporter is not None else PrintReporter()
    from rvc.devices import resolve_device

    options.check()
    clips, dataset = _dataset_clips(experiment)
    device = resolve_device(options.device)
    report = FeaturesReport(options.f0_method, options.embedder, device, len(clips))
    report.audio_seconds = dataset.total_seconds
    started = time.perf_counter()

    manifest = _Manifest(experiment.extract_manifest)
    removed = _forget_removed_clips(experiment, manifest, clips)
    plan = _plan(experiment, manifest, clips, options)
    report.cached = plan.cached(clips)
    report.seconds["scan"] = time.perf_counter() - started

    if plan.nothing_to_do():
        manifest.save()
        log(
            f"nothing to do: features of all {report.cached} clips are up to date"
            + (f" ({removed} stale files removed)" if removed else "")
        )
        report.failed = [FailedClip(n, r) for n, r in plan.failed.items()]
        _write_report(experiment, report, clips)
        return report

    try:
        _compute(experiment, assets, options, device, _Recorder(plan, manifest, report), reporter)
    finally:
        manifest.save()
    report.seconds["total"] = time.perf_counter() - started
    report.failed = [FailedClip(n, r) for n, r in sorted(plan.failed.items())]
    _write_report(experiment, report, clips)
    log(
        f"extracted f0 for {report.f0_computed} and content for {report.content_computed} clips "
        f"({report.cached} cached, {len(report.failed)} failed) in {report.seconds['total']:.1f} s on {device}"
    )
    for failure in report.failed:
        log(f"  failed: {failure.clip}: {failure.reason}")
    return report


def _compute(
    experiment: Experiment,
    assets: AssetDir,
    options: ExtractOptions,
    device: str,
    recorder: _Recorder,
    reporter: Reporter,
) -> None:
    """Run the pitch part, then the content part, timing each in the report.

    The embedder loads on a thread while pitch runs (importing transformers and reading the weights
    take seconds); a missing weight file still stops the stage at once: each finished f0 clip checks the loader.
    """
    plan, seconds = recorder.plan, recorder.report.seconds
    stage_start = time.perf_counter()
    loader = ThreadPoolExecutor(max_workers=1)
    embedder_future = None
    if plan.need_content:
        from rvc.features.embedder import FEATURE_DIM, load_embedder  # content_768: what v2 trains on

        embedder_dtype = _embedder_dtype(options.precision, device)
        embedder_future = loader.submit(
            load_embedder, options.embedder, assets, device, embedder_dtype, feature_dim=FEATURE_DIM
        )
    estimator = None
    if plan.need_f0:
        from rvc.f0 import create_f0_estimator

        estimator = create_f0_estimator(options.f0_method, assets, device, options.f0_min, options.f0_max)
    seconds["load_f0_model"] = time.perf_counter() - stage_start

    def f0_done_checked(name: str, error: str | None) -> None:
        if embedder_future is not None and embedder_future.done() and embedder_future.exception() is not None:
            raise cast(BaseException, embedder_future.exception())
        recorder.f0_done(name, error)

    try:
        if plan.need_f0:
            stage_start = time.perf_counter()
            _extract_f0(experiment, assets, plan.need_f0, options, device, f0_done_checked, estimator, reporter)
            seconds["f0"] = time.perf_counter() - stage_start
        if embedder_future is not None:
            stage_start = time.perf_counter()
            embedder = embedder_future.result()
            seconds["wait_for_embedder"] = time.perf_counter() - stage_start
            stage_start = time.perf_counter()
            _extract_content(experiment, plan.need_content, options, recorder.content_done, embedder, reporter)
            seconds["content"] = time.perf_counter() - stage_start
    finally:
        loader.shutdown(wait=False, cancel_futures=True)


def _write_report(experiment: Experiment, report: FeaturesReport, clips: list[str]) -> None:
    failed = report.failed_clips()
    report.ready_clips = sum(1 for n in clips if n not in failed)
    report.save(experiment)

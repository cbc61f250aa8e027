"""The extract stage: pitch and content features for every prepared clip.

Reads the clips that ``prepare`` listed in its dataset report (their 16 kHz
copies) and writes, per clip, f0 in Hz and coarse f0 at 100 frames/s and
768-d content features at 50 frames/s. Work is cached per clip: a clip whose
16 kHz audio and extraction settings are unchanged is not computed again.

GPU methods run batched in this process while a thread reads the next batch
from disk; CPU pitch methods run in a pool of processes, one per core.

The parts: ``clip_cache`` (the per-clip manifest, and what a run must compute), ``clip_audio``
(reading the clips), ``extract_pitch`` and ``extract_content``; this module runs them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, cast

from rvc.choices import MAX_WORKERS, F0Method, InferencePrecision
from rvc.devices import is_device_name
from rvc.errors import UserError
from rvc.experiment import AssetDir, Experiment
from rvc.experiment.dataset import DatasetReport
from rvc.experiment.features import FailedClip, FeaturesReport
from rvc.features.clip_cache import Manifest, Plan, forget_removed_clips, plan_work
from rvc.features.extract_content import embedder_dtype, extract_content
from rvc.features.extract_pitch import extract_pitch
from rvc.jobs.reporter import PrintReporter, Reporter
from rvc.settings import check_declared, setting

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
        0,
        "processes for CPU pitch methods (0 = one per core)",
        label="Pitch worker processes",
        minimum=0,
        maximum=MAX_WORKERS,
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
        if not is_device_name(self.device):
            message = f"$device {self.device!r} is not a device: use auto, cpu, cuda or cuda:N"
            raise UserError(message, field="device", options=ExtractOptions)


def _dataset_clips(experiment: Experiment) -> tuple[list[str], DatasetReport]:
    """Return the clip names the dataset report lists, and the report."""
    report = DatasetReport.load(experiment)
    names = report.clip_names()
    if not names:
        raise UserError(f"{experiment.dataset_report} lists no clips: prepare the dataset again with usable audio")
    return names, report


@dataclass
class _Recorder:
    """Record each clip a part finishes: its key in the manifest and a count in the report, or its failure."""

    plan: Plan
    manifest: Manifest
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

    manifest = Manifest(experiment.extract_manifest)
    removed = forget_removed_clips(experiment, manifest, clips)
    plan = plan_work(experiment, manifest, clips, options)
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

        dtype = embedder_dtype(options.precision, device)
        embedder_future = loader.submit(load_embedder, options.embedder, assets, device, dtype, feature_dim=FEATURE_DIM)
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
            extract_pitch(experiment, assets, plan.need_f0, options, device, f0_done_checked, estimator, reporter)
            seconds["f0"] = time.perf_counter() - stage_start
        if embedder_future is not None:
            stage_start = time.perf_counter()
            embedder = embedder_future.result()
            seconds["wait_for_embedder"] = time.perf_counter() - stage_start
            stage_start = time.perf_counter()
            extract_content(experiment, plan.need_content, options, recorder.content_done, embedder, reporter)
            seconds["content"] = time.perf_counter() - stage_start
    finally:
        loader.shutdown(wait=False, cancel_futures=True)


def _write_report(experiment: Experiment, report: FeaturesReport, clips: list[str]) -> None:
    failed = report.failed_clips()
    report.ready_clips = sum(1 for n in clips if n not in failed)
    report.save(experiment)

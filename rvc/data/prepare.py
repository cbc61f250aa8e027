"""Prepare Dataset: folders of recordings (and links) -> clips at the target rate and at 16 kHz.

The steps, in order: download ``--url`` links; scan the inputs; hash every
file (cached by size and mtime, :mod:`rvc.data.sources`); with ``--speakers-from
folders``, give each recording its speaker (:mod:`rvc.data.speakers`); optionally
transcribe with Whisper; process the sources that are new or whose parameters
changed, across worker processes (:mod:`rvc.data.process`); drop the clips of
sources that are gone (:mod:`rvc.data.clip_files`); split train / validation;
write the lists, the transcripts and the dataset report (:mod:`rvc.data.report`).

Only this process writes the manifest, the lists and the report; workers
write clip files under names no other source can produce, each atomically.
Clip files are flushed to disk once (``syncfs`` of their filesystem) before the manifest records
them, so after a crash the manifest never names a clip that is not on disk.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rvc.data.clip_files import ClipFiles
from rvc.data.download import download_urls
from rvc.data.manifest import Manifest, source_key
from rvc.data.options import PrepareOptions
from rvc.data.pool import run_jobs, worker_count
from rvc.data.report import Rejected, dataset_report
from rvc.data.scan import scan_inputs
from rvc.data.sources import PlannedJob, Spans, hash_source, plan_jobs
from rvc.data.speakers import Speakers, assign_speakers, one_voice
from rvc.data.split import Split, SplitClip, split_dataset
from rvc.errors import UserError
from rvc.experiment import AssetDir, Experiment
from rvc.experiment.dataset import DatasetReport
from rvc.fileio import atomic_write_text, sync_filesystem
from rvc.jobs.reporter import PrintReporter, Reporter

if TYPE_CHECKING:
    from rvc.data.transcribe import Segment, WhisperOptions

log = logging.getLogger(__name__)

SAVE_EVERY_S = 10.0  # during a long run the manifest is saved this often, so an interruption keeps the work
LISTED_REJECTIONS = 20  # at most this many skipped files are named in messages (all are in the report)


@dataclass(frozen=True)
class PrepareResult:
    report: dict[str, Any]  # the dataset report as written (DatasetReport.to_json())
    processed: int  # sources (re)processed in this run
    unchanged: int  # sources whose outcome came from the cache
    rejected: int  # entries listed as rejected
    removed: int  # sources gone from the inputs, whose clips were deleted
    summary: str  # one line for the user


def prepare(
    experiment: Experiment,
    inputs: Sequence[Path],
    options: PrepareOptions | None = None,
    *,
    urls: Sequence[str] = (),
    whisper: WhisperOptions | None = None,
    slice_by_whisper: bool = False,
    assets: AssetDir | None = None,
    progress: bool = True,
    reporter: Reporter | None = None,
) -> PrepareResult:
    """Prepare ``experiment``'s dataset from the recordings under ``inputs`` and the ``urls``.

    whisper : transcribe the sources (and write train.txt / validation.txt); needs ``assets``.
    slice_by_whisper : cut at Whisper's segments instead of at silences (needs ``whisper``).
    reporter : where progress goes (default: a tqdm bar on stderr, or nothing when not ``progress``).

    Raises UserError when an input is missing or not a folder, or when nothing
    usable is found (after writing the dataset report with every rejection).
    """
    options = options or PrepareOptions()
    options.check()
    if slice_by_whisper and whisper is None:
        raise UserError("--slice-by-whisper needs --transcribe")
    if whisper is not None and assets is None:
        raise ValueError("prepare(whisper=...) needs `assets` to find the Whisper model")
    roots = _input_folders(inputs, urls)
    _refuse_clip_folders(experiment, roots)
    experiment.ensure()
    with _locked(experiment):
        reporter = reporter if reporter is not None else PrintReporter() if progress else Reporter()
        return _Run(experiment, roots, options, urls, whisper, slice_by_whisper, assets, reporter).run()


def _input_folders(inputs: Sequence[Path], urls: Sequence[str]) -> list[Path]:
    if not inputs and not urls:
        raise UserError("nothing to prepare: give --input FOLDER and/or --url LINK")
    folders = []
    for given in inputs:
        path = Path(given).expanduser()
        if not path.exists():
            raise UserError(f"input folder {path} does not exist: check the path")
        if not path.is_dir():
            raise UserError(f"--input {path} is a file, not a folder: give the folder that holds the recordings")
        folders.append(path.resolve())
    return folders


def _refuse_clip_folders(experiment: Experiment, roots: Sequence[Path]) -> None:
    """Refuse an input that holds clips, not recordings: the logs folder, or inside an experiment's folder."""
    for root in roots:
        if (problem := experiment.not_recordings(root)) is not None:
            raise UserError(f"--input {problem}; give the folder that holds your recordings")


@contextmanager
def _locked(experiment: Experiment) -> Iterator[None]:
    """Hold an exclusive lock on the experiment folder, so two prepare runs cannot interleave their writes."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one run at a time is then the user's job
        yield
        return
    fd = os.open(experiment.root, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another prepare run is working on experiment {experiment.name!r}: wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)


class _Run:
    """One prepare run; its state lives here rather than in a dozen arguments."""

    def __init__(
        self,
        experiment: Experiment,
        roots: list[Path],
        options: PrepareOptions,
        urls: Sequence[str],
        whisper: WhisperOptions | None,
        slice_by_whisper: bool,
        assets: AssetDir | None,
        reporter: Reporter,
    ) -> None:
        self.experiment = experiment
        self.roots = roots
        self.options = options
        self.urls = list(urls)
        self.whisper = whisper
        self.slice_by_whisper = slice_by_whisper
        self.assets = assets
        self.reporter = reporter
        self.manifest = Manifest.load(experiment.prepare_manifest)
        self.clip_files = ClipFiles(experiment, self.manifest, options.sample_rate)
        self.rejected: list[Rejected] = []  # files rejected before processing (outside the manifest)
        self.sources: dict[str, Path] = {}  # sha256 -> path, in path order
        self.speakers: Speakers = one_voice({})
        self.segments: dict[str, list[Segment]] = {}
        self.unchanged: set[str] = set()
        self.wrote_files = False

    # --- the run, top to bottom -------------------------------------------
    def run(self) -> PrepareResult:
        self._download()
        self._find_sources()
        self._assign_speakers()
        if self.whisper is not None:
            self._transcribe()
        jobs, self.unchanged = plan_jobs(self.experiment, self.sources, self.options, self.manifest, self._spans)
        self._process(jobs)
        ok = [sha for sha in self.sources if self.manifest.sources[sha].ok]
        if not ok:
            # Nothing is deleted on this path: a wrong --input must not wipe a prepared dataset.
            self._save_manifest()
            raise UserError(self._nothing_usable(self._write_report(Split((), (), ()))))
        removed = self.clip_files.remove_gone(self.sources, self.roots, self.reporter)
        self.clip_files.sweep()
        self._save_manifest()
        split = split_dataset(
            {sha: self._split_clips(sha) for sha in ok}, self.options.validation, self.options.short_for_validation
        )
        atomic_write_text(self.experiment.train_clips, "".join(f"{name}\n" for name in split.train))
        atomic_write_text(self.experiment.validation_clips, "".join(f"{name}\n" for name in split.validation))
        if self.whisper is not None:
            self._write_transcripts(split)
        report = self._write_report(split)
        return self._result(report, jobs, removed)

    def _download(self) -> None:
        if self.urls:
            for url, reason in download_urls(self.urls, self.experiment.downloads_dir):
                self.rejected.append((url, None, reason))
        if self.experiment.downloads_dir.is_dir() and self.experiment.downloads_dir not in self.roots:
            # Media fetched for this experiment stays part of it, with or without --url this time.
            self.roots.append(self.experiment.downloads_dir)

    def _find_sources(self) -> None:
        # Not recordings: this experiment's clips, nor those of the experiments beside it (``--input .``).
        scan = scan_inputs(self.roots, skip=(self.experiment.root, self.experiment.root.parent))
        if not scan.audio and not scan.rejected and not self.rejected:
            folders = ", ".join(str(r) for r in self.roots) or "(no folder)"
            raise UserError(f"no audio files in {folders}: put recordings (wav, flac, mp3, ...) there")
        self.rejected.extend((path, None, reason) for path, reason in scan.rejected)
        files: dict[str, dict[str, Any]] = {}
        for path in scan.audio:
            sha, reason = hash_source(path, self.manifest, files)
            if sha is None:
                self.rejected.append((path, None, reason or "unreadable"))
            elif sha in self.sources:
                self.rejected.append((path, sha, f"duplicate of {self.sources[sha]} (same bytes)"))
            else:
                self.sources[sha] = path
        self.manifest.files = files

    def _assign_speakers(self) -> None:
        """Give each source its speaker; with speakers from folders, a recording in no speaker's folder is rejected."""
        self.speakers, without = assign_speakers(self.options.speakers_from, self.sources, self.roots)
        for sha, why in without.items():
            self.rejected.append((self.sources.pop(sha), sha, why))

    def _transcribe(self) -> None:
        from rvc.data.transcribe import SourceAudio16k, transcribe_sources

        assert self.whisper is not None
        wanted = {}
        for sha, path in self.sources.items():
            entry = self.manifest.sources.get(sha)
            if (
                entry is not None
                and not entry.ok
                and not entry.retry
                and entry.base_key == source_key(sha, self.options)
            ):
                continue  # known to be unusable with these options: no point transcribing it
            wanted[sha] = path

        def failed(sha: str, path: Path, reason: str) -> None:
            log.warning("%s", reason)

        self.segments = transcribe_sources(
            SourceAudio16k(wanted), self.experiment, self.whisper, assets=self.assets, on_error=failed
        )

    def _spans(self, sha: str) -> Spans | None:
        if not self.slice_by_whisper:
            return None
        from rvc.data.transcribe import slice_spans

        assert self.whisper is not None
        # The duration is unknown until the file is decoded; the worker clamps spans to it.
        spans = slice_spans(
            self.segments.get(sha, []), math.inf, self.whisper.slice_start_offset, self.whisper.slice_end_offset
        )
        return tuple((round(a, 4), round(b, 4)) for a, b in spans)

    def _process(self, jobs: list[PlannedJob]) -> None:
        keys = {planned.job.sha256: planned for planned in jobs}
        last_save = time.monotonic()
        workers = worker_count(self.options.workers, len(jobs))
        try:
            for job, result in run_jobs([planned.job for planned in jobs], workers, self.reporter):
                self.wrote_files = True
                self.clip_files.record(job, result, keys[job.sha256].key, keys[job.sha256].base_key)
                if time.monotonic() - last_save > SAVE_EVERY_S:
                    self._save_manifest()
                    last_save = time.monotonic()
        except BaseException:
            # Stopped (SIGTERM, Ctrl-C) or failed midway: keep what is finished, so the next run continues.
            self._save_manifest()
            raise

    def _save_manifest(self) -> None:
        if self.wrote_files:  # clip files were written without fsync: flush them before the manifest names them
            sync_filesystem(self.experiment.root)
        self.manifest.save()

    # --- outputs --------------------------------------------------------
    def _split_clips(self, sha: str) -> list[SplitClip]:
        return [SplitClip(c.name, c.start, c.end, c.seconds) for c in self.manifest.sources[sha].clips]

    def _write_transcripts(self, split: Split) -> None:
        from rvc.data.transcribe import text_for_span, write_transcripts

        where = {c.name: (sha, c) for sha in self.sources for c in self.manifest.sources[sha].clips}
        sr = self.options.sample_rate

        def rows(names: Sequence[str]) -> list[tuple[Path, str]]:
            out = []
            for name in names:
                sha, clip = where[name]
                out.append(
                    (
                        self.experiment.clip_audio(name, sr),
                        text_for_span(self.segments.get(sha, []), clip.start, clip.end),
                    )
                )
            return out

        write_transcripts(self.experiment, rows(split.train), rows(split.validation))

    def _write_report(self, split: Split) -> DatasetReport:
        report = dataset_report(
            self.manifest,
            self.sources,
            self.rejected,
            self.unchanged,
            split,
            self.speakers,
            self.options.sample_rate,
            self._options_json(),
        )
        report.save(self.experiment)
        return report

    def _options_json(self) -> dict[str, Any]:
        options = self.options.to_json()
        options["input"] = [str(r) for r in self.roots]
        options["url"] = self.urls
        options["transcribe"] = self.whisper is not None
        options["slice_by_whisper"] = self.slice_by_whisper
        if self.whisper is not None:
            from dataclasses import asdict

            options["whisper"] = asdict(self.whisper)
        return options

    def _nothing_usable(self, report: DatasetReport) -> str:
        rejected = [(s.path, s.reason) for s in report.rejected]
        lines = [f"  {path}: {reason}" for path, reason in rejected[:LISTED_REJECTIONS]]
        if len(rejected) > LISTED_REJECTIONS:
            lines.append(f"  ... and {len(rejected) - LISTED_REJECTIONS} more")
        folders = ", ".join(str(r) for r in self.roots) or ", ".join(self.urls)
        return (
            f"no usable audio in {folders}: every file was rejected ({self.experiment.dataset_report} "
            "lists them):\n" + "\n".join(lines)
        )

    def _result(self, report: DatasetReport, jobs: list[PlannedJob], removed: int) -> PrepareResult:
        rejected = len(report.rejected)
        clips = (
            f"{report.clip_count} clips ({report.train_clip_count} train, "
            f"{report.validation_clip_count} validation), {report.total_hms} at {report.sample_rate} Hz"
        )
        if report.speakers:
            clips += f", {len(report.speakers)} speakers"
        if not jobs and not removed:
            summary = f"nothing to do: {len(self.unchanged)} sources unchanged; {clips}"
        else:
            summary = (
                f"prepared {len(jobs)} source(s) ({len(self.unchanged)} unchanged, {removed} removed, "
                f"{rejected} rejected): {clips} -> {self.experiment.dataset_report}"
            )
        if rejected:
            log.warning(
                "%d file(s) skipped; %s lists each with its reason", rejected, self.experiment.dataset_report.name
            )
        return PrepareResult(report.to_json(), len(jobs), len(self.unchanged), rejected, removed, summary)

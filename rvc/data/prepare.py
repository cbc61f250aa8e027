"""Prepare Dataset: folders of recordings (and links) -> clips at the target rate and at 16 kHz.

The steps, in order: download ``--url`` links; scan the inputs; hash every
file (cached by size and mtime); optionally transcribe with Whisper; process
the sources that are new or whose parameters changed, across worker
processes (:mod:`rvc.data.process`); drop the clips of sources that are gone;
split train / validation; write the lists, the transcripts and the dataset report.

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rvc.data.download import download_urls
from rvc.data.manifest import Manifest, SourceEntry, source_key
from rvc.data.naming import clip_prefixes
from rvc.data.options import PrepareOptions
from rvc.data.pool import run_jobs, worker_count
from rvc.data.process import SourceJob, SourceResult
from rvc.data.report import build_report, covered_samples, source_row
from rvc.data.scan import scan_inputs
from rvc.data.split import Split, SplitClip, split_dataset
from rvc.errors import UserError
from rvc.experiment import AssetDir, Experiment
from rvc.experiment.dataset import ClipRow, DatasetReport, SourceRow
from rvc.fileio import atomic_write_text, sha256_file, sync_filesystem
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
    _refuse_own_folder(experiment, roots)
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


def _refuse_own_folder(experiment: Experiment, roots: Sequence[Path]) -> None:
    """Refuse an input inside the experiment's folder: its clips would be read again as recordings.

    Its downloads folder is the exception: it holds recordings, the ones fetched from links and
    the ones the web app's Prepare tab keeps from browser uploads.
    """
    own, downloads = experiment.root.resolve(), experiment.downloads_dir.resolve()
    for root in roots:
        if root == downloads or downloads in root.parents:
            continue
        if root == own or own in root.parents:
            raise UserError(
                f"--input {root} is inside experiment {experiment.name!r}'s own folder ({own}): its clips are "
                "not recordings; give the folder that holds your recordings"
            )


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
        self.rejected: list[tuple[Path | str, str | None, str]] = []  # (path, sha256, reason) outside the manifest
        self.sources: dict[str, Path] = {}  # sha256 -> path, in path order
        self.segments: dict[str, list[Segment]] = {}
        self.unchanged: set[str] = set()
        self.wrote_files = False

    # --- the run, top to bottom -------------------------------------------
    def run(self) -> PrepareResult:
        self._download()
        self._find_sources()
        if self.whisper is not None:
            self._transcribe()
        jobs = self._plan()
        self._process(jobs)
        ok = [sha for sha in self.sources if self.manifest.sources[sha].ok]
        if not ok:
            # Nothing is deleted on this path: a wrong --input must not wipe a prepared dataset.
            self._save_manifest()
            raise UserError(self._nothing_usable(self._write_report(Split((), (), ()))))
        removed = self._remove_gone_sources()
        self._sweep()
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
            sha, reason = self._hash(path, files)
            if sha is None:
                self.rejected.append((path, None, reason or "unreadable"))
            elif sha in self.sources:
                self.rejected.append((path, sha, f"duplicate of {self.sources[sha]} (same bytes)"))
            else:
                self.sources[sha] = path
        self.manifest.files = files

    def _hash(self, path: Path, files: dict[str, dict[str, Any]]) -> tuple[str | None, str | None]:
        """Return (sha256, None) or (None, reason); reuse the cached hash when size and mtime match."""
        try:
            info = path.stat()
            if info.st_size == 0:
                return None, "empty (0 bytes)"
            cached = self.manifest.files.get(str(path))
            if cached and cached["size"] == info.st_size and cached["mtime_ns"] == info.st_mtime_ns:
                sha = str(cached["sha256"])
            else:
                sha = sha256_file(path)
        except PermissionError:
            return None, "permission denied: make it readable (chmod +r)"
        except OSError as error:
            return None, f"unreadable: {error.strerror or error}"
        files[str(path)] = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": sha}
        return sha, None

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

    def _spans(self, sha: str) -> tuple[tuple[float, float], ...] | None:
        if not self.slice_by_whisper:
            return None
        from rvc.data.transcribe import slice_spans

        assert self.whisper is not None
        # The duration is unknown until the file is decoded; the worker clamps spans to it.
        spans = slice_spans(
            self.segments.get(sha, []), math.inf, self.whisper.slice_start_offset, self.whisper.slice_end_offset
        )
        return tuple((round(a, 4), round(b, 4)) for a, b in spans)

    def _plan(self) -> list[tuple[SourceJob, str, str]]:
        """Return (job, key, base key) for every source that needs work; note the unchanged ones."""
        prefixes = clip_prefixes(self.sources)
        sr = self.options.sample_rate
        jobs = []
        for sha, path in self.sources.items():
            spans = self._spans(sha)
            base_key = source_key(sha, self.options)
            key = source_key(sha, self.options, spans) if spans is not None else base_key
            entry = self.manifest.sources.get(sha)
            job = SourceJob(path, sha, prefixes[sha], self.options, self.experiment, spans=spans)
            if entry is not None and entry.key == key:
                entry.path = str(path)
                if not entry.ok and not entry.retry:
                    self.unchanged.add(sha)
                    continue
                if entry.ok and all(self.experiment.clip_audio_16k(c.name).is_file() for c in entry.clips):
                    names = [c.name for c in entry.clips]
                    if sr in entry.rates and all(self.experiment.clip_audio(n, sr).is_file() for n in names):
                        self.unchanged.add(sha)
                        continue
                    # Only the target rate is missing: cut the recorded spans again, write that rate alone.
                    job = replace(job, write_16k=False, plan=tuple(entry.clips))
            jobs.append((job, key, base_key))
        if jobs and self.options.denoise:  # only now: probing CUDA imports torch, which a cached run never needs
            device = self._denoise_device(worker_count(self.options.workers, len(jobs)))
            jobs = [(replace(job, device=device), key, base_key) for job, key, base_key in jobs]
        # Largest files first, so one long recording does not start last and keep a worker busy alone.
        jobs.sort(key=lambda item: -_size(item[0].path))
        return jobs

    def _denoise_device(self, workers: int) -> str:
        """Return where spectral gating runs: the GPU for one process, the CPU in worker processes under 'auto'.

        Each worker process would need its own CUDA context (seconds to start
        and ~0.5 GB each), while gating runs at ~80x realtime on one CPU core.
        Measured on a 16-core H100 machine, 10 minutes of audio in 20 files:
        3.4 s without denoising, 9.7 s gating on the CPU in 16 workers (torch's
        import is most of the difference), 15.3 s with CUDA in the 16 workers.
        An explicit --device cuda is still honoured.
        """
        if self.options.device == "auto" and workers > 1:
            return "cpu"
        from rvc.devices import resolve_device

        return resolve_device(self.options.device)

    def _process(self, jobs: list[tuple[SourceJob, str, str]]) -> None:
        keys = {job.sha256: (key, base_key) for job, key, base_key in jobs}
        last_save = time.monotonic()
        workers = worker_count(self.options.workers, len(jobs))
        try:
            for job, result in run_jobs([job for job, _, _ in jobs], workers, self.reporter):
                self._record(job, result, *keys[job.sha256])
                if time.monotonic() - last_save > SAVE_EVERY_S:
                    self._save_manifest()
                    last_save = time.monotonic()
        except BaseException:
            # Stopped (SIGTERM, Ctrl-C) or failed midway: keep what is finished, so the next run continues.
            self._save_manifest()
            raise

    def _record(self, job: SourceJob, result: SourceResult, key: str, base_key: str) -> None:
        """Store one result in the manifest and delete the files it made stale."""
        self.wrote_files = True
        sr = self.options.sample_rate
        old = self.manifest.sources.get(job.sha256)
        if result.ok and not job.write_16k and old is not None:
            old.rates = sorted({*old.rates, sr})
            return
        if old is not None:
            keep = {c.name for c in result.clips}
            self._delete_clips([c.name for c in old.clips if c.name not in keep], [16000])
            self._delete_clips([c.name for c in old.clips], [r for r in old.rates if r != sr])
            self._delete_clips([c.name for c in old.clips if c.name not in keep], [sr])
        if result.ok:
            entry = SourceEntry(
                path=str(job.path),
                key=key,
                base_key=base_key,
                ok=True,
                notes=list(result.notes),
                sample_rate=result.sample_rate,
                duration=round(result.duration, 4),
                rates=[sr],
                clips=list(result.clips),
            )
        else:
            log.warning("skipped %s: %s", job.path, result.reason)
            entry = SourceEntry(str(job.path), key, base_key, False, result.reason, retry=result.retry)
        self.manifest.sources[job.sha256] = entry

    def _delete_clips(self, names: Sequence[str], rates: Sequence[int]) -> None:
        for rate in rates:
            for name in names:
                path = self.experiment.clip_audio_16k(name) if rate == 16000 else self.experiment.clip_audio(name, rate)
                path.unlink(missing_ok=True)

    def _remove_gone_sources(self) -> int:
        gone = [sha for sha in self.manifest.sources if sha not in self.sources]
        outside = [
            self.manifest.sources[sha].path
            for sha in gone
            if not any(Path(self.manifest.sources[sha].path).is_relative_to(root) for root in self.roots)
        ]
        if outside:  # not files deleted from the input folders: the dataset is being replaced; say so first
            folders = sorted({str(Path(path).parent) for path in outside})
            self.reporter.log(
                f"replacing the dataset: {len(outside)} source(s) prepared before from {', '.join(folders[:3])}"
                f"{' ...' if len(folders) > 3 else ''} are not under --input, so their clips are removed (the "
                "recordings themselves are not touched); to add recordings instead, give every folder as --input"
            )
        for sha in gone:
            entry = self.manifest.sources.pop(sha)
            self._delete_clips([c.name for c in entry.clips], [16000, *entry.rates])
        return len(gone)

    def _sweep(self) -> None:
        """Delete clip files no source owns (left by a crash or a hand edit) and stale temporary files."""
        entries = [e for e in self.manifest.sources.values() if e.ok]
        owned = {self.experiment.audio_16k_dir: {c.name for e in entries for c in e.clips}}
        for rate in {self.options.sample_rate, *(r for e in entries for r in e.rates)}:
            owned[self.experiment.audio_dir(rate)] = {c.name for e in entries if rate in e.rates for c in e.clips}
        for folder, names in owned.items():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                stale_temp = path.name.startswith(".") and path.name.endswith(".tmp")
                if stale_temp or (path.suffix == ".wav" and path.stem not in names):
                    path.unlink(missing_ok=True)

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
        which: dict[str, Literal["train", "validation"]] = dict.fromkeys(split.train, "train")
        which.update(dict.fromkeys(split.validation, "validation"))
        held = set(split.held_back)
        rows: list[tuple[str, SourceRow]] = []
        clips: list[ClipRow] = []
        total = 0.0
        for sha, path in self.sources.items():
            entry = self.manifest.sources[sha]
            listed = [c for c in entry.clips if c.name in which]
            seconds = covered_samples((c.span_start, c.span_end) for c in listed) / entry.sample_rate if listed else 0.0
            total += seconds
            notes = list(entry.notes)
            held_here = sum(1 for c in entry.clips if c.name in held)
            if held_here:
                notes.append(f"{held_here} clip(s) held back from training: they overlap the validation stretch")
            status: Literal["ok", "rejected"] = "ok" if entry.ok else "rejected"
            reason = entry.reason if not entry.ok else ("; ".join(notes) or None)
            rows.append((str(path), source_row(path, sha, status, reason, len(listed), seconds, sha in self.unchanged)))
            for c in sorted(listed, key=lambda c: (c.start, c.name)):
                clips.append(ClipRow(c.name, str(path), c.start, c.end, c.seconds, which[c.name]))
        for where, known_sha, why in self.rejected:
            rows.append((str(where), source_row(where, known_sha, "rejected", why, 0, 0.0, False)))
        rows.sort(key=lambda row: row[0])
        clips.sort(key=lambda c: (c.source, c.start, c.name))
        report = build_report(self.options.sample_rate, [r for _, r in rows], clips, total, self._options_json())
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

    def _result(self, report: DatasetReport, jobs: list[tuple[SourceJob, str, str]], removed: int) -> PrepareResult:
        rejected = len(report.rejected)
        clips = (
            f"{report.clip_count} clips ({report.train_clip_count} train, "
            f"{report.validation_clip_count} validation), {report.total_hms} at {report.sample_rate} Hz"
        )
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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0

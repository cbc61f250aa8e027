"""Run the per-source jobs of the prepare stage, in this process or across worker processes."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from rvc.data.process import SourceJob, SourceResult, process_source
from rvc.jobs.process import exit_with_parent, worker_pool
from rvc.jobs.reporter import Reporter


def worker_count(requested: int, jobs: int) -> int:
    """Return how many processes to use: ``requested`` (0 = one per usable core), at most one per job."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(requested or cores, jobs))


def _init_worker(threads: int, parent: int) -> None:
    exit_with_parent(parent)  # a prepare killed with -9 must not leave its workers behind
    # Before torch is imported (denoise imports it lazily): N workers x all cores each would thrash.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)


def run_jobs(jobs: list[SourceJob], workers: int, reporter: Reporter) -> Iterator[tuple[SourceJob, SourceResult]]:
    """Yield (job, result) as jobs finish, in this process or across ``workers`` processes."""
    bar = reporter.bar("prepare", len(jobs), "file") if jobs else Reporter().bar("prepare", 0)
    try:
        if workers <= 1:
            for job in jobs:
                yield job, process_source(job)
                bar.update()
            return
        cores = worker_count(0, sys.maxsize)
        # spawn, not fork: the parent may hold torch/CUDA state (denoise device probe) that fork would corrupt.
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(workers, context, _init_worker, (max(1, cores // workers), os.getpid()))
        # Stopped (SIGTERM, Ctrl-C) or failed: the workers are killed, not waited for (a long recording
        # would hold a Stop for its whole length); their temporary files go with the next run's sweep.
        with worker_pool(pool):
            futures = {pool.submit(process_source, job): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    reason = "the worker process died (out of memory?): try --workers 1 or split the file"
                    result = SourceResult(job.path, job.sha256, ok=False, reason=reason, retry=True)
                yield job, result
                bar.update()
    finally:
        bar.close()

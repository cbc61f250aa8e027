"""How a stage with progress runs from the command line: its reporter, its events, its stop.

Stages that declare ``PROGRESS = True`` take a reporter (``rvc.jobs.reporter``): a tqdm bar with an
ETA on stderr by default; with ``--json-progress`` the ``@@rvc`` lines on stdout (for scripts, and
for the web app, which runs the stages as jobs), also appended to ``--events-file``. SIGTERM stops
such a stage the way Ctrl-C does: it leaves its finished work saved and reports "stopped".
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.jobs.process import start_ticks
from rvc.jobs.reporter import EventReporter, PrintReporter, Reporter
from rvc.train.events import JobEndEvent, JobStartEvent
from rvc.train.progress import ProgressWriter

StageRun = Callable[[argparse.Namespace, Workspace, Reporter], int]
STOPPED = "stopped; what was finished is kept: run the stage again to continue where it ended"


class StageStopped(BaseException):
    """SIGTERM arrived: unwind (every ``finally`` saves what it holds) and report "stopped"."""


def add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("progress")
    group.add_argument(
        "--json-progress",
        action="store_true",
        help="print @@rvc JSON lines (progress with done / total, rate and ETA; log lines; the end) "
        "instead of a progress bar, for scripts",
    )
    group.add_argument(
        "--events-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --json-progress: also append the @@rvc events to FILE",
    )


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise StageStopped

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_stage(run: StageRun, stage: str, args: argparse.Namespace, workspace: Workspace) -> int:
    """Run a stage with the reporter its flags ask for; with ``--json-progress``, between a start and an end event."""
    from rvc.jobs.launcher import announced

    if args.events_file is not None and not args.json_progress:  # it would be left unwritten, without a word
        raise UserError(f"--events-file {args.events_file} is written with --json-progress: add --json-progress")
    if not args.json_progress:
        printer = PrintReporter(bars=not getattr(args, "no_progress", False))
        with _sigterm_stops():
            try:
                try:
                    return run(args, workspace, printer)
                finally:  # before what is printed next (an error, "stopped") starts its own line
                    printer.close_bars()
            except StageStopped:
                print(STOPPED, file=sys.stderr)
                return 143
    writer = ProgressWriter(args.events_file)
    if not announced():  # a job's launcher wrote the start event already, with the pid it watches
        pid = os.getpid()
        experiment = str(getattr(args, "experiment", "") or "")
        writer.emit(
            JobStartEvent(
                stage=stage, argv=list(sys.argv), pid=pid, pid_started=start_ticks(pid), experiment=experiment
            )
        )
    reporter = EventReporter(writer)
    with _sigterm_stops():
        try:
            code = run(args, workspace, reporter)
        except UserError as error:
            writer.emit(JobEndEvent(status="error", message=str(error), exit_code=2))
            raise
        except (StageStopped, KeyboardInterrupt):
            writer.emit(JobEndEvent(status="stopped", message=STOPPED, exit_code=143))
            return 143
        except Exception as error:
            message = f"unexpected error: {type(error).__name__}: {error} (the log has the details)"
            writer.emit(JobEndEvent(status="error", message=message, exit_code=1, detail=traceback.format_exc()))
            raise
    status = "done" if code == 0 else "error"
    writer.emit(JobEndEvent(status=status, message=reporter.summary or f"exit status {code}", exit_code=code))
    return code

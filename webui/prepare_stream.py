"""Run a long data stage on a thread and stream its progress as text, for a Gradio generator handler.

The data stages (:func:`rvc.data.prepare.prepare`, :func:`rvc.features.extract.extract_features`)
report through ``logging`` and a ``log`` callback; their tqdm bars go to the
server's stderr. This module collects the messages of the one thread that runs
the stage, adds a live progress line (e.g. clips written so far, measured on
disk) and yields the whole status text every poll, so the browser shows the
stage as it runs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rvc.errors import UserError

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how often the browser gets a fresh status text
MAX_LINES = 200  # older messages are dropped from the status text (the server log keeps them)

Say = Callable[[str], None]


class _ThreadHandler(logging.Handler):
    """Forward the ``rvc`` log records of one thread (the stage's) to a queue."""

    def __init__(self, sink: queue.SimpleQueue[str]) -> None:
        super().__init__(level=logging.INFO)
        self.sink = sink
        self.thread: int | None = None  # set by the stage thread itself before it starts working

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.sink.put(record.getMessage())


@dataclass
class StageOutcome:
    """How a stage ended: a one-line summary, or the message of the error that stopped it."""

    summary: str | None = None
    error: str | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def elapsed(seconds: float) -> str:
    """Format seconds as M:SS (or H:MM:SS)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def files_newer_than(folder: Path, since: float, suffix: str) -> int:
    """Count the files in ``folder`` ending with ``suffix`` modified at or after ``since`` (epoch seconds)."""
    try:
        with_suffix = [entry for entry in folder.iterdir() if entry.name.endswith(suffix)]
    except OSError:  # the folder does not exist yet
        return 0
    count = 0
    for entry in with_suffix:
        try:
            if entry.stat().st_mtime >= since:
                count += 1
        except OSError:  # replaced between the listing and the stat (atomic writes)
            continue
    return count


def stream_stage(
    title: str,
    work: Callable[[Say], str],
    progress: Callable[[float], str] | None = None,
    outcome: StageOutcome | None = None,
    explain: Callable[[str], str] = str,
) -> Iterator[str]:
    """Run ``work(say)`` on a thread; yield the status text (title, messages, progress line) as it changes.

    work : the stage; it may call ``say(message)``, and whatever it logs under the
        ``rvc`` logger on its thread is shown too. It returns a one-line summary.
    progress : called with the seconds elapsed at each poll; returns a live progress line.
    outcome : filled in when the stage ends, so a caller can tell success from failure.
    explain : rewrites a UserError's message for this UI (e.g. CLI flags into field labels).

    A UserError ends the stage with its message; any other exception with its
    type and message (the traceback goes to the server log).
    """
    outcome = outcome if outcome is not None else StageOutcome()
    messages: queue.SimpleQueue[str] = queue.SimpleQueue()
    handler = _ThreadHandler(messages)
    rvc_logger = logging.getLogger("rvc")
    # The stages log their messages at INFO; below that level the records would never be made.
    if rvc_logger.getEffectiveLevel() > logging.INFO:
        rvc_logger.setLevel(logging.INFO)

    def run() -> None:
        handler.thread = threading.get_ident()
        try:
            outcome.summary = work(messages.put)
        except UserError as error:
            outcome.error = explain(str(error))
        except Exception as error:  # shown to the user; the stage thread must not die silently
            log.exception("%s failed", title)
            outcome.error = f"unexpected error: {type(error).__name__}: {error} (the server log has the details)"

    lines = [title]
    started = time.monotonic()

    def drain() -> None:
        while True:
            try:
                lines.append(messages.get_nowait())
            except queue.Empty:
                break
        del lines[1 : max(1, len(lines) - MAX_LINES)]

    def text(live: str | None) -> str:
        drain()
        return "\n".join([*lines, live] if live else lines)

    rvc_logger.addHandler(handler)
    thread = threading.Thread(target=run, name=f"stage: {title}", daemon=True)
    try:
        thread.start()
        yield text(None)
        while thread.is_alive():
            thread.join(POLL_SECONDS)
            seconds = time.monotonic() - started
            live = f"[{elapsed(seconds)}] {progress(seconds) if progress else 'working...'}"
            yield text(live if thread.is_alive() else None)
    finally:
        # A closed browser tab closes this generator; the stage itself runs on to the end.
        rvc_logger.removeHandler(handler)
    drain()
    took = elapsed(time.monotonic() - started)
    lines.append(f"✅ {outcome.summary} (took {took})" if outcome.ok else f"❌ {outcome.error}")
    outcome.lines = list(lines)
    yield "\n".join(lines)

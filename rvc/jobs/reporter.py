"""What a stage reports its progress through: passed in by whoever runs it, never a global handler.

A stage asks its reporter for a bar per part of its work (``bar(task, total, unit)``, then
``update(n)`` and ``close()``) and says lines for the user (``log``); its one-line summary
goes to ``result``. The command line gives a ``PrintReporter`` (tqdm bars on stderr, with an
ETA), ``--json-progress`` an ``EventReporter`` (``@@rvc`` progress and log events, on stdout and
into the job's events file), a library caller or a test the silent ``Reporter``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol

from rvc.train.events import LogEvent, ProgressEvent
from rvc.train.progress import ProgressWriter

EVENT_INTERVAL_S = 0.5  # at most two progress events a second per bar: a 10-hour extract stays a few MB
BYTES = "B"  # the unit of a bar that counts bytes (a download): shown as MB and MB/s


class Bar(Protocol):
    """One part of a stage's work: ``update(n)`` as items finish, ``close()`` at the end."""

    def update(self, n: int = 1) -> Any: ...

    def close(self) -> Any: ...


class _SilentBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class Reporter:
    """A reporter that stays silent; the base of the others."""

    def __init__(self) -> None:
        self.summary: str | None = None  # the stage's one-line result, once it has one

    def bar(self, task: str, total: int, unit: str = "item") -> Bar:
        """Return the bar of a part of the work with ``total`` items."""
        return _SilentBar()

    def log(self, message: str) -> None:
        """Tell the user ``message``."""

    def result(self, summary: str) -> None:
        """Say the stage's one-line result (the end event carries it)."""
        self.summary = summary
        self.log(summary)


class PrintReporter(Reporter):
    """The command line's: tqdm bars (with rate and ETA) on stderr (``bars=False``: none), lines on stdout."""

    def __init__(self, bars: bool = True) -> None:
        super().__init__()
        self.bars = bars
        self._made: list[Bar] = []

    def bar(self, task: str, total: int, unit: str = "item") -> Bar:
        if not self.bars:
            return _SilentBar()
        from tqdm import tqdm

        scaled = {"unit_scale": True, "unit_divisor": 1024} if unit == BYTES else {}
        made = tqdm(total=total, desc=task, unit=unit, file=sys.stderr, dynamic_ncols=True, mininterval=0.5, **scaled)
        self._made.append(made)
        return made

    def close_bars(self) -> None:
        """Close the bars a failed stage left open (closing twice is harmless), so that what is printed
        next, an ``error:`` line, starts a line of its own instead of following the bar's."""
        for made in reversed(self._made):
            made.close()
        self._made.clear()

    def log(self, message: str) -> None:
        print(message, flush=True)


class _EventBar:
    """A bar that emits a ``progress`` event: at its start, at most every EVENT_INTERVAL_S, and at its end."""

    def __init__(self, writer: ProgressWriter, task: str, total: int, unit: str) -> None:
        self.writer, self.task, self.total, self.unit = writer, task, total, unit
        self.done = 0
        self.started = time.monotonic()
        self.last_emit = 0.0
        self._emit()

    def _emit(self) -> None:
        now = time.monotonic()
        self.last_emit = now
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 and self.done else None
        eta = (self.total - self.done) / rate if rate else None
        self.writer.emit(
            ProgressEvent(
                task=self.task,
                done=self.done,
                total=self.total,
                unit=self.unit,
                rate=round(rate, 3) if rate is not None else None,
                eta_s=round(eta, 1) if eta is not None else None,
                elapsed_s=round(elapsed, 2),
            )
        )

    def update(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self.last_emit >= EVENT_INTERVAL_S:
            self._emit()

    def close(self) -> None:
        self._emit()


class EventReporter(Reporter):
    """``--json-progress``: ``@@rvc`` progress and log events through ``writer`` (stdout, and the events file)."""

    def __init__(self, writer: ProgressWriter) -> None:
        super().__init__()
        self.writer = writer

    def bar(self, task: str, total: int, unit: str = "item") -> Bar:
        return _EventBar(self.writer, task, total, unit)

    def log(self, message: str) -> None:
        self.writer.emit(LogEvent(message=message))

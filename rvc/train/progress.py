"""The training-progress protocol: the only place that writes or parses its lines.

The trainer prints one JSON object per line behind ``@@rvc `` on stdout, e.g.
``@@rvc {"v":1,"kind":"step","epoch":3,"step":1200,...}``, and appends the same
object to ``logs/<exp>/progress.jsonl`` so that a reloaded page or a new UI
process can re-attach to a run and redraw every graph. The objects are the typed
events of ``rvc.train.events``; ``rvc.train.run_state`` folds them into a run's state.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rvc.train.events import VERSION, Event, from_json

PREFIX = "@@rvc "

__all__ = [
    "PREFIX",
    "VERSION",
    "Event",
    "ProgressWriter",
    "append_event",
    "format_line",
    "iter_events",
    "parse_line",
    "read_events",
]


def format_line(event: Event) -> str:
    """Return the stdout line of ``event`` (no trailing newline)."""
    return PREFIX + json.dumps(event.to_json(), separators=(",", ":"), allow_nan=False)


def parse_line(line: str) -> Event | None:
    """Return the event on a stdout line, or None for an ordinary log line or a garbled one."""
    line = line.strip()
    if not line.startswith(PREFIX):
        return None
    return _parse_json(line[len(PREFIX) :])


def _parse_json(text: str) -> Event | None:
    try:
        return from_json(json.loads(text))
    except json.JSONDecodeError:
        return None


class ProgressWriter:
    """Emit events to a stream and append them to ``progress.jsonl``; from any thread (the background
    saver emits ``checkpoint``), one whole line at a time."""

    def __init__(self, jsonl_path: Path | None, stream: TextIO | None = None) -> None:
        self.jsonl_path = jsonl_path
        self.stream = stream if stream is not None else sys.stdout
        if jsonl_path is not None:
            jsonl_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def emit(self, event: Event) -> Event:
        """Print ``event`` and append it to the file; return it."""
        line = format_line(event)
        with self._lock:
            print(line, file=self.stream, flush=True)
            if self.jsonl_path is not None:
                append_event(self.jsonl_path, event)
        return event


def append_event(path: Path, event: Event) -> None:
    """Append ``event`` to an events file as one line (for a writer that prints nothing: a job's launcher)."""
    # One write per line in append mode: a reader never sees half a line from us
    # except when the process dies mid-write, which read_events tolerates.
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(format_line(event)[len(PREFIX) :] + "\n")


def read_events(path: Path, offset: int = 0) -> tuple[list[Event], int]:
    """Read the complete events after byte ``offset``; return them and the offset to continue from.

    A last line without its newline (a write in progress, or a killed process) is
    left for the next call; garbled complete lines are skipped.
    """
    if not path.exists():
        return [], offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    events = [event for raw in data[:end].splitlines() if (event := _parse_json(raw.decode("utf-8", "replace")))]
    return events, offset + end


def iter_events(lines: Iterator[str]) -> Iterator[Event]:
    """Yield the events among a process's output lines."""
    for line in lines:
        event = parse_line(line)
        if event is not None:
            yield event

"""The progress protocol round-trips and survives partial and garbled lines."""

from __future__ import annotations

import io
from pathlib import Path

from rvc.train.events import DoneEvent, StartEvent, StepEvent, UnknownEvent
from rvc.train.progress import PREFIX, ProgressWriter, format_line, parse_line, read_events


def test_emit_prints_and_appends_the_same_event(tmp_path: Path) -> None:
    stream = io.StringIO()
    writer = ProgressWriter(tmp_path / "progress.jsonl", stream)
    sent = writer.emit(StepEvent(epoch=3, step=1200, lr=9.9e-5, metrics={"loss/g/total": 31.2}, it_s=4.1, eta_s=812.0))

    printed = stream.getvalue().splitlines()
    assert len(printed) == 1 and printed[0].startswith('@@rvc {"v":1,"kind":"step",')
    assert parse_line(printed[0]) == sent
    events, offset = read_events(tmp_path / "progress.jsonl")
    assert events == [sent] and offset == (tmp_path / "progress.jsonl").stat().st_size


def test_non_finite_values_become_null() -> None:
    event = StepEvent(epoch=1, step=1, metrics={"loss/g/total": float("nan"), "loss/d/total": float("inf")})
    parsed = parse_line(format_line(event))
    assert isinstance(parsed, StepEvent)
    assert parsed.metrics == {"loss/g/total": None, "loss/d/total": None}


def test_ordinary_and_garbled_lines_are_not_events() -> None:
    assert parse_line("epoch 3 done") is None
    assert parse_line("@@rvc {not json") is None
    assert parse_line("@@rvc [1, 2]") is None
    assert parse_line('@@rvc {"kind":"step","epoch":1,"step":2}') is None  # no version: not ours
    assert parse_line('@@rvc {"v":1,"kind":"step","epoch":1}') is None  # a step event without its step


def test_a_newer_trainers_kinds_and_versions_are_kept_as_unknown() -> None:
    later_kind = parse_line('@@rvc {"v":1,"kind":"sample","time":5.0,"audio":"a.wav"}')
    assert isinstance(later_kind, UnknownEvent) and later_kind.kind == "sample"
    assert later_kind.payload() == {"audio": "a.wav"} and later_kind.time == 5.0
    later_version = parse_line('@@rvc {"v":99,"kind":"step","step":"soon"}')
    assert isinstance(later_version, UnknownEvent) and later_version.kind == "step"
    assert format_line(later_kind) == PREFIX + '{"v":1,"kind":"sample","time":5.0,"audio":"a.wav"}'


def test_read_events_waits_for_the_rest_of_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    first = format_line(StartEvent(total_steps=10))[len(PREFIX) :]
    second = format_line(DoneEvent())[len(PREFIX) :]
    path.write_text(first + "\n" + "garbage\n" + second[:10])

    events, offset = read_events(path)
    assert [e.kind for e in events] == ["start"]

    with open(path, "a") as handle:
        handle.write(second[10:] + "\n")
    more, _ = read_events(path, offset)
    assert [e.kind for e in more] == ["done"]

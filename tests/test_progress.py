"""The progress protocol round-trips and survives partial and garbled lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rvc.train.progress import ProgressWriter, format_line, make_event, parse_line, read_events


def test_emit_prints_and_appends_the_same_event(tmp_path: Path) -> None:
    stream = io.StringIO()
    writer = ProgressWriter(tmp_path / "progress.jsonl", stream)
    sent = writer.emit("step", epoch=3, step=1200, lr=9.9e-5, metrics={"loss/g/total": 31.2}, it_s=4.1, eta_s=812)

    printed = stream.getvalue().splitlines()
    assert len(printed) == 1 and printed[0].startswith("@@rvc {")
    assert parse_line(printed[0]) == sent
    events, offset = read_events(tmp_path / "progress.jsonl")
    assert events == [sent] and offset == (tmp_path / "progress.jsonl").stat().st_size


def test_non_finite_values_become_null() -> None:
    event = make_event("step", metrics={"loss/g/total": float("nan"), "loss/d/total": float("inf")})
    assert parse_line(format_line(event))["metrics"] == {"loss/g/total": None, "loss/d/total": None}


def test_ordinary_and_garbled_lines_are_not_events() -> None:
    assert parse_line("epoch 3 done") is None
    assert parse_line("@@rvc {not json") is None
    assert parse_line('@@rvc {"v":99,"kind":"step"}') is None
    assert parse_line('@@rvc {"v":1,"kind":"nonsense"}') is None


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        make_event("stpe")


def test_read_events_waits_for_the_rest_of_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    first = format_line(make_event("start", total_steps=10))[len("@@rvc ") :]
    second = format_line(make_event("done"))[len("@@rvc ") :]
    path.write_text(first + "\n" + "garbage\n" + second[:10])

    events, offset = read_events(path)
    assert [e["kind"] for e in events] == ["start"]

    with open(path, "a") as handle:
        handle.write(second[10:] + "\n")
    more, _ = read_events(path, offset)
    assert [e["kind"] for e in more] == ["done"]

"""The Whisper stage's options, declared once (``rvc.settings``) for ``prepare``'s flags and the Prepare tab.

Light to import (no whisper, no torch): the CLI builds its flags from these declarations and the
web app its labels, while openai-whisper is needed only when a transcription runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from rvc.settings import setting

GROUP = "whisper (optional, with --transcribe)"


@dataclass(frozen=True)
class WhisperOptions:
    """How the Whisper stage runs, and whether the clips are cut at its segments."""

    model: str = setting(
        "base",
        "larger: better text and timestamps, slower (tiny, base, small, medium, large-v3, turbo, ...); "
        "or the path of a .pt checkpoint",
        label="Whisper model",
        flag="--whisper-model",
        metavar="NAME",
        group=GROUP,
    )
    language: str | None = setting(
        None,
        "a language code like en or ja; unset: detected from the first 30 s of each recording",
        label="Language",
        metavar="CODE",
        group=GROUP,
    )
    retranscribe: bool = setting(
        False,
        "transcribe again the recordings already in whisper.json (after changing the model or the language)",
        label="Transcribe again",
        group=GROUP,
    )
    slice_by_whisper: bool = setting(
        False, "cut at Whisper's segments instead of at silences", label="Slice by Whisper's segments", group=GROUP
    )
    slice_start_offset: float = setting(
        0.0,
        "seconds added to each segment's start when cutting at segments (negative: earlier)",
        label="Slice start offset (s)",
        metavar="S",
        group=GROUP,
    )
    slice_end_offset: float = setting(
        0.0,
        "seconds added to each segment's end when cutting at segments (positive: keep a tail)",
        label="Slice end offset (s)",
        metavar="S",
        group=GROUP,
    )
    device: str = setting("auto", "where Whisper runs: auto (cuda when there is one), cpu or cuda", cli=False)

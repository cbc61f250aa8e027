"""The Whisper stage, run for real with a tiny randomly initialised Whisper saved as a real checkpoint."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import whisper
from whisper.model import Whisper
from whisper.tokenizer import LANGUAGES

from rvc.data.transcribe import (
    Segment,
    WhisperOptions,
    load_whisper_model,
    slice_spans,
    text_for_span,
    transcribe_sources,
    write_transcripts,
)
from rvc.errors import UserError
from rvc.experiment import AssetDir, Experiment
from tests.synth import speech_like
from tests.tiny_whisper import save_tiny_whisper

SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send any download to a closed local port, so no test can reach the internet."""
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny multilingual Whisper with random weights, saved in whisper's own .pt format."""
    return save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-random.pt")


@pytest.fixture(scope="module")
def model(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Whisper:
    return load_whisper_model(str(checkpoint), AssetDir(tmp_path_factory.mktemp("assets")), device="cpu")


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """2.9 s of speech-like audio at 16 kHz."""
    return speech_like(16000, phrases=(1.0, 1.0), gap_seconds=0.3)


def _experiment(tmp_path: Path) -> Experiment:
    experiment = Experiment(tmp_path / "logs", "voice")
    experiment.ensure()
    return experiment


def _count_encoder_runs(model: Whisper) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    runs = [0]

    def hook(*_: object) -> None:
        runs[0] += 1

    return runs, model.encoder.register_forward_hook(hook)


def test_checkpoint_loads_with_its_weights(checkpoint: Path, model: Whisper) -> None:
    saved = torch.load(checkpoint, weights_only=True)
    assert dataclasses.asdict(model.dims) == saved["dims"]
    assert model.is_multilingual and not model.training
    for name, tensor in saved["model_state_dict"].items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_transcribes_once_then_reads_whisper_json(tmp_path: Path, checkpoint: Path, clip: np.ndarray) -> None:
    experiment = _experiment(tmp_path)
    source = tmp_path / "input" / "take1.wav"
    duration = len(clip) / 16000

    # model=None: the checkpoint is loaded lazily through load_whisper_model(path).
    first = transcribe_sources(
        {SHA_A: (source, clip)},
        experiment,
        WhisperOptions(model=str(checkpoint), device="cpu"),
        assets=AssetDir(tmp_path / "assets"),
    )
    segments = first[SHA_A]
    assert segments, "the random model always emits at least one segment for this clip"
    for segment in segments:
        assert isinstance(segment, Segment)
        assert 0.0 <= segment.start <= segment.end <= duration

    saved = json.loads(experiment.whisper_json.read_text(encoding="utf-8"))
    entry = saved["sources"][SHA_A]
    assert entry["path"] == str(source)
    assert entry["model"] == str(checkpoint)
    assert entry["language"] in LANGUAGES
    assert [Segment.from_json(s) for s in entry["segments"]] == segments

    # Cached: no model and an assets folder without weights; loading "base" here would raise.
    before = experiment.whisper_json.read_bytes()
    second = transcribe_sources(
        {SHA_A: (source, clip)}, experiment, WhisperOptions(model="base"), model=None, assets=AssetDir(tmp_path / "no")
    )
    assert second == first
    assert experiment.whisper_json.read_bytes() == before


def test_only_new_sources_are_transcribed_and_retranscribe_redoes(
    tmp_path: Path, model: Whisper, clip: np.ndarray
) -> None:
    experiment = _experiment(tmp_path)
    sentinel = [Segment(0.5, 1.5, "cached text")]
    experiment.whisper_json.write_text(
        json.dumps(
            {
                "version": 1,
                "sources": {
                    SHA_A: {"path": "a.wav", "language": "en", "model": "base", "segments": [sentinel[0].to_json()]},
                    "c" * 64: {"path": "c.wav", "language": "en", "model": "base", "segments": []},
                },
            }
        ),
        encoding="utf-8",
    )
    options = WhisperOptions(model="base", language="en", device="cpu")
    runs, handle = _count_encoder_runs(model)
    try:
        result = transcribe_sources(
            {SHA_A: (Path("a.wav"), clip), SHA_B: (Path("b.wav"), clip)}, experiment, options, model=model
        )
        assert result[SHA_A] == sentinel  # read from whisper.json, not transcribed
        assert result[SHA_B] and result[SHA_B] != sentinel
        assert runs[0] > 0
        saved = json.loads(experiment.whisper_json.read_text(encoding="utf-8"))["sources"]
        assert set(saved) == {SHA_A, SHA_B, "c" * 64}  # other sources' entries are kept
        assert saved[SHA_B]["language"] == "en"

        runs[0] = 0
        redone = transcribe_sources(
            {SHA_A: (Path("a.wav"), clip)}, experiment, dataclasses.replace(options, retranscribe=True), model=model
        )
        assert runs[0] > 0
        assert redone[SHA_A] != sentinel
        # The same audio through the same deterministic model gives the same segments.
        assert redone[SHA_A] == result[SHA_B]
        saved = json.loads(experiment.whisper_json.read_text(encoding="utf-8"))["sources"]
        assert [Segment.from_json(s) for s in saved[SHA_A]["segments"]] == redone[SHA_A]
    finally:
        handle.remove()


def test_a_source_whisper_fails_on_is_reported_and_not_cached(tmp_path: Path, model: Whisper, clip: np.ndarray) -> None:
    experiment = _experiment(tmp_path)
    errors: list[tuple[str, Path, str]] = []
    stereo = np.stack([clip, clip])
    result = transcribe_sources(
        {SHA_A: (Path("stereo.wav"), stereo)},
        experiment,
        WhisperOptions(language="en"),
        model=model,
        on_error=lambda sha, path, reason: errors.append((sha, path, reason)),
    )
    assert result == {SHA_A: []}
    assert len(errors) == 1 and errors[0][0] == SHA_A and "stereo.wav" in errors[0][2]
    assert not experiment.whisper_json.exists()


def test_known_model_offline_names_file_url_and_folder(tmp_path: Path) -> None:
    assets = AssetDir(tmp_path / "assets")
    with pytest.raises(UserError) as caught:
        load_whisper_model("tiny", assets, device="cpu")
    message = str(caught.value)
    assert "tiny.pt" in message
    assert whisper._MODELS["tiny"] in message
    assert str(assets.whisper_dir) in message


def test_unknown_model_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"neither a known model name .*large-v3"):
        load_whisper_model("enormous-v9", AssetDir(tmp_path), device="cpu")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not a checkpoint at all", "cannot read Whisper checkpoint"),
        ({"weight": {}}, "not a Whisper checkpoint"),
        ({"dims": {"n_mels": 80}, "model_state_dict": {}}, "does not match"),
        (
            {"dims": {}, "model_state_dict": {}, "extra": Path("x")},
            "cannot read Whisper checkpoint",
        ),  # not weights-only
    ],
)
def test_bad_checkpoint_files_are_refused(tmp_path: Path, content: object, match: str) -> None:
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(UserError, match=match) as caught:
        load_whisper_model(str(path), AssetDir(tmp_path), device="cpu")
    assert str(path) in str(caught.value)


def test_slice_spans_offsets_clamping_and_overlaps() -> None:
    segments = [
        Segment(0.1, 1.0, "one"),  # start offset pushes it below 0 -> clamped
        Segment(1.0, 2.0, "two"),  # overlaps the first after offsets -> they meet in the middle
        Segment(1.2, 1.8, "inside"),  # contained in "two" -> merged into it
        Segment(3.0, 3.0, ""),  # blank: whisper found no speech
        Segment(4.0, 4.5, "three"),
        Segment(5.5, 7.0, "four"),  # runs past the end -> clamped
        Segment(6.9, 7.5, "past"),  # starts after the end once offsets are applied -> dropped
    ]
    spans = slice_spans(segments, duration=6.0, start_offset=-0.2, end_offset=0.3)
    expected = [(0.0, 1.05), (1.05, 2.3), (3.8, 4.8), (5.3, 6.0)]
    # pytest.approx compares flat sequences only (pytest 9 refuses a list of pairs), hence one pair at a time.
    assert len(spans) == len(expected)
    for span, want in zip(spans, expected, strict=True):
        assert span == pytest.approx(want)
    assert slice_spans(segments[:2], duration=6.0) == [(0.1, 1.0), (1.0, 2.0)]
    # A large negative end offset empties short segments.
    assert slice_spans([Segment(1.0, 1.2, "x"), Segment(2.0, 3.0, "y")], 6.0, end_offset=-0.5) == [(2.0, 2.5)]
    for start, end in spans:
        assert 0.0 <= start < end <= 6.0
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_text_for_span_uses_segment_midpoints() -> None:
    segments = [Segment(0.0, 1.0, " Hello"), Segment(1.0, 2.0, "world. "), Segment(2.0, 4.0, "Next"), Segment(4, 4, "")]
    assert text_for_span(segments, 0.0, 2.0) == "Hello world."
    assert text_for_span(segments, 0.5, 1.5) == "Hello"  # midpoints 0.5 and 1.5: [start, end)
    assert text_for_span(segments, 2.9, 5.0) == "Next"
    assert text_for_span(segments, 5.0, 6.0) == ""


def test_write_transcripts_ljspeech_lines(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path)
    clip = experiment.clip_audio_16k("take1_0001")
    write_transcripts(
        experiment,
        train=[(clip, "Hello | there\nfriend"), (Path("audio_40k/take1_0002.wav"), " ok ")],
        validation=[(experiment.clip_audio_16k("take2_0001"), "held\r\nout")],
    )
    assert experiment.transcript_train.read_text(encoding="utf-8") == (
        "audio_16k/take1_0001.wav|Hello there friend\naudio_40k/take1_0002.wav|ok\n"
    )
    assert experiment.transcript_validation.read_text(encoding="utf-8") == "audio_16k/take2_0001.wav|held out\n"
    with pytest.raises(ValueError, match="not inside the experiment folder"):
        write_transcripts(experiment, train=[(tmp_path / "elsewhere.wav", "x")], validation=[])

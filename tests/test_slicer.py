"""The silence slicer, the chunker and the silence trimmer, on synthetic speech-like audio."""

from __future__ import annotations

import numpy as np
import pytest

from rvc.data.slicer import SlicerParams, chunk_span, frame_rms, loudest_frame_db, slice_at_silences
from rvc.data.vad import TimeMap, trim_long_silences
from rvc.errors import UserError
from tests.synth import harmonic_tone, silence, speech_like

SR = 16000
PHRASES = (2.5, 3.5, 2.0)
GAP = 0.8


def _phrase_spans(phrases: tuple[float, ...], gap: float) -> list[tuple[float, float]]:
    """Where speech_like puts its phrases, in seconds."""
    spans, t = [], gap
    for length in phrases:
        spans.append((t, t + length))
        t += length + gap
    return spans


def test_frame_rms_matches_a_direct_computation() -> None:
    audio = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    rms = frame_rms(audio, 400, 160)
    padded = np.pad(audio.astype(np.float64), (200, 200))
    direct = [np.sqrt(np.mean(padded[i * 160 : i * 160 + 400] ** 2)) for i in range(len(rms))]
    assert len(rms) == 1 + len(audio) // 160
    np.testing.assert_allclose(rms, direct, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("max_kept", [0.1, 0.5])
def test_slices_hold_each_phrase_and_little_silence(max_kept: float) -> None:
    audio = speech_like(SR, phrases=PHRASES, gap_seconds=GAP)
    spans = slice_at_silences(audio, SR, SlicerParams(max_silence_kept=max_kept))
    phrases = _phrase_spans(PHRASES, GAP)
    assert len(spans) == len(phrases)
    for (a, b), (start, end) in zip(spans, phrases, strict=True):
        # Each slice covers its phrase (within one 15 ms hop) ...
        assert a / SR <= start + 0.015 and b / SR >= end - 0.015
        # ... and keeps at most max_kept of silence on each side (plus the RMS window's reach).
        assert start - a / SR <= max_kept + 0.07 and b / SR - end <= max_kept + 0.07
    kept = sum(b - a for a, b in spans) / SR
    assert sum(PHRASES) - 0.05 <= kept <= sum(PHRASES) + len(PHRASES) * 2 * (max_kept + 0.07)


def test_short_gaps_do_not_cut() -> None:
    # 0.2 s pauses are shorter than min_interval (0.4 s): one slice.
    audio = speech_like(SR, phrases=(1.0, 1.0, 1.0), gap_seconds=0.2)
    spans = slice_at_silences(audio, SR, SlicerParams())
    assert len(spans) == 1


def test_silence_gives_no_slices_and_short_sound_stays_whole() -> None:
    assert slice_at_silences(silence(3.0, SR), SR, SlicerParams()) == []
    assert slice_at_silences(np.zeros(SR, np.float32), SR, SlicerParams()) == []
    tone = harmonic_tone(1.0, SR)
    assert slice_at_silences(tone, SR, SlicerParams()) == [(0, len(tone))]


def test_slicer_refuses_inconsistent_times() -> None:
    with pytest.raises(UserError, match=r"min_length 0\.3 must be at least min_interval"):
        slice_at_silences(silence(1.0, SR), SR, SlicerParams(min_length=0.3, min_interval=0.4))
    with pytest.raises(UserError, match=r"max_silence_kept 0\.001 must be at least hop"):
        SlicerParams(max_silence_kept=0.001).check()


def test_loudest_frame_level() -> None:
    assert loudest_frame_db(silence(1.0, SR), SR) < -60
    sine = 0.5 * np.sin(2 * np.pi * 250 * np.arange(SR) / SR)
    assert loudest_frame_db(sine, SR) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert loudest_frame_db(np.zeros(100, np.float32), SR) == -np.inf


@pytest.mark.parametrize("length", [1, 500, 2999, 3000, 3001, 3300, 5700, 5701, 9999, 30000, 123457])
def test_chunks_are_bounded_equal_and_cover_the_span(length: int) -> None:
    chunk, overlap, start = 3000, 300, 1000
    chunks = chunk_span(start, start + length, chunk, overlap)
    sizes = [b - a for a, b in chunks]
    assert all(size <= chunk for size in sizes)
    assert max(sizes) - min(sizes) == 0  # equal lengths: no short tail
    if length > chunk:
        assert min(sizes) > (chunk + overlap) / 2
        overlaps = [chunks[i][1] - chunks[i + 1][0] for i in range(len(chunks) - 1)]
        assert all(overlap - 1 <= o <= overlap + 2 for o in overlaps)
    assert chunks[0][0] == start and chunks[-1][1] == start + length  # nothing lost at either end
    assert all(chunks[i + 1][0] <= chunks[i][1] for i in range(len(chunks) - 1))  # no gaps


def test_chunk_overlap_must_be_shorter_than_the_chunk() -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk_span(0, 10000, 3000, 3000)
    assert chunk_span(5, 5, 3000, 300) == []


def test_trim_shortens_long_silences_and_maps_times_back() -> None:
    # Silence 0-2 s, phrase 2-3 s, silence 3-5 s, phrase 5-6 s, silence 6-8 s.
    audio = speech_like(SR, phrases=(1.0, 1.0), gap_seconds=2.0)
    trimmed, timemap = trim_long_silences(audio, SR, threshold_db=-42.0, max_silence=0.5)
    # The silences become ~0.25 s (leading), ~0.5 s (middle) and ~0.25 s (trailing).
    assert len(trimmed) / SR == pytest.approx(0.25 + 1.0 + 0.5 + 1.0 + 0.25, abs=0.1)
    assert timemap.length == len(trimmed)
    # The phrases survive intact: a stretch of the second phrase is the same samples, mapped both ways.
    inside = int(5.5 * SR)
    processed = timemap.to_processed(inside)
    assert timemap.to_source(processed) == inside
    np.testing.assert_array_equal(trimmed[processed : processed + 100], audio[inside : inside + 100])
    # A removed stretch (the middle of the 3-5 s gap) maps to its join, between the phrases.
    join = timemap.to_processed(4 * SR)
    assert timemap.to_processed(int(2.5 * SR)) < join < processed


def test_trim_leaves_short_pauses_and_pure_silence_alone() -> None:
    audio = speech_like(SR, phrases=(1.0, 1.0), gap_seconds=0.3)
    trimmed, timemap = trim_long_silences(audio, SR, -42.0, 0.5)
    np.testing.assert_array_equal(trimmed, audio)
    assert timemap == TimeMap.identity(len(audio))
    quiet = silence(2.0, SR)
    assert len(trim_long_silences(quiet, SR, -42.0, 0.5)[0]) == len(quiet)

"""rvc.audio: decoding many formats, rates, channel counts and bit depths; resampling; filters; writing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rvc.audio import (
    FFMPEG_MISSING,
    AudioReadError,
    blend_gain,
    highpass,
    load_audio,
    peak,
    peak_normalize,
    resample,
    to_mono,
    write_wav,
)
from tests.conftest import FFMPEG, FFMPEG_FORMATS
from tests.synth import harmonic_tone

needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")


def _sine(freq: float, seconds: float, sr: int, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def _dominant_hz(audio: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * sr / len(audio))


def _rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))))


@pytest.mark.parametrize(
    ("ext", "subtype", "sr", "channels", "tolerance"),
    [
        ("wav", "PCM_16", 8000, 1, 2 / 32768),
        ("wav", "PCM_24", 96000, 2, 2 / 2**23),
        ("wav", "FLOAT", 44100, 1, 0.0),
        ("wav", "PCM_U8", 22050, 1, 2 / 128),
        ("wav", "PCM_16", 48000, 6, 2 / 32768),
        ("flac", "PCM_16", 32000, 2, 2 / 32768),
        ("flac", "PCM_24", 88200, 1, 2 / 2**23),
    ],
)
def test_lossless_formats_decode_to_the_written_samples(
    tmp_path: Path, write_audio: Callable[..., Path], ext: str, subtype: str, sr: int, channels: int, tolerance: float
) -> None:
    signal = np.stack([harmonic_tone(0.5, sr, 100 + 50 * c, seed=c) for c in range(channels)], axis=1)
    path = write_audio(tmp_path / f"x.{ext}", signal, sr, subtype)
    audio, rate = load_audio(path, mono=False)
    assert rate == sr
    assert audio.dtype == np.float32 and audio.shape == (channels, len(signal))
    np.testing.assert_allclose(audio, signal.T, atol=tolerance + 1e-7)
    mono, _ = load_audio(path)
    assert mono.shape == (len(signal),)
    np.testing.assert_allclose(mono, signal.mean(axis=1), atol=tolerance + 1e-6)


@pytest.mark.parametrize("ext", ["ogg", *FFMPEG_FORMATS])
def test_every_listed_format_decodes_with_the_right_pitch_length_and_level(
    tmp_path: Path, write_audio: Callable[..., Path], ext: str
) -> None:
    if ext != "ogg" and FFMPEG is None:
        pytest.skip("ffmpeg is not installed (needed to write and read this format)")
    sr = 48000 if ext in ("opus", "webm") else 44100  # opus only runs at 48 kHz
    signal = _sine(440.0, 1.0, sr)
    path = write_audio(tmp_path / f"x.{ext}", np.stack([signal, signal], 1), sr, "VORBIS" if ext == "ogg" else None)
    audio, rate = load_audio(path)
    assert audio.ndim == 1 and audio.dtype == np.float32
    # Lossy codecs add priming samples and pad to whole frames: a few tens of ms at most.
    assert abs(len(audio) / rate - 1.0) < 0.1
    assert abs(_dominant_hz(audio, rate) - 440.0) < 3.0
    assert abs(_rms_db(audio) - _rms_db(signal)) < 1.5


def test_resampling_to_a_target_rate(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    sf.write(path, _sine(1000.0, 1.0, 44100), 44100, subtype="FLOAT")
    audio, rate = load_audio(path, sample_rate=16000)
    assert rate == 16000 and len(audio) == 16000
    assert abs(_dominant_hz(audio, rate) - 1000.0) < 2.0


def test_resampling_removes_what_the_new_rate_cannot_hold() -> None:
    # A 10 kHz tone cannot exist at 16 kHz: a good resampler removes it instead of folding it to 6 kHz.
    audio = resample(_sine(10000.0, 1.0, 48000), 48000, 16000)
    assert len(audio) == 16000
    assert _rms_db(audio[1000:-1000]) < -90
    kept = resample(_sine(7000.0, 1.0, 48000), 48000, 16000)  # within the new band: kept at full level
    assert abs(_rms_db(kept[1000:-1000]) - _rms_db(_sine(7000.0, 1.0, 48000))) < 0.2


def test_resample_keeps_the_channel_layout() -> None:
    stereo = np.stack([_sine(300, 0.5, 48000), _sine(500, 0.5, 48000)])
    out = resample(stereo, 48000, 40000)
    assert out.shape == (2, 20000)
    assert abs(_dominant_hz(out[1], 40000) - 500) < 3


def test_highpass_removes_rumble_and_dc_and_keeps_the_voice_band() -> None:
    sr = 40000
    rumble = _sine(15.0, 2.0, sr)
    voice = _sine(200.0, 2.0, sr)
    assert _rms_db(highpass(rumble, sr)[sr:]) < _rms_db(rumble) - 30
    assert abs(_rms_db(highpass(voice, sr)[sr:]) - _rms_db(voice)) < 0.3
    assert abs(float(highpass(np.full(2 * sr, 0.3, np.float32), sr)[sr:].mean())) < 1e-4


def test_normalisation_helpers() -> None:
    audio = _sine(200.0, 0.5, 16000, amplitude=0.2)
    assert peak(peak_normalize(audio)) == pytest.approx(0.9, abs=1e-6)
    assert peak(peak_normalize(np.zeros(100, np.float32))) == 0.0
    # RVC: x / peak * 0.9 * 0.75 + 0.25 * x
    expected = audio / peak(audio) * 0.9 * 0.75 + 0.25 * audio
    np.testing.assert_allclose(audio * blend_gain(peak(audio)), expected, rtol=1e-5)
    assert to_mono(np.stack([audio, -audio])).max() == 0.0


@pytest.mark.parametrize(("subtype", "tolerance"), [("FLOAT", 0.0), ("PCM_16", 1 / 32768)])
def test_write_wav_round_trips_and_replaces_atomically(tmp_path: Path, subtype: str, tolerance: float) -> None:
    path = tmp_path / "clips" / "c.wav"
    audio = _sine(300.0, 0.25, 16000)
    write_wav(path, audio * 0.1, 16000, subtype)  # type: ignore[arg-type]
    write_wav(path, audio, 16000, subtype, fsync=False)  # type: ignore[arg-type]
    read, rate = sf.read(path, dtype="float32")
    assert rate == 16000 and sf.info(str(path)).subtype == subtype
    np.testing.assert_allclose(read, audio, atol=tolerance + 1e-7)
    assert os.listdir(path.parent) == ["c.wav"]  # no temporary file left behind


def test_pcm16_clips_loud_samples_instead_of_wrapping_around(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    write_wav(path, np.array([1.5, -1.5, 0.5], np.float32), 16000, "PCM_16")
    read, _ = sf.read(path, dtype="float32")
    assert read[0] > 0.99 and read[1] == -1.0 and read[2] == pytest.approx(0.5, abs=1e-4)


def test_bad_files_raise_a_reason(tmp_path: Path) -> None:
    cases = {
        "zero.wav": (b"", "empty"),
        "random.wav": (bytes(np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8)), "unreadable"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(AudioReadError, match=reason) as raised:
            load_audio(tmp_path / name)
        assert raised.value.path == tmp_path / name and not raised.value.retry
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(AudioReadError, match="not a file"):
        load_audio(tmp_path / "folder.wav")
    with pytest.raises(AudioReadError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    for rate in (1, 2**31 - 1):  # 1 Hz: 4000 samples were an hour to resample, and infer ran for as long
        sf.write(tmp_path / f"{rate}.wav", np.zeros(4000, np.float32), rate)
        with pytest.raises(AudioReadError, match=f"damaged: its header says {rate} Hz"):
            load_audio(tmp_path / f"{rate}.wav", sample_rate=16000)
    os.mkfifo(tmp_path / "pipe.wav")  # reading it would block forever
    with pytest.raises(AudioReadError, match="not a file"):
        load_audio(tmp_path / "pipe.wav")


@needs_ffmpeg
def test_without_ffmpeg_the_reason_says_how_to_install_it(
    tmp_path: Path, write_audio: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_audio(tmp_path / "x.m4a", _sine(300.0, 0.5, 44100), 44100)
    wav = write_audio(tmp_path / "x.wav", _sine(300.0, 0.5, 44100), 44100)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # a PATH with no ffmpeg on it
    with pytest.raises(AudioReadError) as raised:
        load_audio(path)
    assert raised.value.reason == FFMPEG_MISSING and raised.value.retry
    assert "apt install ffmpeg" in str(raised.value)
    assert load_audio(wav)[1] == 44100  # what libsndfile reads needs no ffmpeg

"""Shared fixtures: audio files in many formats, and the bad-input set of the prepare stage."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.synth import harmonic_tone, silence, speech_like

# tests.browser's fixtures and helpers assert with explanations; pytest rewrites a module's asserts only
# if told before its first import, and test_app, test_launcher and test_settings import it plainly
# (else pytest warns "Module already imported so cannot be rewritten: tests.browser").
pytest.register_assert_rewrite("tests.browser")

FFMPEG = shutil.which("ffmpeg")

# Fixtures that start the web app or a browser. Tests that use them are marked as one xdist group
# ("browser"; pyproject.toml runs the suite with --dist loadgroup), so they run one at a time on one
# worker: two apps, two Chromiums and their stage jobs at once on a 2-core machine stretch a page's
# waits past their limits. pytest-xdist 3.8 groups by renaming item._nodeid, which pytest 9 no longer
# reads (the marks would have no effect there): requirements-dev.txt keeps pytest below 9.
BROWSER_FIXTURES = {"page", "browser", "app", "app_url"}


# tryfirst: xdist's worker registers its own hook after this conftest, so it runs first and would find no mark.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        starts_apps = module is not None and any(name in vars(module) for name in ("start_app", "app_env"))
        if starts_apps or BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="module")
def one_thread():
    """Small models on a shared CPU run faster on one thread than through OpenMP's barriers.

    A module of small-model tests opts in: ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# extension -> ffmpeg output arguments (codec and container) for the formats libsndfile cannot write.
FFMPEG_FORMATS: dict[str, list[str]] = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    "m4a": ["-c:a", "aac", "-b:a", "128k"],
    "mp4": ["-c:a", "aac", "-b:a", "128k", "-f", "mp4"],
    "aac": ["-c:a", "aac", "-b:a", "128k", "-f", "adts"],
    "alac": ["-c:a", "alac", "-f", "ipod"],
    "opus": ["-c:a", "libopus", "-b:a", "96k"],
    "webm": ["-c:a", "libopus", "-b:a", "96k", "-f", "webm"],
    "wma": ["-c:a", "wmav2", "-b:a", "128k", "-f", "asf"],
    "ac3": ["-c:a", "ac3", "-b:a", "192k"],
    "aiff": ["-c:a", "pcm_s16be", "-f", "aiff"],
}


def encode_with_ffmpeg(audio: np.ndarray, sample_rate: int, path: Path) -> Path:
    """Write ``audio`` (float32 [T] or [T, C]) to ``path`` in the format its extension names, through ffmpeg."""
    assert FFMPEG is not None, "ffmpeg is needed to write this format"
    source = path.with_name(path.name + ".src.wav")
    sf.write(source, audio, sample_rate, subtype="FLOAT")
    ext = path.suffix.lstrip(".").lower()
    command = [FFMPEG, "-nostdin", "-v", "error", "-y", "-i", str(source), *FFMPEG_FORMATS[ext], str(path)]
    subprocess.run(command, check=True, capture_output=True)
    source.unlink()
    return path


@pytest.fixture
def write_audio() -> Callable[..., Path]:
    """Return ``write(path, audio, sample_rate, subtype=None)``: soundfile where it can, else ffmpeg."""

    def write(path: Path, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        ext = path.suffix.lstrip(".").lower()
        if ext in ("wav", "flac", "ogg"):
            sf.write(path, audio, sample_rate, subtype=subtype)
            return path
        return encode_with_ffmpeg(audio, sample_rate, path)

    return write


@dataclass(frozen=True)
class BadInputs:
    """A folder of awkward inputs and what the prepare stage must make of each."""

    folder: Path
    rejected: dict[str, str]  # file name -> a word the rejection reason must contain
    usable: tuple[str, ...]  # file names that must give clips


@pytest.fixture
def bad_inputs(tmp_path: Path) -> BadInputs:
    """The bad-input set: broken, empty, silent, short, clipped and odd files beside two that must work.

    The unreadable-permission case is not here: as root (these tests' usual user)
    chmod 000 does not stop reading, so test_prepare covers it in its own test.
    """
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "zero.wav").write_bytes(b"")
    good = folder / "good.wav"
    sf.write(good, speech_like(16000, phrases=(2.0,), gap_seconds=0.4), 16000, subtype="PCM_16")
    (folder / "truncated.wav").write_bytes(good.read_bytes()[:30])
    (folder / "random.wav").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    sf.write(folder / "silent.wav", silence(3.0, 16000), 16000, subtype="PCM_16")
    sf.write(folder / "short.wav", harmonic_tone(0.2, 16000), 16000, subtype="PCM_16")
    t = np.arange(3 * 16000) / 16000
    clipped = np.clip(3.0 * np.sign(np.sin(2 * np.pi * 220 * t)), -1.0, 1.0)  # a square wave driven past full scale
    sf.write(folder / "clipped.wav", clipped.astype(np.float32), 16000, subtype="PCM_16")
    stereo = np.stack([speech_like(96000, phrases=(2.0,), seed=4), speech_like(96000, phrases=(2.0,), seed=5)], 1)
    sf.write(folder / "hires_96k_24bit_stereo.wav", stereo, 96000, subtype="PCM_24")
    sf.write(folder / "eight_bit.wav", speech_like(16000, phrases=(2.0,), seed=6), 16000, subtype="PCM_U8")
    sf.write(folder / "eight_hz.wav", harmonic_tone(0.2, 16000)[:80], 8)  # a damaged header's rate
    sf.write(folder / "huge_floats.wav", harmonic_tone(1.0, 16000) * 1e30, 16000, subtype="FLOAT")
    (folder / "x.wav").mkdir()
    (folder / "readme.txt").write_text("not audio")
    return BadInputs(
        folder=folder,
        rejected={
            "zero.wav": "empty",
            "truncated.wav": "unreadable",
            "random.wav": "unreadable",
            "silent.wav": "silent",
            "short.wav": "too short (0.2 s)",
            "clipped.wav": "clipped",
            "x.wav": "not a file",
            "readme.txt": "not audio",
            "huge_floats.wav": "e+29 times full scale",  # was 'silent' (float32 squares overflow)
            "eight_hz.wav": "its header says 8 Hz",  # was 'failed: ValueError: Digital filter ...' and a traceback
        },
        usable=("good.wav", "hires_96k_24bit_stereo.wav", "eight_bit.wav"),
    )

"""Voice conversion: a tiny exported model, a tiny HuBERT and a real FAISS index, converting synthetic audio."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.export import export_model, read_exported
from rvc.infer.envelope import frame_rms, mix_rms
from rvc.infer.model import load_voice_model, recorded_embedder
from rvc.infer.pipeline import (
    ConvertOptions,
    VoiceConverter,
    protect_features,
    to_frames,
    window_features,
)
from rvc.infer.pitch import apply_f0_curve, estimate_f0, generator_pitch, read_f0_file
from rvc.infer.retrieval import load_index
from rvc.infer.windows import HOP, WindowConfig, plan_windows, run_windowed
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from tests.fake_experiment import save_tiny_hubert, tiny_config
from tests.synth import harmonic_tone, silence, speech_like

REPO = Path(__file__).resolve().parents[1]
SR16 = 16000
# Small windows, so a clip of a few seconds is cut several times.
SMALL_WINDOWS = WindowConfig(pad_seconds=0.5, query_seconds=1.0, center_seconds=5.0, max_seconds=6.0)
ONE_PASS = WindowConfig(pad_seconds=0.5, query_seconds=1.0, center_seconds=1000.0, max_seconds=1000.0)


@dataclass(frozen=True)
class Voice:
    model: Path  # exported tiny model recording the tiny HuBERT as its embedder
    index: Path  # FAISS index of the tiny HuBERT's features of a training-like clip
    hubert: Path
    assets: AssetDir
    converter: VoiceConverter


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Voice]:
    """Build the voice once per module; one torch thread (small models on a shared CPU)."""
    from rvc.features.embedder import load_embedder
    from rvc.index import train_ivf, write_index_atomic

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("voice")
    hubert = save_tiny_hubert(root / "hubert", hidden_size=768, layers=1)
    config = tiny_config().model
    torch.manual_seed(0)
    generator = SynthesizerTrnMs768NSFsid(config)
    with torch.no_grad():
        for name, param in generator.named_parameters():
            if ".post." in name:  # the flows' output layers start at zero: give the flow path weight
                param.normal_(0, 0.1)
    model = export_model(
        generator.state_dict(), config, root / "voice.pth", epoch=1, step=10, metadata={"embedder": str(hubert)}
    )
    assets = AssetDir(root / "assets")
    training = speech_like(SR16, phrases=(2.0, 2.0), gap_seconds=0.3, seed=7)
    features = load_embedder(str(hubert), assets).embed(training)
    write_index_atomic(train_ivf(features), root / "voice.index")
    converter = VoiceConverter.load(model, assets, index_path=root / "voice.index", device="cpu")
    yield Voice(model, root / "voice.index", hubert, assets, converter)
    torch.set_num_threads(threads)


def _options(**changes: object) -> ConvertOptions:
    settings: dict = {"f0_method": "pm", "seed": 0, "windows": SMALL_WINDOWS} | changes
    return ConvertOptions(**settings)


# ---------------------------------------------------------------- a whole conversion


def test_converts_a_clip_to_the_models_rate_and_duration(voice: Voice) -> None:
    clip = speech_like(44100, phrases=(1.5,), gap_seconds=0.25)

    first = voice.converter.convert(clip, 44100, _options())
    again = voice.converter.convert(clip, 44100, _options())
    resampled = voice.converter.convert(clip, 44100, _options(output_rate=48000))

    seconds = len(clip) / 44100
    assert first.sample_rate == 40000
    assert abs(len(first.audio) - seconds * 40000) <= 400  # within one hop of the input's duration
    assert abs(len(resampled.audio) - seconds * 48000) <= 480 and resampled.sample_rate == 48000
    assert np.isfinite(first.audio).all() and 0 < np.abs(first.audio).max() <= 0.99
    np.testing.assert_array_equal(first.audio, again.audio)  # seeded: repeatable
    assert len(first.windows) == 1


def test_uses_the_embedder_the_model_records_unless_told(voice: Voice, tmp_path: Path) -> None:
    other = save_tiny_hubert(tmp_path / "other", hidden_size=768, layers=1)

    overridden = VoiceConverter.load(voice.model, voice.assets, embedder=str(other), device="cpu")

    assert voice.converter.embedder.source == voice.hubert.resolve()
    assert overridden.embedder.source == other.resolve()


def test_reads_the_embedder_of_rvc_and_applio_files(voice: Voice, tmp_path: Path) -> None:
    data = torch.load(voice.model, weights_only=True)

    def recorded(**keys: object) -> str:
        edited = {k: v for k, v in data.items() if k not in ("embedder", "embedder_model")} | keys
        torch.save(edited, tmp_path / "edited.pth")
        return recorded_embedder(read_exported(tmp_path / "edited.pth"))

    assert recorded() == "contentvec"  # RVC's files: hubert_base.pt, which is ContentVec
    assert recorded(embedder_model="chinese-hubert-base") == "chinese_hubert_base"  # Applio's spelling
    assert recorded(embedder=None, embedder_model="contentvec") == "contentvec"
    with pytest.raises(UserError, match="--embedder"):
        recorded(embedder_model="custom")


# ---------------------------------------------------------------- content features and retrieval


def test_index_retrieval_changes_the_features_and_rate_zero_leaves_them(voice: Voice) -> None:
    embedder, index = voice.converter.embedder, voice.converter.index
    assert index is not None
    segment = speech_like(SR16, phrases=(1.0,), gap_seconds=0.2, seed=3)
    frames = len(segment) // HOP
    own = to_frames(embedder.embed(segment), frames)

    plain, original = window_features(embedder, segment, frames, index, index_rate=0.0)
    blended, _ = window_features(embedder, segment, frames, index, index_rate=0.75)
    full, _ = window_features(embedder, segment, frames, index, index_rate=1.0)

    np.testing.assert_array_equal(plain, own)
    np.testing.assert_array_equal(original, own)
    assert plain.shape == blended.shape == (frames, 768)
    assert np.abs(blended - own).mean() > 0.01 * np.abs(own).mean()
    np.testing.assert_allclose(blended, 0.75 * full + 0.25 * own, rtol=1e-4, atol=1e-4)

    # Retrieval pulls each frame towards the training vectors.
    def distance_to_index(features: np.ndarray) -> float:
        distances, _ = index.index.search(np.ascontiguousarray(features), 1)
        return float(np.mean(distances))

    assert distance_to_index(full) < distance_to_index(blended) < distance_to_index(own)


def test_retrieval_weights_neighbours_by_inverse_squared_distance(voice: Voice) -> None:
    index = voice.converter.index
    assert index is not None
    vectors = index.vectors
    # A query equal to a stored vector is that vector (distance 0 takes all the weight).
    np.testing.assert_allclose(index.retrieve(vectors[:3]), vectors[:3], atol=1e-5)
    query = vectors[:4] + np.random.default_rng(0).normal(0, 0.5, vectors[:4].shape).astype(np.float32)
    distances, ids = index.index.search(query, 8)
    weights = 1 / distances**2
    weights /= weights.sum(axis=1, keepdims=True)
    expected = np.einsum("tk,tkd->td", weights, vectors[ids])
    np.testing.assert_allclose(index.retrieve(query), expected, rtol=1e-4, atol=1e-5)


def test_protect_keeps_the_encoders_features_on_unvoiced_frames() -> None:
    features = np.ones((4, 3), dtype=np.float32)
    original = np.zeros((4, 3), dtype=np.float32)
    f0 = np.array([0.0, 120.0, 0.5, 300.0])

    protected = protect_features(features, original, f0, protect=0.2)

    np.testing.assert_allclose(protected[:, 0], [0.2, 1.0, 0.2, 1.0])
    assert protect_features(features, original, f0, protect=0.5) is features  # 0.5 turns it off, as RVC


# ---------------------------------------------------------------- pitch


def test_plus_twelve_semitones_doubles_the_f0_stage(voice: Voice) -> None:
    tone = harmonic_tone(1.0, SR16, 200.0)
    frames = len(tone) // HOP
    estimate = estimate_f0(voice.converter.estimator("harvest"), tone, frames)
    voiced = estimate > 0

    coarse, f0 = generator_pitch(estimate, semitones=12)
    base_coarse, base = generator_pitch(estimate, semitones=0)

    assert voiced.mean() > 0.8
    assert np.median(estimate[voiced]) == pytest.approx(200.0, rel=0.02)
    np.testing.assert_allclose(f0, 2 * base, rtol=1e-6)
    assert (f0[~voiced] == 0).all()
    assert (coarse[voiced] > base_coarse[voiced]).all()


def _fed_f0(converter: VoiceConverter, audio: np.ndarray, options: ConvertOptions) -> np.ndarray:
    """Run a conversion and return the f0 the generator's decoder received (all windows, in order)."""
    seen: list[np.ndarray] = []

    def grab(module: torch.nn.Module, args: tuple) -> None:
        seen.append(args[1][0].float().cpu().numpy())

    handle = converter.model.generator.dec.register_forward_pre_hook(grab)
    try:
        converter.convert(audio, SR16, options)
    finally:
        handle.remove()
    return np.concatenate(seen)


def test_plus_twelve_semitones_doubles_the_f0_fed_to_the_generator(voice: Voice) -> None:
    tone = harmonic_tone(1.5, SR16, 200.0)

    base = _fed_f0(voice.converter, tone, _options())
    octave = _fed_f0(voice.converter, tone, _options(pitch=12))

    voiced = base > 0
    assert np.median(base[voiced]) == pytest.approx(200.0, rel=0.03)
    np.testing.assert_allclose(octave, 2 * base, rtol=1e-5)


def test_an_f0_file_replaces_the_pitch_it_covers(voice: Voice, tmp_path: Path) -> None:
    curve_file = tmp_path / "f0.txt"
    curve_file.write_text("# seconds,Hz\n0.5,300\n0.7,150\n\n")
    curve = read_f0_file(curve_file)
    tone = harmonic_tone(1.0, SR16, 200.0)

    fed = _fed_f0(voice.converter, tone, _options(pitch=12, f0_file=curve_file, windows=ONE_PASS))

    context = ONE_PASS.pad_samples // HOP  # the decoder also renders the context before the input
    on_curve = fed[context + 50 : context + 71]
    np.testing.assert_allclose(on_curve, np.linspace(300, 150, 21), rtol=1e-5)  # as written: not shifted
    assert np.median(fed[context + 20 : context + 45]) == pytest.approx(400.0, rel=0.03)  # shifted estimate
    np.testing.assert_allclose(apply_f0_curve(np.zeros(3, np.float32), curve, first_frame=49), [0, 300, 292.5])


def test_a_bad_f0_file_is_named_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "f0.csv"
    bad.write_text("0.0,100\n0.1;abc\n")
    with pytest.raises(UserError, match=r"f0\.csv, line 2: expected 'seconds,Hz'"):
        read_f0_file(bad)


# ---------------------------------------------------------------- long inputs


def _gapped(seconds: float, gaps: list[float], seed: int = 0) -> np.ndarray:
    """Loud noise with 0.2 s near-silent gaps starting at ``gaps`` (seconds)."""
    audio = 0.3 * np.random.default_rng(seed).standard_normal(round(seconds * SR16)).astype(np.float32)
    for start in gaps:
        first = round(start * SR16)
        audio[first : first + round(0.2 * SR16)] = silence(0.2, SR16)
    return audio


def test_long_inputs_are_planned_in_bounded_windows_cut_at_quiet_points() -> None:
    config = WindowConfig()  # RVC's fp32 settings: cut near every 38 s, within 6 s
    gaps = [35.0 + 38.0 * k for k in range(15)]
    audio = _gapped(600.0, gaps)

    windows = plan_windows(audio, config)

    assert len(windows) == 16
    assert windows[0].start == 0 and windows[-1].end == len(audio)
    assert all(a.end == b.start and b.start % HOP == 0 for a, b in itertools.pairwise(windows))
    for window, gap in zip(windows[1:], gaps, strict=True):
        assert gap * SR16 <= window.start <= (gap + 0.2) * SR16  # the cut lies in the quiet gap
    longest = max(window.segment_samples for window in windows) / SR16
    assert longest <= config.longest_window_seconds
    assert longest < 0.1 * len(audio) / SR16


def test_windows_stitch_exactly(voice: Voice) -> None:
    from rvc.audio import resample

    audio = speech_like(SR16, phrases=(4.0, 5.0, 3.0, 4.0), gap_seconds=0.5)

    def render(segment: np.ndarray, window: object) -> np.ndarray:
        return resample(segment, SR16, 40000)  # a time-exact stand-in for the generator: 400 samples a frame

    stitched, windows = run_windowed(audio, SMALL_WINDOWS, render, hop=400)
    whole = resample(audio, SR16, 40000)

    assert len(windows) == 4 and len(stitched) == len(whole) == len(audio) * 40000 // SR16
    # No sample is lost, doubled or moved at the cuts: away from the clip's own ends, equal to one pass.
    np.testing.assert_allclose(stitched[400:-400], whole[400:-400], atol=1e-5)


def test_a_long_input_is_converted_window_by_window_with_bounded_memory(voice: Voice) -> None:
    converter = voice.converter
    audio = speech_like(SR16, phrases=(7.0,) * 7, gap_seconds=1.375)  # 60 s, silences every 8.375 s
    generator_frames: list[int] = []
    encoder_samples: list[int] = []
    hooks = [
        converter.model.generator.enc_p.register_forward_pre_hook(
            lambda module, args: generator_frames.append(args[0].shape[1])
        ),
        converter.embedder.model.register_forward_pre_hook(
            lambda module, args: encoder_samples.append(args[0].shape[-1])
        ),
    ]
    windows_done: list[tuple[int, int]] = []
    try:
        result = converter.convert(
            audio, SR16, _options(windows=WindowConfig()), on_window=lambda done, n: windows_done.append((done, n))
        )
    finally:
        for hook in hooks:
            hook.remove()

    assert len(audio) == 60 * SR16 and len(result.audio) == 60 * 40000
    assert len(result.windows) == 2 and windows_done == [(1, 2), (2, 2)]
    cut = result.windows[1].start / SR16
    assert any(start <= cut <= start + 1.375 for start in np.arange(8) * 8.375)  # inside a silence
    bound = WindowConfig().longest_window_seconds
    assert len(generator_frames) == 2 and max(generator_frames) <= bound * 100
    assert len(encoder_samples) == 2 and max(encoder_samples) <= bound * SR16
    assert max(generator_frames) < 0.75 * 6000  # far less than one 60 s pass
    assert np.isfinite(result.audio).all()


def test_windowed_conversion_has_no_seams(voice: Voice) -> None:
    audio = speech_like(SR16, phrases=(4.0, 5.0, 3.0, 4.0), gap_seconds=0.5)

    windowed = voice.converter.convert(audio, SR16, _options(seed=0))
    single = voice.converter.convert(audio, SR16, _options(seed=0, windows=ONE_PASS))
    reseeded = voice.converter.convert(audio, SR16, _options(seed=1, windows=ONE_PASS))

    assert len(windowed.windows) == 4 and len(single.windows) == 1
    assert len(windowed.audio) == len(single.audio)
    rate = windowed.sample_rate
    for window in windowed.windows[1:]:
        cut = window.start * rate // SR16
        near = slice(cut - rate // 10, cut + rate // 10)
        seam_error = np.sqrt(np.mean((windowed.audio[near] - single.audio[near]) ** 2))
        noise_floor = np.sqrt(np.mean((reseeded.audio[near] - single.audio[near]) ** 2))
        # Across a cut the windowed output differs from one pass no more than two runs of the model do.
        assert seam_error <= 1.5 * noise_floor + 1e-6
        assert np.corrcoef(windowed.audio[near], single.audio[near])[0, 1] > 0.8


# ---------------------------------------------------------------- loudness


def test_rms_mix_gives_the_output_the_input_envelope() -> None:
    source = np.concatenate([np.full(16000, 0.5), np.full(16000, 0.05)]).astype(np.float32)
    # librosa.feature.rms as RVC calls it: 1 s frames every 0.5 s, centred on zero padding.
    padded = np.pad(source.astype(np.float64), 8000)
    expected = [np.sqrt(np.mean(padded[t * 8000 : t * 8000 + 16000] ** 2)) for t in range(1 + len(source) // 8000)]
    np.testing.assert_allclose(frame_rms(source, 16000), expected, rtol=1e-6)
    target = 0.2 * np.sin(np.arange(80000) * 0.05).astype(np.float32)  # 2 s at 40 kHz, steady

    kept = mix_rms(source, 16000, target, 40000, 1.0)
    matched = mix_rms(source, 16000, target, 40000, 0.0)

    np.testing.assert_array_equal(kept, target)
    loud, quiet = np.sqrt(np.mean(matched[8000:24000] ** 2)), np.sqrt(np.mean(matched[56000:72000] ** 2))
    assert loud == pytest.approx(0.5, rel=0.1) and quiet < 0.2 * loud


# ---------------------------------------------------------------- refusing bad files


class _RunsAShellCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_refuses_a_malicious_pickle_without_running_it(
    voice: Voice, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rvc.cli import STAGES, main

    marker = tmp_path / "pwned"
    data = torch.load(voice.model, weights_only=True)
    data["info"] = _RunsAShellCommand(f"touch {marker}")
    torch.save(data, tmp_path / "evil.pth")
    clip = tmp_path / "in.wav"
    sf.write(clip, harmonic_tone(0.5, SR16), SR16)

    with pytest.raises(UserError, match="refused") as error:
        load_voice_model(tmp_path / "evil.pth")
    monkeypatch.setitem(STAGES, "infer", "rvc.cli.infer")  # until rvc.cli registers the stage
    status = main(
        [
            *("--assets-dir", str(voice.assets.root), "infer", "--model", str(tmp_path / "evil.pth")),
            *("--input", str(clip), "--output", str(tmp_path / "out.wav"), "--f0", "pm", "--device", "cpu"),
        ]
    )

    assert str(tmp_path / "evil.pth") in str(error.value) and "system" in str(error.value)
    assert status == 2 and "refused" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize(
    ("position", "value", "message"),
    [
        (3, 32, "differ in shape"),  # hidden channels that the weights do not have
        (17, 44000, "100 frames per second"),  # whole kHz, but the decoder's 400-sample frames cannot give it
        (17, 44100, "whole number of kHz"),  # no clip folder or preset has such a rate
        (None, "40k", "18-value"),  # not a config list at all
    ],
)
def test_refuses_a_model_with_a_wrong_config(
    voice: Voice, tmp_path: Path, position: int | None, value: object, message: str
) -> None:
    data = torch.load(voice.model, weights_only=True)
    if position is None:
        data["config"] = value
    else:
        data["config"][position] = value
    if position == 17:  # keep our full config consistent with the list, so only the rate is wrong
        data["model_config"]["sample_rate"] = value
    torch.save(data, tmp_path / "bad.pth")

    with pytest.raises(UserError, match=message) as error:
        VoiceConverter.load(tmp_path / "bad.pth", voice.assets, device="cpu")

    assert str(tmp_path / "bad.pth") in str(error.value)


def test_refuses_applios_other_vocoders_by_name(voice: Voice, tmp_path: Path) -> None:
    data = torch.load(voice.model, weights_only=True)
    data["vocoder"] = "RefineGAN"
    del data["weight"]["dec.conv_post.weight"]  # its decoder's tensors are not RVC's
    torch.save(data, tmp_path / "refinegan.pth")

    with pytest.raises(UserError, match="'RefineGAN' vocoder"):
        load_voice_model(tmp_path / "refinegan.pth")


def test_refuses_an_index_of_another_width(voice: Voice, tmp_path: Path) -> None:
    from rvc.index import train_ivf, write_index_atomic

    write_index_atomic(
        train_ivf(np.random.default_rng(0).standard_normal((50, 256)).astype(np.float32)), tmp_path / "v1.index"
    )
    (tmp_path / "junk.index").write_bytes(b"not an index")

    with pytest.raises(UserError, match="256-d vectors"):
        VoiceConverter.load(voice.model, voice.assets, index_path=tmp_path / "v1.index", device="cpu")
    with pytest.raises(UserError, match="not a readable FAISS index"):
        load_index(tmp_path / "junk.index")


def test_refuses_a_clip_whose_samples_are_not_numbers(voice: Voice, tmp_path: Path) -> None:
    """A float WAV of NaN was 'converted' (status 0) into a clip of nothing; now it is named as damaged."""
    clip = speech_like(SR16, phrases=(0.5,), gap_seconds=0.1).astype(np.float32)
    clip[100:110] = np.nan
    source = tmp_path / "damaged.wav"
    sf.write(source, clip, SR16, subtype="FLOAT")
    with pytest.raises(UserError, match=r"damaged.wav: 10 of its \d+ samples are not numbers"):
        voice.converter.convert_file(source, tmp_path / "out.wav", _options(f0_method="pm"))
    assert not (tmp_path / "out.wav").exists()


def test_refuses_a_clip_of_absurd_float_samples_by_name(voice: Voice, tmp_path: Path) -> None:
    """A float WAV at 1e30 times full scale was 'converted' (status 0) into noise."""
    source = tmp_path / "huge.wav"
    sf.write(source, speech_like(SR16, phrases=(0.5,), gap_seconds=0.1) * 1e30, SR16, subtype="FLOAT")
    with pytest.raises(UserError, match=r"huge\.wav: damaged: samples reach .* times full scale"):
        voice.converter.convert_file(source, tmp_path / "out.wav", _options(f0_method="pm"))
    assert not (tmp_path / "out.wav").exists()


def test_refuses_a_clip_of_no_samples_by_name(voice: Voice, tmp_path: Path) -> None:
    """A WAV header with no samples was 'the input holds no audio samples', naming no file (of a folder's)."""
    source = tmp_path / "header-only.wav"
    sf.write(source, np.zeros(0, np.float32), SR16)
    with pytest.raises(UserError, match=r"header-only\.wav: empty \(no samples\)"):
        voice.converter.convert_file(source, tmp_path / "out.wav", _options(f0_method="pm"))
    assert not (tmp_path / "out.wav").exists()


def test_refuses_settings_out_of_range() -> None:
    for changes, flag in [
        ({"index_rate": 1.5}, "index_rate"),
        ({"protect": 0.7}, "protect"),
        ({"rms_mix": -1}, "rms_mix"),
    ]:
        with pytest.raises(UserError, match=flag):
            _options(**changes).check()


def test_a_batch_reports_unreadable_files_and_goes_on(voice: Voice, tmp_path: Path) -> None:
    from rvc.infer.batch import convert_folder

    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "good.wav", harmonic_tone(0.5, SR16), SR16)
    (tmp_path / "in" / "broken.mp3").write_bytes(b"not audio at all")
    seen: list[tuple[int, int, str]] = []

    report = convert_folder(
        voice.converter,
        tmp_path / "in",
        tmp_path / "in" / "converted",  # inside the input: its results must not become inputs
        _options(),
        on_file=lambda done, total, item: seen.append((done, total, item.source.name)),
    )

    assert seen == [(1, 2, "broken.mp3"), (2, 2, "good.wav")]
    assert [item.source.name for item in report.converted] == ["good.wav"]
    assert report.failed[0].error is not None and "broken.mp3" in report.failed[0].error
    assert sf.info(tmp_path / "in" / "converted" / "good.wav").samplerate == 40000
    with pytest.raises(UserError, match="must differ"):
        convert_folder(voice.converter, tmp_path / "in", tmp_path / "in", _options())


# ---------------------------------------------------------------- the command line


def _cli(*args: str) -> subprocess.Popen[str]:
    """Start ``python -m rvc ...`` (through a shim that registers the infer stage until rvc.cli does)."""
    from rvc.cli import STAGES

    shim = "import sys; from rvc.cli import STAGES, main; STAGES.setdefault('infer', 'rvc.cli.infer'); sys.exit(main())"
    command = [sys.executable, "-m", "rvc"] if "infer" in STAGES else [sys.executable, "-c", shim]
    return subprocess.Popen(
        [*command, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_cli_converts_a_file_and_a_folder(voice: Voice, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    sf.write(inputs / "a.wav", speech_like(44100, phrases=(1.0,), gap_seconds=0.2), 44100)
    sf.write(inputs / "sub" / "b.flac", speech_like(22050, phrases=(1.2,), gap_seconds=0.2, seed=2), 22050)
    (inputs / "notes.txt").write_text("not audio")
    common = ["--f0", "pm", "--device", "cpu", "--pitch", "2", "--index", str(voice.index), "--seed", "1"]
    model = ["--assets-dir", str(voice.assets.root), "infer", "--model", str(voice.model)]

    # Both at once: most of each run is importing torch and transformers. The folder reports as a
    # script sees it (--json-progress): its progress over the files, and the result in the end event.
    single = _cli(*model, "--input", str(inputs / "a.wav"), "--output", str(tmp_path / "a_out.wav"), *common)
    folder = ["--input", str(inputs), "--output", str(tmp_path / "out"), "--rms-mix", "0.5", "--json-progress"]
    batch = _cli(*model, *folder, *common)
    single_out, single_err = single.communicate(timeout=300)
    batch_out, batch_err = batch.communicate(timeout=300)

    assert single.returncode == 0, single_err
    assert batch.returncode == 0, batch_err
    assert "a_out.wav: 1.4 s at 40000 Hz" in single_out
    events = [json.loads(line[len("@@rvc ") :]) for line in batch_out.splitlines() if line.startswith("@@rvc ")]
    progress = [e for e in events if e["kind"] == "progress"]
    assert progress[0]["total"] == 2 and progress[-1]["done"] == 2 and progress[-1]["unit"] == "file"
    assert events[-1]["kind"] == "end" and events[-1]["status"] == "done"
    assert "2 of 2 file(s) converted" in events[-1]["message"]
    for path, seconds in [
        (tmp_path / "a_out.wav", 1.4),
        (tmp_path / "out" / "a.wav", 1.4),
        (tmp_path / "out" / "sub" / "b.wav", 1.6),
    ]:
        info = sf.info(path)
        assert info.samplerate == 40000 and info.subtype == "PCM_16"
        assert abs(info.frames - seconds * 40000) <= 400
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == ["a.wav", "b.wav"]

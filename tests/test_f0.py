"""Tests of rvc.f0: pitch of known tones, frame counts, coarse f0, and RMVPE weights in the real format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.f0 import F0_METHODS, HOP, SAMPLE_RATE, F0Estimator, coarse_f0, create_f0_estimator, n_frames
from tests.synth import harmonic_tone

STATE_DICT_LIST = Path(__file__).parent / "data" / "rmvpe_state_dict.txt"
TONE_HZ = 220.0
ODD_LENGTHS = (0, 1, 333, 1601, 5123)  # samples; none a multiple of the 160-sample hop but 0


def median_cents_error(f0: np.ndarray, true_hz: float, edge_frames: int = 10) -> float:
    """Return the median pitch error in cents over the voiced frames away from the clip edges."""
    inner = f0[edge_frames:-edge_frames]
    voiced = inner[inner > 0]
    assert len(voiced) > 0.8 * len(inner), f"only {len(voiced)} of {len(inner)} frames voiced"
    return float(abs(1200.0 * np.log2(np.median(voiced) / true_hz)))


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    return harmonic_tone(1.2, SAMPLE_RATE, TONE_HZ)


@pytest.fixture(scope="module")
def no_assets(tmp_path_factory: pytest.TempPathFactory) -> AssetDir:
    """An assets folder without any weights (the methods below need none)."""
    return AssetDir(tmp_path_factory.mktemp("assets"))


@pytest.fixture(scope="module")
def estimator_for(no_assets: AssetDir) -> Callable[[str], F0Estimator]:
    """Return a function giving the CPU estimator of a method, each built once for this module."""
    built: dict[str, F0Estimator] = {}

    def get(method: str) -> F0Estimator:
        if method not in built:
            built[method] = create_f0_estimator(method, no_assets, "cpu")
        return built[method]

    return get


# --- frame conventions and coarse f0 ----------------------------------------


def test_n_frames_follows_rvc() -> None:
    assert [n_frames(n) for n in (0, 1, 159, 160, 161, 16000)] == [1, 1, 1, 2, 2, 101]
    assert SAMPLE_RATE // HOP == 100


def test_coarse_f0_maps_50_to_1100_hz_onto_1_to_255() -> None:
    f0 = np.concatenate([[0.0, 10.0, 49.9, 50.0], np.geomspace(50.0, 1100.0, 500), [1100.0, 1500.0, np.nan]])
    coarse = coarse_f0(f0)
    assert coarse.dtype == np.int64
    assert coarse.min() == 1 and coarse.max() == 255
    assert list(coarse[:4]) == [1, 1, 1, 1]  # unvoiced, below range, exactly 50 Hz
    assert list(coarse[-3:]) == [255, 255, 1]  # 1100 Hz, above range, NaN as unvoiced
    ramp = coarse[4:-3]
    assert np.all(np.diff(ramp) >= 0)
    assert len(np.unique(ramp)) > 200  # spreads over the whole range, not a few bins
    # RVC's formula, step by step: mel = 1127 ln(1 + f / 700), scaled so 50 Hz -> 1 and 1100 Hz -> 255.
    voiced = np.geomspace(50.0, 1100.0, 500)
    mel = 1127 * np.log(1 + voiced / 700)
    low, high = 1127 * np.log(1 + 50 / 700), 1127 * np.log(1 + 1100 / 700)
    assert np.array_equal(ramp, np.rint((mel - low) * 254 / (high - low) + 1).astype(np.int64))
    assert coarse_f0(np.array([220.0]))[0] == 60


def test_unknown_method_lists_the_methods(no_assets: AssetDir) -> None:
    with pytest.raises(UserError) as error:
        create_f0_estimator("yin", no_assets)
    assert "yin" in str(error.value)
    for method in F0_METHODS:
        assert method in str(error.value)


def test_a_method_whose_library_is_missing_says_what_to_install(
    no_assets: AssetDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rvc.f0

    monkeypatch.setitem(rvc.f0._LIBRARIES, "pm", ("no_such_pitch_module", "praat-parselmouth"))
    with pytest.raises(UserError, match=r"'pm' needs the praat-parselmouth package.*pip install") as error:
        create_f0_estimator("pm", no_assets)
    assert "rmvpe" in str(error.value) and "harvest" in str(error.value)


# --- every method: accuracy on a steady tone, frame counts --------------------


@pytest.mark.parametrize(
    ("method", "tolerance_cents"), [("harvest", 20), ("crepe-tiny", 20), ("fcpe", 20), ("dio", 50), ("pm", 50)]
)
def test_steady_tone_pitch(
    method: str, tolerance_cents: float, tone: np.ndarray, estimator_for: Callable[[str], F0Estimator]
) -> None:
    estimator = estimator_for(method)
    f0 = estimator.estimate(tone)
    assert f0.dtype == np.float32 and f0.shape == (n_frames(len(tone)),)
    assert not estimator.uses_gpu
    assert median_cents_error(f0, TONE_HZ) < tolerance_cents


@pytest.mark.parametrize("method", ["harvest", "dio", "pm", "crepe", "crepe-tiny", "fcpe"])
def test_frame_count_for_odd_lengths(method: str, estimator_for: Callable[[str], F0Estimator]) -> None:
    estimator = estimator_for(method)
    # crepe (full) costs about 0.1 s a frame on a small CPU: keep its clips short.
    lengths = ODD_LENGTHS[:3] if method == "crepe" else ODD_LENGTHS
    clips = [harmonic_tone(n / SAMPLE_RATE, SAMPLE_RATE, TONE_HZ, seed=n) for n in lengths]
    batch = estimator.estimate_batch(clips)
    assert [len(f0) for f0 in batch] == [n_frames(n) for n in lengths]
    assert all(f0.dtype == np.float32 and np.all(np.isfinite(f0)) and np.all(f0 >= 0) for f0 in batch)
    single = estimator.estimate(clips[-1])
    np.testing.assert_allclose(single, batch[-1], rtol=1e-4, atol=1e-3)


def test_frames_are_centred_on_multiples_of_the_hop(estimator_for: Callable[[str], F0Estimator]) -> None:
    """Frame i describes the audio around sample i * 160: a step half-way between frames 60 and 61 splits there."""
    step = 60 * HOP + HOP // 2
    audio = np.concatenate(
        [harmonic_tone(step / SAMPLE_RATE, SAMPLE_RATE, 200.0), harmonic_tone(0.6, SAMPLE_RATE, 300.0, seed=2)]
    )
    for method in ("harvest", "pm", "fcpe", "crepe-tiny"):
        f0 = estimator_for(method).estimate(audio)
        assert np.all(np.abs(f0[45:61] / 200.0 - 1) < 0.03), (method, f0[45:61])
        assert np.all(np.abs(f0[61:85] / 300.0 - 1) < 0.03), (method, f0[61:85])


# --- RMVPE --------------------------------------------------------------------


def expected_rmvpe_state() -> list[tuple[str, tuple[int, ...]]]:
    """Read the names and shapes of the public rmvpe.pt from the test-data list."""
    entries = []
    for line in STATE_DICT_LIST.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split("\t")
        entries.append((name, tuple(int(d) for d in shape.split(",")) if shape else ()))
    return entries


def random_rmvpe_state(entries: list[tuple[str, tuple[int, ...]]]) -> dict[str, torch.Tensor]:
    """Make a random state dict in rmvpe.pt's format (fp16 tensors; int64 batch counters)."""
    generator = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}
    for name, shape in entries:
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(0, dtype=torch.int64)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=generator).half() + 0.5
        elif len(shape) == 1 and name.endswith(".weight"):  # batch-norm scales near 1 (small ones make denormals)
            state[name] = (1.0 + 0.1 * torch.randn(shape, generator=generator)).half()
        elif len(shape) == 1:  # biases and batch-norm means
            state[name] = (0.1 * torch.randn(shape, generator=generator)).half()
        else:  # scaled so activations stay finite through the deep U-Net
            fan_in = int(np.prod(shape[1:]))
            state[name] = (torch.randn(shape, generator=generator) / np.sqrt(fan_in)).half()
    return state


@pytest.fixture(scope="module")
def rmvpe_assets(tmp_path_factory: pytest.TempPathFactory) -> AssetDir:
    """An assets folder holding a random-weight rmvpe.pt saved with torch.save, as the real one."""
    assets = AssetDir(tmp_path_factory.mktemp("rmvpe_assets"))
    assets.rmvpe_dir.mkdir(parents=True)
    torch.save(random_rmvpe_state(expected_rmvpe_state()), assets.rmvpe_weights)
    return assets


@pytest.fixture(scope="module")
def rmvpe(rmvpe_assets: AssetDir) -> F0Estimator:
    return create_f0_estimator("rmvpe", rmvpe_assets, "cpu")


def test_rmvpe_state_dict_matches_the_public_checkpoint() -> None:
    from rvc.f0.rmvpe_net import RmvpeNet

    with torch.device("meta"):  # names and shapes only
        model = RmvpeNet()
    ours = [(name, tuple(tensor.shape)) for name, tensor in model.state_dict().items()]
    assert ours == expected_rmvpe_state()


def test_rmvpe_loads_weights_and_counts_frames(rmvpe: F0Estimator) -> None:
    assert rmvpe.name == "rmvpe" and not rmvpe.uses_gpu
    clips = [harmonic_tone(n / SAMPLE_RATE, SAMPLE_RATE, TONE_HZ, seed=n) for n in ODD_LENGTHS]
    for clip, f0 in zip(clips, rmvpe.estimate_batch(clips), strict=True):
        assert f0.dtype == np.float32 and f0.shape == (n_frames(len(clip)),)
        assert np.all(np.isfinite(f0)) and np.all(f0 >= 0)
    assert np.any(rmvpe.estimate(clips[-1]) > 0)


def test_rmvpe_batch_equals_one_clip_at_a_time(rmvpe: F0Estimator) -> None:
    # Lengths padding to different multiples of 32 frames, so masks and packing are used.
    clips = [harmonic_tone(s, SAMPLE_RATE, 150.0 + 50 * i, seed=i) for i, s in enumerate((0.5, 0.23, 0.12))]
    batch = rmvpe.estimate_batch(clips)
    for clip, f0 in zip(clips, batch, strict=True):
        np.testing.assert_allclose(f0, rmvpe.estimate(clip), rtol=1e-4, atol=1e-3)


def test_rmvpe_missing_weights_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable when first imported; set its flag too, for runs that imported it earlier.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assets = AssetDir(tmp_path)
    with pytest.raises(UserError) as error:
        create_f0_estimator("rmvpe", assets, "cpu")
    message = str(error.value)
    assert "rmvpe.pt" in message and "lj1995/VoiceConversionWebUI" in message
    assert str(assets.rmvpe_weights) in message


def test_rmvpe_rejects_a_file_that_is_not_rmvpe(tmp_path: Path) -> None:
    assets = AssetDir(tmp_path)
    assets.rmvpe_dir.mkdir(parents=True)
    torch.save({"cnn.weight": torch.zeros(3, 16, 3, 3)}, assets.rmvpe_weights)
    with pytest.raises(UserError, match=r"does not hold RMVPE weights"):
        create_f0_estimator("rmvpe", assets, "cpu")
    assets.rmvpe_weights.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"cannot read the RMVPE weights"):
        create_f0_estimator("rmvpe", assets, "cpu")


def test_rmvpe_log_mel_matches_a_librosa_reference() -> None:
    """Our on-device log-mel equals RVC's: centred reflect-padded STFT, periodic Hann, librosa HTK mel."""
    import librosa
    import scipy.signal

    from rvc.f0.rmvpe_net import LogMel

    audio = harmonic_tone(0.3, SAMPLE_RATE, 180.0, noise_db=-20.0)
    padded = np.pad(audio.astype(np.float64), 512, mode="reflect")
    window = scipy.signal.get_window("hann", 1024, fftbins=True)
    frames = np.stack([padded[i * HOP : i * HOP + 1024] * window for i in range(n_frames(len(audio)))])
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=1024, n_mels=128, fmin=30, fmax=8000, htk=True)
    reference = np.log(np.maximum(basis @ np.abs(np.fft.rfft(frames, axis=1)).T, 1e-5))
    ours = LogMel()(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))[0].numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_salience_decoding_is_the_local_weighted_average() -> None:
    from rvc.f0.salience import allowed_bins, local_average_f0

    bins = torch.arange(360, dtype=torch.float32)
    peak_bin = 123.3  # 10 * 2 ** ((1997.38 + 20 * 123.3) / 1200) Hz
    salience = torch.exp(-0.5 * ((bins - peak_bin) / 1.5) ** 2)
    f0, peak = local_average_f0(torch.stack([0.9 * salience, 0.02 * salience]), threshold=0.03)
    expected = 10 * 2 ** ((1997.3794084376191 + 20 * peak_bin) / 1200)
    assert abs(1200 * np.log2(float(f0[0]) / expected)) < 1.0
    assert float(f0[1]) == 0.0  # peak 0.02 is below RVC's threshold 0.03
    assert float(peak[0]) == pytest.approx(0.9, abs=0.02)
    # Outside the search range the peak is not taken: with 50..100 Hz allowed the frame has no salience left.
    f0_limited, _ = local_average_f0(salience[None], 0.03, allowed_bins(50.0, 100.0, torch.device("cpu")))
    assert float(f0_limited[0]) == 0.0

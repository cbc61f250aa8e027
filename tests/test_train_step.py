"""The training step on its own: compiled and plain pieces agree, dry steps train nothing, modes."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from rvc.config.batch import balanced_batch
from rvc.errors import UserError
from rvc.train.batches import ResidentBatches, StreamedBatches, epoch_rows
from rvc.train.data import load_training_set
from rvc.train.graph import set_capturable
from rvc.train.loss_scale import LossScale
from rvc.train.mel import Spectrogram
from rvc.train.models import Models, build_models
from rvc.train.precision import PLANS, resolve_precision
from rvc.train.regions import compile_regions
from rvc.train.step import METRIC_NAMES, StepFunctions, StepMetrics, TrainStep
from rvc.train.validation import HeldOutMel, ValidationSchedule
from tests.fake_experiment import make_extracted_experiment, tiny_config

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    logs = tmp_path_factory.mktemp("step") / "logs"
    experiment = make_extracted_experiment(logs, train_clips=4, validation_clips=1)
    config = tiny_config(batch_size=2)
    cfg = config.model
    data = load_training_set(experiment, "train", cfg.sample_rate, cfg.hop_length)
    torch.manual_seed(0)
    models = build_models(config, CPU)
    return config, models, data


def _fresh(models: Models, config: object) -> Models:
    """Copies of the models with new optimizers (same weights)."""
    copied = build_models(config, CPU)  # type: ignore[arg-type]
    copied.generator.load_state_dict(models.generator.state_dict())
    copied.discriminator.load_state_dict(models.discriminator.state_dict())
    return copied


def _train(config: object, models: Models, data: object, functions: StepFunctions | None, steps: int) -> StepMetrics:
    metrics = StepMetrics(CPU)
    spectrogram = Spectrogram.for_model(config.model)  # type: ignore[attr-defined]
    step = TrainStep(config, models, spectrogram, data, metrics, functions=functions)  # type: ignore[arg-type]
    torch.manual_seed(1)
    for i in range(steps):
        step(torch.tensor([[i % 4, (i + 1) % 4]]))
    return metrics


def _assert_same_losses(got: dict[str, float], expected: dict[str, float]) -> None:
    """Every metric of two runs of the step agrees (to float32 rounding)."""
    for name in METRIC_NAMES:
        assert got[name] == pytest.approx(expected[name], rel=1e-4, abs=1e-6), name


def test_compiled_step_computes_the_plain_steps_losses(setup: tuple) -> None:
    # Traced by Dynamo and differentiated by AOTAutograd as on the GPU, run by PyTorch's kernels
    # (Inductor's C++ build takes minutes here; test_train_gpu.py compiles with Inductor).
    config, models, data = setup
    plain_models, compiled_models = _fresh(models, config), _fresh(models, config)
    plain = _train(config, plain_models, data, None, steps=2)
    functions = StepFunctions.plain(compiled_models.generator, compiled_models.discriminator)
    compiled = _train(config, compiled_models, data, functions.compiled("aot_eager"), steps=2)

    expected, _, _ = plain.read()
    got, _, _ = compiled.read()
    # The second step's losses come from weights the first step updated: the updates agree too.
    _assert_same_losses(got, expected)


def test_a_channels_last_step_computes_the_plain_steps_losses(setup: tuple) -> None:
    """The layout the trainer uses on CUDA, through the whole step (losses, both updates)."""
    config, models, data = setup
    plain_models, channels_last = _fresh(models, config), _fresh(models, config)
    channels_last.generator.get_submodule("dec").channels_last = True
    channels_last.discriminator.get_submodule("discriminators.0").channels_last = True
    plain = _train(config, plain_models, data, None, steps=1)  # the gradients: test_models.py
    got, _, _ = _train(config, channels_last, data, None, steps=1).read()
    expected, _, _ = plain.read()
    _assert_same_losses(got, expected)


def test_regionally_compiled_step_computes_the_plain_steps_losses(setup: tuple) -> None:
    config, models, data = setup
    plain_models, regional_models = _fresh(models, config), _fresh(models, config)
    plain = _train(config, plain_models, data, None, steps=2)
    torch._dynamo.reset()
    generator, discriminator = regional_models.generator, regional_models.discriminator
    marked = compile_regions(generator, discriminator, backend="aot_eager")
    dec = generator.get_submodule("dec")
    # the decoder's blocks, the WaveNets of enc_q and the flows, enc_p's encoder, the nine discriminators
    assert marked == len(dec.resblocks) + 1 + len(generator.get_submodule("flow").flows) // 2 + 1 + 9
    counters.clear()
    regional = _train(config, regional_models, data, None, steps=2)
    assert counters["stats"]["unique_graphs"] >= 6  # Dynamo compiled the blocks, not a silent eager fallback

    expected, _, _ = plain.read()
    got, _, _ = regional.read()
    _assert_same_losses(got, expected)


def test_a_dry_step_computes_losses_but_updates_nothing(setup: tuple) -> None:
    config, models, data = setup
    models = _fresh(models, config)
    before = copy.deepcopy(models.generator.state_dict())
    metrics = StepMetrics(CPU)
    step = TrainStep(config, models, Spectrogram.for_model(config.model), data, metrics)
    step.dry.fill_(True)
    step(torch.tensor([[0, 1]]))
    for name, value in models.generator.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    assert all(float(s["step"]) == 0 for s in models.optimizer_g.state.values())
    means, _, _ = metrics.read()
    assert means["loss/g/mel"] > 0

    step.dry.fill_(False)
    step(torch.tensor([[0, 1]]))
    assert any(not torch.equal(v, before[k]) for k, v in models.generator.state_dict().items())


def test_metrics_average_the_window_and_count_bad_steps_in_a_row() -> None:
    metrics = StepMetrics(CPU)
    values = {name: torch.tensor(2.0) for name in METRIC_NAMES}
    metrics.add(values, torch.tensor(True))
    metrics.add(values | {"loss/g/total": torch.tensor(float("nan"))}, torch.tensor(False))
    metrics.add(values, torch.tensor(False))
    means, in_a_row, total = metrics.read()
    assert means["loss/d/total"] == pytest.approx(2.0)
    assert means["loss/g/total"] == pytest.approx(4.0 / 3)  # the NaN counts as 0
    assert (in_a_row, total) == (2, 2)
    metrics.add(values, torch.tensor(True))
    assert metrics.read()[1:] == (0, 2)


def test_the_learning_rate_reaches_a_capturable_optimizer_as_a_tensor(setup: tuple) -> None:
    config, models, _ = setup
    models = _fresh(models, config)
    set_capturable(models, CPU, True)
    lr = models.optimizer_g.param_groups[0]["lr"]
    assert isinstance(lr, torch.Tensor)
    # The training loop's order: the optimizer steps (no gradients here, so nothing moves), then the
    # scheduler; the scheduler alone would make torch warn that the first learning rate is skipped.
    models.optimizer_g.step()
    models.scheduler_g.step()
    assert models.optimizer_g.param_groups[0]["lr"] is lr  # written in place: a captured graph reads it
    assert float(lr) == pytest.approx(config.train.lr * config.train.lr_gamma)
    set_capturable(models, CPU, False)
    assert models.optimizer_g.param_groups[0]["lr"] == pytest.approx(config.train.lr * config.train.lr_gamma)


@pytest.mark.parametrize("name", ["bf16", "bf16-d", "bf16-tail", "bf16-frame"])
def test_each_precision_plan_runs_its_parts_in_the_dtypes_it_names(setup: tuple, name: str) -> None:
    config, models, data = setup
    precision = PLANS[name]
    planned = build_models(config, CPU, precision)
    planned.generator.load_state_dict(models.generator.state_dict())
    planned.discriminator.load_state_dict(models.discriminator.state_dict())
    generator = planned.generator
    seen: dict[str, torch.dtype] = {}
    hooks = [
        generator.get_submodule(part).register_forward_hook(
            lambda _m, _i, out, part=part: seen.__setitem__(part, (out[0] if isinstance(out, tuple) else out).dtype)
        )
        for part in ("enc_q.proj", "dec.ups.0", "dec.conv_post")
    ]
    batch = [t[:2] for t in (data.phone.float(), data.lengths, data.pitch, data.pitchf)]
    spec = Spectrogram.for_model(config.model).linear(data.wav[:2])
    with precision.autocast(CPU, precision.generator):
        generator(*batch[:2], *batch[2:], spec, batch[1], torch.zeros_like(batch[1]))
    for hook in hooks:
        hook.remove()
    low, fp32 = torch.bfloat16, torch.float32
    expected = {
        "bf16": (low, low, low),
        "bf16-d": (fp32, fp32, fp32),
        "bf16-tail": (low, low, fp32),
        "bf16-frame": (fp32, low, low),
    }[name]
    assert (seen["enc_q.proj"], seen["dec.ups.0"], seen["dec.conv_post"]) == expected

    metrics = StepMetrics(CPU)
    TrainStep(config, planned, Spectrogram.for_model(config.model), data, metrics, precision)(torch.tensor([[0, 1]]))
    means, bad_in_a_row, _ = metrics.read()
    assert bad_in_a_row == 0 and all(torch.isfinite(torch.tensor(v)) for v in means.values())


def test_streamed_batches_copy_each_steps_clips_into_one_window(setup: tuple) -> None:
    _, _, data = setup
    batches = StreamedBatches(data, CPU, micro_batches=1, batch_size=2)
    window = batches.data
    epoch = batches.epoch(torch.tensor([[[3, 1]], [[0, 2]]]))
    for step, rows in enumerate(([3, 1], [0, 2])):
        index = batches.step(epoch, step)
        assert index.tolist() == [[0, 1]] and batches.data is window
        for name in ("wav", "phone", "pitch", "pitchf", "lengths"):
            torch.testing.assert_close(getattr(window, name)[index[0]], getattr(data, name)[rows], rtol=0, atol=0)
    resident = ResidentBatches(data, CPU)
    assert resident.step(resident.epoch(torch.tensor([[[3, 1]]])), 0).tolist() == [[3, 1]]


def test_an_epochs_order_is_the_seeds_and_wraps_to_whole_steps() -> None:
    train = tiny_config(batch_size=2).train
    rows = epoch_rows(5, epoch=3, train=train, world_size=2, steps=2)
    assert rows.shape == (2, 2, 1, 2)
    flat = rows.flatten().tolist()
    assert sorted(flat[:5]) == [0, 1, 2, 3, 4] and flat[5:] == flat[:3]  # every clip, then wrap around
    assert torch.equal(rows, epoch_rows(5, epoch=3, train=train, world_size=2, steps=2))  # a resume sees the same
    assert not torch.equal(rows, epoch_rows(5, epoch=4, train=train, world_size=2, steps=2))


def test_the_loss_scale_halves_on_overflow_doubles_when_stable_and_sleeps_when_dry() -> None:
    scale = LossScale(CPU, enabled=True, init_scale=1024.0, growth_interval=3)
    yes, no = torch.tensor(True), torch.tensor(False)
    scale.update(finite=no, dry=no)
    assert float(scale.scale) == 512.0
    for _ in range(2):
        scale.update(finite=yes, dry=no)
    scale.update(finite=no, dry=yes)  # a warm-up step: nothing changes
    assert (float(scale.scale), float(scale.good_steps)) == (512.0, 2.0)
    scale.update(finite=yes, dry=no)
    assert (float(scale.scale), float(scale.good_steps)) == (1024.0, 0.0)
    # GradScaler's state dict (what states saved before LossScale hold) loads
    scale.load_state_dict({"scale": 256.0, "growth_factor": 2.0, "_growth_tracker": 1})
    assert scale.state_dict() == {"scale": 256.0, "_growth_tracker": 1}
    off = LossScale(CPU, enabled=False)
    assert off.state_dict() == {} and float(off.scale_loss(torch.tensor(3.0))) == 3.0


def test_a_loss_scaled_step_computes_what_an_unscaled_one_does(setup: tuple) -> None:
    config, models, data = setup
    plain, scaled = _fresh(models, config), _fresh(models, config)
    scaled.loss_scale = LossScale(CPU, enabled=True, init_scale=2.0**10)
    expected, _, _ = _train(config, plain, data, None, steps=2).read()
    got, _, _ = _train(config, scaled, data, None, steps=2).read()
    _assert_same_losses(got, expected)


def test_an_fp16_step_trains_and_a_dry_one_leaves_weights_and_scale_alone(setup: tuple) -> None:
    config, models, data = setup
    fp16 = build_models(config, CPU, PLANS["fp16"])
    fp16.generator.load_state_dict(models.generator.state_dict())
    fp16.discriminator.load_state_dict(models.discriminator.state_dict())
    step = TrainStep(config, fp16, Spectrogram.for_model(config.model), data, StepMetrics(CPU), PLANS["fp16"])
    before = copy.deepcopy(fp16.generator.state_dict())
    step.dry.fill_(True)
    step(torch.tensor([[0, 1]]))
    assert float(fp16.loss_scale.scale) == 2.0**16
    for name, value in fp16.generator.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    step.dry.fill_(False)
    scales = []
    for i in range(12):  # as with GradScaler, the first steps may overflow and halve the scale
        step(torch.tensor([[i % 4, (i + 1) % 4]]))
        scales.append(float(fp16.loss_scale.scale))
        if any(not torch.equal(v, before[k]) for k, v in fp16.generator.state_dict().items()):
            break
    else:
        raise AssertionError(f"no fp16 step trained; scales {scales}")
    assert all(s <= 2.0**16 for s in scales)


def test_auto_validation_keeps_to_a_tenth_of_the_time_and_always_ends_with_one() -> None:
    schedule = ValidationSchedule(every=0, last_epoch=100)
    assert schedule.due(1, epoch_s=1.0)  # the first epoch: nothing measured yet
    schedule.done(3.0)  # a validation takes 3 s: the next one after 27 s of training
    due = []
    for epoch in range(2, 101):
        if schedule.due(epoch, 1.0):
            due.append(epoch)
            schedule.done(3.0)
    assert due == [28, 55, 82, 100]  # 27 training seconds for each 3 s validation, and the last epoch
    slow = ValidationSchedule(every=0, last_epoch=10)
    slow.done(3.0)
    assert all(slow.due(epoch, 40.0) for epoch in range(1, 10))  # slow epochs: every one
    fixed = ValidationSchedule(every=5, last_epoch=100)
    assert [e for e in range(1, 21) if fixed.due(e, 1.0)] == [5, 10, 15, 20]


def test_the_config_and_the_memory_estimate_know_every_precision_plan() -> None:
    # rvc.config stays free of torch, so it lists the plans by name; this keeps the lists in step.
    from rvc.config.memory import _memory_key
    from rvc.config.train import PRECISIONS

    assert ("auto", *PLANS) == PRECISIONS
    for name, plan in PLANS.items():
        reduced_generator = plan.generator and plan.dtype != torch.float32
        assert _memory_key(name) == ("bf16" if reduced_generator else "fp32"), name
    assert _memory_key("auto") == "fp32"


def test_auto_precision_is_bf16_tail_where_the_gpu_has_bf16_else_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_precision("auto", torch.device("cpu")) is PLANS["fp32"]
    for has_bf16, plan in ((True, "bf16-tail"), (False, "fp32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True, b=has_bf16: b)
        assert resolve_precision("auto", torch.device("cuda")) is PLANS[plan]
    with pytest.raises(UserError, match="no bf16"):
        resolve_precision("bf16-tail", torch.device("cuda"))  # asked for by name on such a GPU


def test_clips_shorter_than_a_training_slice_are_padded_in_one_read(setup: tuple, tmp_path: Path) -> None:
    config, _, data = setup
    experiment = make_extracted_experiment(tmp_path / "logs", train_clips=4, validation_clips=1)
    cfg = config.model
    padded = load_training_set(experiment, "train", cfg.sample_rate, cfg.hop_length, min_frames=data.max_frames + 5)
    assert padded.max_frames == data.max_frames + 5 and padded.wav.shape[1] == padded.max_frames * cfg.hop_length
    assert torch.equal(padded.lengths, data.lengths)
    assert load_training_set(experiment, "train", cfg.sample_rate, cfg.hop_length, min_frames=1).max_frames == (
        data.max_frames
    )


def test_held_out_batches_split_evenly() -> None:
    assert [balanced_batch(n, 8) for n in (1, 8, 9, 10, 17, 32)] == [1, 8, 5, 5, 6, 8]
    assert balanced_batch(0, 8) == 1


def test_the_held_out_loss_repeats_leaves_the_rng_alone_and_follows_the_weights(setup: tuple) -> None:
    config, models, data = setup
    generator = _fresh(models, config).generator
    held_out = HeldOutMel(generator, Spectrogram.for_model(config.model), data, 3, graphed=True)  # CPU: eager
    assert held_out.batch == 2 and held_out.graph is None
    torch.manual_seed(5)
    first = held_out()
    after = torch.rand(1)
    torch.manual_seed(5)
    assert held_out() == first and torch.equal(torch.rand(1), after)  # same noise, the caller's RNG untouched
    # the first clip as converted, for TensorBoard's sample: its length, finite, not silence
    clip = held_out.first_clip
    assert clip is not None and clip.shape == (1, int(data.lengths[0]) * data.hop_length)
    assert torch.isfinite(clip).all() and clip.abs().sum() > 0
    assert held_out.graph is None and generator.training
    with torch.no_grad():
        generator.get_submodule("dec.conv_post").weight.mul_(0.5)
    assert held_out() != first


def test_a_held_out_pass_that_cannot_be_graphed_runs_eagerly_and_says_why(
    setup: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, models, data = setup
    held_out = HeldOutMel(_fresh(models, config).generator, Spectrogram.for_model(config.model), data, 4, graphed=True)
    held_out.graphed = True  # as on a GPU, where the capture follows the first (eager) pass

    def capture_fails() -> None:
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(held_out, "_capture", capture_fails)
    first = held_out()
    assert held_out.capture_error is not None and "stream is capturing" in held_out.capture_error
    assert not held_out.graphed and held_out.graph is None
    assert held_out() == first  # eager from then on, the same value

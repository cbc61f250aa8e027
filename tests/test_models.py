"""The v2 generator and discriminator: RVC's exact state-dict layout, weight loading, forward passes.

Full-size models are built on the meta device (shapes without memory or compute); real forward
and backward passes use the tiny configuration, which runs the same code with small channels.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rvc.errors import UserError
from rvc.models.attentions import MultiHeadAttention
from rvc.models.commons import rand_slice_segments, slice_segments
from rvc.models.config import ModelConfig
from rvc.models.discriminator import MultiPeriodDiscriminatorV2
from rvc.models.generator import SineGen
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.models.weights import (
    PretrainMismatchError,
    check_state_dict,
    load_pretrain,
    read_state_dict,
    to_parametrized_spelling,
    to_rvc_spelling,
)

DATA = Path(__file__).parent / "data"


pytestmark = pytest.mark.usefixtures("one_thread")


def _reference(name: str) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (DATA / name).read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split("\t")
            rows.append((key, tuple(int(d) for d in shape.split(","))))
    return rows


def _shapes(state_dict: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in state_dict.items()]


@functools.cache
def _meta_generator(sample_rate: int) -> SynthesizerTrnMs768NSFsid:
    """Build a full-size generator on the meta device (shared: tests only read it)."""
    with torch.device("meta"):
        return SynthesizerTrnMs768NSFsid(ModelConfig.for_sample_rate(sample_rate))


def _tiny_generator(sample_rate: int = 40000, seed: int = 0) -> SynthesizerTrnMs768NSFsid:
    torch.manual_seed(seed)
    model = SynthesizerTrnMs768NSFsid(ModelConfig.tiny(sample_rate))
    with torch.no_grad():
        # The flows' output layers start at zero; give them weights so the flow path is exercised.
        for name, param in model.named_parameters():
            if ".post." in name:
                param.normal_(0, 0.1)
    return model


def _batch(cfg: ModelConfig, frames: int = 40, lengths: tuple[int, ...] = (40, 33), seed: int = 1) -> tuple:
    gen = torch.Generator().manual_seed(seed)
    b = len(lengths)
    phone = torch.randn(b, frames, cfg.phone_channels, generator=gen)
    lens = torch.tensor(lengths)
    pitch = torch.randint(1, 256, (b, frames), generator=gen)
    pitchf = 100 + 200 * torch.rand(b, frames, generator=gen)
    pitchf[:, 5:9] = 0  # an unvoiced stretch
    spec = torch.rand(b, cfg.spec_channels, frames, generator=gen)
    speakers = torch.arange(b) % cfg.spk_embed_dim
    return phone, lens, pitch, pitchf, spec, lens, speakers


def _infer(model: SynthesizerTrnMs768NSFsid, seed: int = 7) -> torch.Tensor:
    phone, lens, pitch, pitchf, _, _, speakers = _batch(model.cfg, lengths=(40,))
    torch.manual_seed(seed)
    return model.eval().infer(phone, lens, pitch, pitchf, speakers)[0]


# ----------------------------------------------------------------- layout against RVC


def test_full_size_40k_generator_has_rvcs_exact_keys_and_shapes():
    ours = _shapes(to_rvc_spelling(_meta_generator(40000).state_dict()))
    assert ours == _reference("v2_generator_40k.txt")


def test_discriminator_has_rvcs_exact_keys_and_shapes():
    with torch.device("meta"):
        model = MultiPeriodDiscriminatorV2()
    assert _shapes(to_rvc_spelling(model.state_dict())) == _reference("v2_discriminator.txt")


def test_32k_and_48k_presets_differ_from_40k_only_where_rvcs_do():
    base = dict(_shapes(to_rvc_spelling(_meta_generator(40000).state_dict())))

    def diff(sample_rate: int) -> dict[str, tuple[int, ...]]:
        other = dict(_shapes(to_rvc_spelling(_meta_generator(sample_rate).state_dict())))
        assert other.keys() == base.keys()
        return {k: v for k, v in other.items() if v != base[k]}

    assert diff(32000) == {
        "dec.noise_convs.0.weight": (256, 1, 64),  # source brought down by 8*2*2 = 32
        "dec.ups.0.weight_v": (512, 256, 20),
        "enc_q.pre.weight": (192, 513, 1),  # 1024-point STFT
    }
    assert diff(48000) == {"dec.ups.0.weight_v": (512, 256, 24), "dec.ups.1.weight_v": (256, 128, 20)}


@pytest.mark.parametrize("sample_rate,segment", [(32000, 12800), (40000, 12800), (48000, 17280)])
def test_full_size_forward_shapes_on_meta(sample_rate, segment):
    model = _meta_generator(sample_rate)
    cfg = model.cfg
    with torch.device("meta"):
        phone, lens, pitch, pitchf, spec, spec_lens, speakers = _batch_meta(cfg, frames=50)
        o, ids, x_mask, z_mask, stats = model(phone, lens, pitch, pitchf, spec, spec_lens, speakers)
        audio = model.infer(phone[:1], lens[:1], pitch[:1], pitchf[:1], speakers[:1])[0]
    assert o.shape == (2, 1, segment)
    assert ids.shape == (2,) and x_mask.shape == z_mask.shape == (2, 1, 50)
    assert all(t.shape == (2, 192, 50) for t in stats)
    assert audio.shape == (1, 1, 50 * cfg.hop_length)


def _batch_meta(cfg: ModelConfig, frames: int) -> tuple:
    return (
        torch.zeros(2, frames, 768),
        torch.full((2,), frames),
        torch.zeros(2, frames, dtype=torch.long),
        torch.zeros(2, frames),
        torch.zeros(2, cfg.spec_channels, frames),
        torch.full((2,), frames),
        torch.zeros(2, dtype=torch.long),
    )


# ----------------------------------------------------------------- config


def test_rvc_config_list_is_rvcs_and_round_trips():
    # The list RVC's extract_small_model writes for a v2 40k model.
    rvc_40k = [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, [10, 10, 2, 2], 512,
               [16, 16, 4, 4], 109, 256, 40000]  # fmt: skip
    assert ModelConfig.for_sample_rate(40000).to_rvc_config_list() == rvc_40k
    for sample_rate in (32000, 40000, 48000):
        cfg = ModelConfig.for_sample_rate(sample_rate)
        assert ModelConfig.from_rvc_config_list(cfg.to_rvc_config_list()) == cfg
    tagged = [*rvc_40k[:17], "40k"]
    assert ModelConfig.from_rvc_config_list(tagged) == ModelConfig.for_sample_rate(40000)
    assert ModelConfig.from_dict(ModelConfig.tiny(48000).to_dict()) == ModelConfig.tiny(48000)
    with pytest.raises(UserError, match="18-value"):
        ModelConfig.from_rvc_config_list(rvc_40k[:10])
    with pytest.raises(UserError, match="hop_length"):
        ModelConfig(upsample_rates=(10, 10, 2, 3))
    with pytest.raises(UserError, match="no v2 preset"):
        ModelConfig.for_sample_rate(44100)


# ----------------------------------------------------------------- loading weights


def test_old_and_new_weight_norm_spellings_load_strict_and_agree(tmp_path):
    source = _tiny_generator(seed=3)
    ours = source.state_dict()
    assert any(k.endswith("parametrizations.weight.original0") for k in ours)
    old = tmp_path / "G_2333333.pth"
    torch.save(
        {"model": to_rvc_spelling(ours), "iteration": 2333333, "optimizer": {}, "learning_rate": 1e-4},
        old,
    )
    new = tmp_path / "new_spelling.pth"
    torch.save(ours, new)
    assert any(k.endswith(".weight_g") for k in read_state_dict(old))

    expected = _infer(source)
    for path in (old, new):
        model = _tiny_generator(seed=99)  # different random weights until loaded
        assert not torch.equal(_infer(model), expected)
        load_pretrain(model, path)
        assert torch.equal(_infer(model), expected)
    assert to_parametrized_spelling(to_rvc_spelling(ours)).keys() == ours.keys()


def test_exported_style_weights_with_folded_norm_and_no_enc_q_load(tmp_path):
    source = _tiny_generator(seed=4)
    expected = _infer(source)
    folded = {k: v.half() for k, v in source.remove_weight_norm().state_dict().items() if not k.startswith("enc_q.")}
    assert not any("weight_g" in k or "parametrizations" in k for k in folded)
    path = tmp_path / "exported.pth"
    torch.save({"weight": folded, "config": source.cfg.to_rvc_config_list(), "version": "v2"}, path)
    model = _tiny_generator(seed=5)
    with pytest.raises(PretrainMismatchError, match="enc_q"):
        load_pretrain(model, path)
    load_pretrain(model, path, ignore_missing=("enc_q.",))
    torch.testing.assert_close(_infer(model), expected, atol=2e-3, rtol=0)  # fp16 storage


def test_48k_pretrain_into_40k_model_names_the_sample_rate(tmp_path):
    path = tmp_path / "f0G48k.pth"
    torch.save({"model": to_rvc_spelling(_tiny_generator(48000).state_dict())}, path)
    with pytest.raises(PretrainMismatchError) as err:
        load_pretrain(_tiny_generator(40000), path)
    message = str(err.value)
    assert "f0G48k.pth" in message and "dec.ups.0.weight_v" in message
    assert "48k" in err.value.cause and "40k" in err.value.cause and "sample rate" in err.value.cause
    # The same diagnosis on the full-size models (shapes only, on the meta device).
    with pytest.raises(PretrainMismatchError, match="48k v2 model"):
        check_state_dict(_meta_generator(40000), _meta_generator(48000).state_dict(), source="f0G48k.pth")
    with pytest.raises(PretrainMismatchError, match="32k v2 model"):
        check_state_dict(_meta_generator(48000), _meta_generator(32000).state_dict(), source="f0G32k.pth")


def test_v1_generator_is_named_as_v1():
    state = _meta_generator(40000).state_dict()
    state["enc_p.emb_phone.weight"] = torch.empty(192, 256, device="meta")
    with pytest.raises(PretrainMismatchError, match="v1") as err:
        check_state_dict(_meta_generator(40000), state, source="f0G40k.pth")
    assert "enc_p.emb_phone.weight: file [192, 256], model [192, 768]" in str(err.value)


def test_pretrain_without_pitch_is_named():
    state = {k: v for k, v in _tiny_generator().state_dict().items() if "emb_pitch" not in k and "m_source" not in k}
    with pytest.raises(PretrainMismatchError, match="without pitch guidance"):
        check_state_dict(_tiny_generator(), state, source="G40k.pth")


def test_discriminator_mixups_are_named():
    with torch.device("meta"):
        v2 = MultiPeriodDiscriminatorV2()
        v1 = MultiPeriodDiscriminatorV2(periods=(2, 3, 5, 7, 11, 17))
    with pytest.raises(PretrainMismatchError, match="v1 discriminator"):
        check_state_dict(v2, v1.state_dict(), source="f0D40k.pth")
    with pytest.raises(PretrainMismatchError, match="generator"):
        check_state_dict(v2, _meta_generator(40000).state_dict(), source="f0G40k.pth")
    with pytest.raises(PretrainMismatchError, match="discriminator"):
        check_state_dict(_meta_generator(40000), v2.state_dict(), source="f0D40k.pth")


class _NotATensor:
    pass


def test_unsafe_or_damaged_files_are_refused(tmp_path):
    pickled = tmp_path / "evil.pth"
    torch.save({"model": _NotATensor()}, pickled)
    with pytest.raises(UserError, match=r"evil\.pth"):
        read_state_dict(pickled)
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"not a zip file")
    with pytest.raises(UserError, match=r"damaged\.pth"):
        read_state_dict(damaged)
    text = tmp_path / "notes.pth"  # torch's legacy reader met this as a KeyError (memo 105, 'i')
    text.write_text("hi\n")
    with pytest.raises(UserError, match=r"notes\.pth: not a readable PyTorch file"):
        read_state_dict(text)
    with pytest.raises(UserError, match=r"missing\.pth does not exist"):
        read_state_dict(tmp_path / "missing.pth")


# ----------------------------------------------------------------- running the models


def test_tiny_generator_trains_forward_and_backward():
    model = _tiny_generator().train()
    cfg = model.cfg
    batch = _batch(cfg)
    o, ids, x_mask, z_mask, (z, z_p, m_p, logs_p, m_q, logs_q) = model(*batch)
    assert o.shape == (2, 1, cfg.segment_size) and cfg.segment_size == cfg.segment_frames * cfg.hop_length
    assert ids.shape == (2,) and ids.dtype == torch.long
    assert 0 <= int(ids[1]) <= 33 - cfg.segment_frames  # inside the shorter item's valid frames
    assert x_mask.shape == z_mask.shape == (2, 1, 40)
    assert all(t.shape == (2, cfg.inter_channels, 40) for t in (z, z_p, m_p, logs_p, m_q, logs_q))
    assert float(z_mask[1, 0, 33:].abs().sum()) == 0

    loss = o.abs().mean() + ((z_p - m_p) ** 2 * torch.exp(-2 * logs_p)).mean() + logs_q.mean()
    loss.backward()
    for name in ("dec.conv_pre.weight", "enc_q.pre.weight", "enc_p.emb_phone.weight", "flow.flows.0.post.weight",
                 "emb_g.weight", "dec.ups.0.parametrizations.weight.original1"):  # fmt: skip
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_forward_keeps_no_tensors_on_modules():
    model = _tiny_generator().train()
    model(*_batch(model.cfg))[0].sum().backward()
    held = [
        f"{name}.{attr}"
        for name, module in model.named_modules()
        for attr, value in vars(module).items()
        if isinstance(value, torch.Tensor)
    ]
    assert held == []


def test_infer_renders_frames_times_hop_and_skip_head():
    model = _tiny_generator()
    audio = _infer(model)
    assert audio.shape == (1, 1, 40 * model.cfg.hop_length)
    assert torch.isfinite(audio).all() and audio.abs().max() <= 1
    phone, lens, pitch, pitchf, _, _, speakers = _batch(model.cfg, lengths=(40,))
    chunk = model.infer(phone, lens, pitch, pitchf, speakers, skip_head=30, return_length=8)[0]
    assert chunk.shape == (1, 1, 8 * model.cfg.hop_length)


def test_remove_weight_norm_keeps_the_output():
    model = _tiny_generator()
    before = _infer(model)
    after = _infer(model.remove_weight_norm())
    assert not any("parametrizations" in k for k in model.state_dict())
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)


def test_discriminator_scores_real_and_generated_with_nine_discriminators():
    torch.manual_seed(0)
    model = MultiPeriodDiscriminatorV2().eval()
    y, y_hat = torch.randn(1, 1, 600) * 0.1, torch.randn(1, 1, 600) * 0.1
    with torch.no_grad():
        y_d_rs, y_d_gs, fmap_rs, fmap_gs = model(y, y_hat)
        alone_score, alone_fmap = model.discriminators[3](y_hat)  # period 5, run by itself
    assert len(y_d_rs) == len(y_d_gs) == len(fmap_rs) == len(fmap_gs) == 9
    assert [len(f) for f in fmap_rs] == [7] + [6] * 8
    assert all(r.shape == g.shape and r.shape[0] == 1 for r, g in zip(y_d_rs, y_d_gs, strict=True))
    torch.testing.assert_close(y_d_gs[3], alone_score)
    torch.testing.assert_close(fmap_gs[3][-2], alone_fmap[-2])
    assert not torch.equal(y_d_rs[3], y_d_gs[3])


# ----------------------------------------------------------------- building blocks


def _relative_attention_by_definition(attn: MultiHeadAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """VITS relative attention written out entry by entry."""
    b, c, t = x.shape
    h, d, w = attn.n_heads, attn.k_channels, attn.window_size
    q = attn.conv_q(x).view(b, h, d, t) / math.sqrt(d)
    k = attn.conv_k(x).view(b, h, d, t)
    v = attn.conv_v(x).view(b, h, d, t)
    ek, ev = attn.emb_rel_k[0], attn.emb_rel_v[0]
    scores = torch.zeros(b, h, t, t)
    for i in range(t):
        for j in range(t):
            scores[:, :, i, j] = (q[..., i] * k[..., j]).sum(-1)
            if abs(j - i) <= w:
                scores[:, :, i, j] += (q[..., i] * ek[j - i + w]).sum(-1)
    p = torch.softmax(scores.masked_fill(mask == 0, -1e4), dim=-1)
    out = torch.zeros(b, h, d, t)
    for i in range(t):
        for j in range(t):
            rel = ev[j - i + w] if abs(j - i) <= w else torch.zeros(d)
            out[..., i] += p[:, :, i, j, None] * (v[..., j] + rel)
    return attn.conv_o(out.reshape(b, c, t))


@pytest.mark.parametrize("length", [6, 25])  # shorter and longer than the +-10 window
def test_relative_attention_matches_its_definition(length):
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 8, n_heads=2, window_size=10)
    x = torch.randn(2, 8, length)
    x_mask = torch.ones(2, 1, length)
    x_mask[1, :, length - 2 :] = 0
    mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, mask), _relative_attention_by_definition(attn, x, mask))


def test_random_slices_are_windows_of_each_item():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 50)
    lengths = torch.tensor([50, 20, 12])
    sliced, starts = rand_slice_segments(x, lengths, 12)
    assert sliced.shape == (3, 4, 12)
    assert int(starts[1]) <= 8 and int(starts[2]) == 0
    for i in range(3):
        s = int(starts[i])
        assert torch.equal(sliced[i], x[i, :, s : s + 12])
    audio = torch.randn(3, 50 * 10)
    assert torch.equal(slice_segments(audio, starts * 10, 120)[2], audio[2, int(starts[2]) * 10 :][:120])


def test_sine_source_follows_f0_with_continuous_phase():
    sample_rate, upp = 16000, 160
    f0 = torch.tensor([[0.0] * 5 + [200.0] * 20 + [310.0] * 20 + [0.0] * 5])
    torch.manual_seed(0)
    clean, uv = SineGen(sample_rate, noise_std=0.0)(f0, upp)  # no noise on voiced samples
    assert clean.shape == uv.shape == (1, 50 * upp, 1)
    # Phase by definition: the running sum of per-sample f0 / sample_rate, samples counted from 1.
    per_sample = np.repeat(f0[0].numpy().astype(np.float64), upp) / sample_rate
    expected = 0.1 * np.sin(2 * np.pi * np.cumsum(per_sample))
    voiced = uv[0, :, 0].numpy() > 0
    assert voiced.sum() == 40 * upp
    # One sample of phase slip at 310 Hz would be an error of about 0.012.
    assert np.abs(clean[0, :, 0].numpy() - expected)[voiced].max() < 1e-4
    noisy, _ = SineGen(sample_rate)(f0, upp)
    assert 0.02 < noisy[0, ~voiced, 0].std() < 0.05  # unvoiced: noise at sine_amp / 3
    assert 0.001 < (noisy - clean)[0, voiced, 0].std() < 0.005  # voiced: faint noise (std 0.003)


def test_channels_last_decoder_and_scale_discriminator_compute_the_same():
    """The trainer's layout on CUDA ((N, C, 1, L) channels-last, rvc/models/commons.Conv1d): same
    audio, scores, feature maps and gradients as the (N, C, L) layout the files were trained in."""
    torch.manual_seed(0)
    model = _tiny_generator().train()
    dec = model.dec
    x = torch.randn(2, model.cfg.inter_channels, 12)
    f0 = torch.full((2, 12), 140.0)
    g = torch.randn(2, model.cfg.gin_channels, 1)
    scale = MultiPeriodDiscriminatorV2(divisor=16).discriminators[0]
    audio = torch.randn(2, 1, 12 * model.cfg.hop_length) * 0.1

    def run(channels_last: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        dec.channels_last = scale.channels_last = channels_last
        for p in (*dec.parameters(), *scale.parameters()):
            p.grad = None
        torch.manual_seed(1)  # the sine source's noise
        wave = dec(x, f0, g=g)
        score, fmap = scale(wave + audio)
        assert fmap[0].dim() == (4 if channels_last else 3)
        assert fmap[0].is_contiguous(memory_format=torch.channels_last) or not channels_last
        (wave.square().mean() + score.square().mean() + sum(f.abs().mean() for f in fmap)).backward()
        grads = [p.grad.clone() for p in (*dec.parameters(), *scale.parameters())]
        return [wave, score, *(f.reshape(f.shape[0], f.shape[1], -1) for f in fmap)], grads

    outputs, grads = run(False)
    outputs_cl, grads_cl = run(True)
    assert outputs_cl[0].shape == outputs[0].shape == (2, 1, 12 * model.cfg.hop_length)
    for a, b in zip(outputs + grads, outputs_cl + grads_cl, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)

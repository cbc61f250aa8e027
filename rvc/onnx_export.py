"""An exported model's inference generator as ONNX, for ONNX Runtime and real-time voice changers.

The graph takes what w-okada's voice changer feeds an RVC ONNX model (its exporter's names), at
100 frames/s, T frames long (the time axes are dynamic; one item per run)::

    feats  float32 [1, T, 768]  content features (HuBERT / ContentVec layer 12, repeated x2 to 100/s)
    p_len  int64   [1]          frames to convert (T)
    pitch  int64   [1, T]       coarse f0 in 1..255 (0 unvoiced)
    pitchf float32 [1, T]       f0 in Hz (0 unvoiced)
    sid    int64   [1]          speaker id
    ->
    audio  float32 [1, 1, T * hop]  in [-1, 1] at the model's sample rate

and two more outputs, ``prior_noise`` [1, C, T] and ``source_noise`` [1, T * hop, 1]: the noise the
run drew (in the graph, as PyTorch does), so that a caller can reproduce a run exactly with
PyTorch (``SynthesizerTrnMs768NSFsid.infer(..., prior_noise=, source_noise=)``); those that ask
for ``audio`` alone (the voice changers) never see them. The RVC WebUI's own export instead takes
the prior noise as an input named ``rnd`` and names the others phone/phone_lengths/ds, which
w-okada's changer does not feed.

Opset 17: what w-okada's exporter writes; ONNX Runtime's CPU and CUDA providers run every
operator of it. The model metadata holds, under ``metadata``, the JSON w-okada's changer reads to
set a model up (sample rate, f0, feature width, output layer and encoder), and under
``rvc_studio`` ours (the .pth's name, hash, epochs, encoder and pitch method).

``onnx`` and ``onnxruntime`` are optional (the ``onnx`` extra, and the dev requirements): only this
module imports them, and says what to install when they are missing.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rvc import __version__
from rvc.errors import UserError
from rvc.export import ExportedModel, build_generator, read_exported
from rvc.fileio import atomic_write_bytes
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid

OPSET = 17
INPUTS = ("feats", "p_len", "pitch", "pitchf", "sid")
OUTPUTS = ("audio", "prior_noise", "source_noise")
PACKAGES = ("onnx", "onnxruntime")
INSTALL = "pip install onnx onnxruntime"
CHECK_FRAMES = 100  # the read-back check converts 1 s of random input
CHECK_TOLERANCE = 1e-4  # fp32 audio in [-1, 1]: ONNX Runtime and PyTorch differ by rounding alone
# Our encoder names as w-okada's changer calls the same weights ("hubert_base" is its name for
# RVC's hubert_base.pt, which is ContentVec); names it does not know are written as they are.
CHANGER_EMBEDDERS = {"contentvec": "hubert_base", "japanese_hubert_base": "hubert-base-japanese"}


def require_onnx() -> None:
    """Raise UserError saying what to pip install when ``onnx`` or ``onnxruntime`` is missing."""
    import importlib.util

    missing = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"exporting ONNX needs the optional packages {' and '.join(PACKAGES)} "
            f"({' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing): {INSTALL}"
        )


class OnnxGenerator(nn.Module):
    """The generator's conversion with its noise drawn in the graph and returned: what is exported.

    forward(feats [1 x T x 768], p_len [1], pitch [1 x T], pitchf [1 x T], sid [1])
    returns : audio [1 x 1 x T*hop], prior_noise [1 x C x T], source_noise [1 x T*hop x 1]
    """

    def __init__(self, generator: SynthesizerTrnMs768NSFsid) -> None:
        super().__init__()
        self.generator = generator
        self.channels = generator.cfg.inter_channels
        self.hop = generator.cfg.hop_length

    def forward(
        self, feats: torch.Tensor, p_len: torch.Tensor, pitch: torch.Tensor, pitchf: torch.Tensor, sid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # randn_like of a tensor with the wanted dynamic shape: the exporter writes RandomNormalLike,
        # whose shape follows the input's at run time (the features have at least C channels).
        prior_noise = torch.randn_like(feats[:, :, : self.channels].transpose(1, 2))
        source_noise = torch.randn_like(pitchf.unsqueeze(2).expand(-1, -1, self.hop)).reshape(1, -1, 1)
        audio, _, _ = self.generator.infer(
            feats, p_len, pitch, pitchf, sid, prior_noise=prior_noise, source_noise=source_noise
        )
        return audio, prior_noise, source_noise


def example_inputs(frames: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Return random inputs of ``frames`` frames, as the graph takes them (speech-like f0 with unvoiced gaps)."""
    rng = np.random.default_rng(seed)
    f0 = np.where(rng.random(frames) < 0.2, 0.0, rng.uniform(80.0, 500.0, frames)).astype(np.float32)
    mel = 1127.0 * np.log1p(f0 / 700.0)
    low, high = 1127.0 * np.log1p(50.0 / 700.0), 1127.0 * np.log1p(1100.0 / 700.0)
    coarse = np.where(f0 > 0, np.clip((mel - low) * 254 / (high - low) + 1, 1, 255), 1).round().astype(np.int64)
    return {
        "feats": rng.standard_normal((1, frames, 768)).astype(np.float32),
        "p_len": np.array([frames], dtype=np.int64),
        "pitch": coarse[None],
        "pitchf": f0[None],
        "sid": np.array([0], dtype=np.int64),
    }


def changer_metadata(model: ExportedModel) -> dict[str, Any]:
    """Return the JSON w-okada's voice changer reads from an RVC ONNX model's ``metadata`` entry."""
    embedder = str(model.metadata.get("embedder") or model.metadata.get("embedder_model") or "contentvec")
    return {
        "application": "RVC Studio",
        "version": "2.1",  # the layout of w-okada's own exports, which ours follows
        "modelType": "pyTorchRVCv2",
        "samplingRate": model.sample_rate,
        "f0": True,
        "embChannels": model.config.phone_channels,
        "embedder": CHANGER_EMBEDDERS.get(embedder, embedder),
        "embOutputLayer": 12,
        "useFinalProj": False,
    }


def our_metadata(model: ExportedModel) -> dict[str, Any]:
    """Return what we record of the model in the ONNX file (from the .pth it was exported from)."""
    meta = model.metadata
    keys = ("model_name", "model_hash", "epoch", "step", "embedder", "f0_method", "dataset_length", "blend")
    return {
        "app": f"RVC Studio {__version__}",
        "source": model.path.name,
        "sample_rate": model.sample_rate,
        "version": "v2",
        "inputs": list(INPUTS),
        "outputs": list(OUTPUTS),
        **{key: meta[key] for key in keys if meta.get(key) is not None},
    }


def _trace(generator: SynthesizerTrnMs768NSFsid) -> bytes:
    """Export ``generator`` to ONNX bytes with the TorchScript-based exporter."""
    example = {name: torch.from_numpy(value) for name, value in example_inputs(64).items()}
    frames = {1: "frames"}
    with tempfile.TemporaryDirectory(prefix="rvc-onnx-") as folder, warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of torch.export's, which takes
        # ~15x as long on this model, needs onnxscript and cannot write opset 17; its notes on
        # constant folding are about slices it leaves for the runtime.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            OnnxGenerator(generator).eval(),
            tuple(example[name] for name in INPUTS),
            Path(folder) / "generator.onnx",
            dynamo=False,
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes={
                "feats": frames,
                "pitch": frames,
                "pitchf": frames,
                "audio": {2: "samples"},
                "prior_noise": {2: "frames"},
                "source_noise": {1: "samples"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
        )
        return (Path(folder) / "generator.onnx").read_bytes()


def export_onnx(model_path: Path, out: Path) -> Path:
    """Write the ONNX graph of an exported model's inference generator to ``out`` atomically; return ``out``.

    The weights are the exported file's (fp16, as every tool loads them) in fp32, with weight norm
    folded into plain weights.
    """
    require_onnx()
    import onnx

    model = read_exported(model_path)
    generator = build_generator(model).remove_weight_norm()
    proto = onnx.load_from_string(_trace(generator))
    for key, value in (("metadata", changer_metadata(model)), ("rvc_studio", our_metadata(model))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    proto.producer_name, proto.producer_version = "RVC Studio", __version__
    proto.doc_string = (
        f"RVC v2 voice model {model.metadata.get('model_name') or model.path.stem}: " + ", ".join(INPUTS) + " -> audio"
    )
    onnx.checker.check_model(proto)
    atomic_write_bytes(Path(out), proto.SerializeToString())
    return Path(out)


def run_onnx(path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an exported ONNX model on ONNX Runtime's CPU provider; return its outputs by name."""
    require_onnx()
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its notes on unused initialisers are not for users
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    values = session.run(list(OUTPUTS), dict(inputs))
    return dict(zip(OUTPUTS, values, strict=True))


def torch_reference(
    generator: SynthesizerTrnMs768NSFsid, inputs: Mapping[str, np.ndarray], noise: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Return the PyTorch generator's audio [1 x 1 x T*hop] on ``inputs`` with the noise an ONNX run drew."""
    tensors = {name: torch.from_numpy(np.asarray(value)) for name, value in inputs.items()}
    with torch.no_grad():
        audio, _, _ = generator.infer(
            tensors["feats"],
            tensors["p_len"],
            tensors["pitch"],
            tensors["pitchf"],
            tensors["sid"],
            prior_noise=torch.from_numpy(noise["prior_noise"]),
            source_noise=torch.from_numpy(noise["source_noise"]),
        )
    return audio.numpy()


def check_onnx(path: Path, model_path: Path, frames: int = CHECK_FRAMES) -> float:
    """Convert random input with the ONNX file and with PyTorch (the same noise); return the largest difference.

    Raises RuntimeError when the two differ by more than fp32 rounding: the graph is not the model.
    """
    inputs = example_inputs(frames, seed=1)
    outputs = run_onnx(path, inputs)
    reference = torch_reference(build_generator(read_exported(model_path)), inputs, outputs)
    if outputs["audio"].shape != reference.shape:
        raise RuntimeError(f"{path}: ONNX gives audio of shape {outputs['audio'].shape}, PyTorch {reference.shape}")
    difference = float(np.abs(outputs["audio"] - reference).max())
    if difference > CHECK_TOLERANCE:
        raise RuntimeError(f"{path}: ONNX and PyTorch differ by up to {difference:.2e} on the same input and noise")
    return difference

"""The model card of a published voice model: ``README.md`` with the Hub's YAML header, a loss plot, a sample.

Everything on the card comes from what the experiment holds: the exported model's metadata
(rate, encoder, pitch method, epochs and steps, dataset length), the run's events (the best epoch
and its held-out loss, the loss curves), its settings (the pretrain it started from). The sample,
only when the user asks for one, is the model resynthesising a held-out clip from its stored
content features and pitch: the voice on speech it did not train on, with no encoder to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rvc import __version__
from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace
from rvc.experiment.dataset import read_clip_list
from rvc.experiment.names import INDEX_SUFFIX, LOSS_PLOT, MODEL_SUFFIX, ONNX_SUFFIX, VOICE_SAMPLE
from rvc.export import ExportedModel
from rvc.train.run_state import HELD_OUT_MEL, RunState

SAMPLE_SECONDS = 8.0  # the most of a held-out clip the sample renders
PROJECT = "https://github.com/RVC-Project/Retrieval-based-Voice-Conversion-WebUI"
TAGS = ("rvc", "rvc-v2", "voice-conversion", "audio-to-audio", "rvc-studio")


@dataclass(frozen=True)
class CardFacts:
    """What the card says about a model, each None where the experiment does not tell."""

    name: str
    sample_rate: int
    embedder: str | None
    f0_method: str | None
    epochs: int | None
    steps: int | None
    best_epoch: int | None
    best_held_out_mel: float | None  # the best epoch's smoothed held-out mel L1
    dataset_seconds: float | None
    pretrain: str | None  # None: trained from scratch
    files: dict[str, int] = field(default_factory=dict)  # uploaded model files and their sizes
    plot: bool = False
    sample: bool = False


def _pretrain_label(workspace: Workspace, experiment: Experiment) -> str | None:
    """Return the pretrain the run started from as the dropdowns name it, its file name, or None (scratch)."""
    from rvc.experiment.config_file import load_config
    from rvc.pretrained.pairs import list_pretrain_pairs

    try:
        g = load_config(experiment, check=False).train.pretrained_g
    except UserError:
        return None
    if not g:
        return None
    for pair in list_pretrain_pairs(workspace.assets):
        if pair.g == Path(g).resolve():
            return pair.label
    return Path(g).name


def gather_facts(workspace: Workspace, experiment: Experiment, model: ExportedModel, run: RunState) -> CardFacts:
    """Collect what the card says from the exported model, the run's events and the experiment's settings."""
    meta = model.metadata
    seconds = meta.get("dataset_seconds")
    return CardFacts(
        name=str(meta.get("model_name") or experiment.name),
        sample_rate=model.sample_rate,
        embedder=meta.get("embedder") or meta.get("embedder_model"),
        f0_method=meta.get("f0_method"),
        epochs=meta.get("epoch"),
        steps=meta.get("step"),
        best_epoch=run.best_epoch if run.best_epoch is not None else meta.get("best_epoch"),
        best_held_out_mel=run.best_value,
        dataset_seconds=float(seconds) if isinstance(seconds, int | float) else None,
        pretrain=_pretrain_label(workspace, experiment),
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d} ({seconds / 60:.1f} min)"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _header(facts: CardFacts) -> str:
    """Return the YAML metadata header (between ``---`` lines) the Hub reads from a model card."""
    from huggingface_hub import ModelCardData

    rvc: dict[str, Any] = {
        "version": "v2",
        "f0": True,
        "sample_rate": facts.sample_rate,
        "embedder": facts.embedder,
        "f0_method": facts.f0_method,
        "epochs": facts.epochs,
        "steps": facts.steps,
        "best_epoch": facts.best_epoch,
        "best_held_out_mel": round(facts.best_held_out_mel, 4) if facts.best_held_out_mel is not None else None,
        "dataset_seconds": round(facts.dataset_seconds, 1) if facts.dataset_seconds is not None else None,
        "pretrain": facts.pretrain,
        "files": sorted(facts.files),
    }
    data = ModelCardData(tags=list(TAGS), pipeline_tag="audio-to-audio", rvc=rvc)
    return f"---\n{data.to_yaml()}\n---\n"


def card_text(facts: CardFacts) -> str:
    """Return the model card (README.md): the YAML header, a table of the facts, the files, the plot, the sample."""
    rate = f"{facts.sample_rate // 1000}k ({facts.sample_rate} Hz)"
    held = f", smoothed held-out mel loss {facts.best_held_out_mel:.3f}" if facts.best_held_out_mel is not None else ""
    rows = [
        ("Sample rate", rate),
        ("Version", "RVC v2, pitch-guided (f0)"),
        ("Content encoder", facts.embedder or "not recorded"),
        ("Pitch method (training)", facts.f0_method or "not recorded"),
        ("Trained", f"{facts.epochs} epochs, {facts.steps} steps" if facts.epochs is not None else "not recorded"),
        ("Best epoch", f"{facts.best_epoch}{held}" if facts.best_epoch is not None else "not measured"),
        ("Dataset", _duration(facts.dataset_seconds)),
        ("Started from", facts.pretrain or "no pretrain (trained from scratch)"),
    ]
    table = "\n".join(f"| {label} | {value} |" for label, value in rows)
    files = "\n".join(f"- `{name}` ({_size(size)})" for name, size in sorted(facts.files.items()))
    parts = [
        _header(facts),
        f"# {facts.name}\n",
        f"An [RVC]({PROJECT}) v2 voice model, trained with RVC Studio {__version__}. Load the `{MODEL_SUFFIX}` "
        f"(and the `{INDEX_SUFFIX}`, for retrieval) in Applio or the RVC WebUI; real-time voice changers load the "
        f"`{MODEL_SUFFIX}`, or the `{ONNX_SUFFIX}` where there is one.\n",
        "| | |\n|---|---|\n" + table + "\n",
        "## Files\n\n" + files + "\n",
    ]
    if facts.plot:
        parts.append(f"## Training\n\n![Training and held-out losses]({LOSS_PLOT})\n")
    if facts.sample:
        parts.append(
            "## Sample\n\nThe model resynthesising a held-out clip of its dataset (speech it did not train on):\n\n"
            f'<audio controls src="{VOICE_SAMPLE}"></audio>\n\n[{VOICE_SAMPLE}]({VOICE_SAMPLE})\n'
        )
    return "\n".join(parts)


def write_loss_plot(run: RunState, path: Path) -> bool:
    """Draw the run's mel losses (training ÷ c_mel, and held-out) and G/D totals into a PNG; False if no curves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = run.curves
    c_mel = run.c_mel or 1.0
    panels = [
        ("Mel L1 distance", [("training", "loss/g/mel", 1 / c_mel), ("held-out", HELD_OUT_MEL, 1.0)]),
        ("Adversarial losses", [("generator", "loss/g/total", 1.0), ("discriminator", "loss/d/total", 1.0)]),
    ]
    if not any(curves.get(key) for _, lines in panels for _, key, _ in lines):
        return False
    figure = Figure(figsize=(10, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.9, wspace=0.2)  # fixed: solving one takes ~1 s
    for axes, (title, lines) in zip(figure.subplots(1, 2), panels, strict=True):
        for label, key, scale in lines:
            points = curves.get(key) or []
            if points:
                axes.plot([p.step for p in points], [p.value * scale for p in points], label=label)
        axes.set(title=title, xlabel="step")
        axes.legend()
        axes.grid(alpha=0.3)
    figure.savefig(path, format="png")
    return True


def write_sample(experiment: Experiment, model: ExportedModel, path: Path) -> bool:
    """Render up to SAMPLE_SECONDS of a held-out clip (else a training clip); False when no clip has features."""
    import torch

    from rvc.audio import write_wav
    from rvc.export import build_generator

    # Read as training reads them: a hand-edited list (not UTF-8, a name such as ../x) is refused by name,
    # not a crash ("publish failed unexpectedly") after the upload folder was laid out.
    names = read_clip_list(experiment.validation_clips) + read_clip_list(experiment.train_clips)
    for name in names:
        files = (experiment.clip_features(name), experiment.clip_f0_coarse(name), experiment.clip_f0(name))
        if all(file.is_file() for file in files):
            break
    else:
        return False
    content, coarse, f0 = (np.load(file, allow_pickle=False) for file in files)
    phone = np.repeat(content, 2, axis=0)  # 50 -> 100 frames/s, as training aligns them
    frames = min(len(phone), len(coarse), len(f0), int(SAMPLE_SECONDS * 100))
    generator = build_generator(model)
    with torch.no_grad():
        audio, _, _ = generator.infer(
            torch.from_numpy(phone[None, :frames].astype(np.float32)),
            torch.tensor([frames]),
            torch.from_numpy(coarse[None, :frames].astype(np.int64)),
            torch.from_numpy(f0[None, :frames].astype(np.float32)),
            torch.tensor([0]),
        )
    write_wav(path, audio[0, 0].numpy(), model.sample_rate)
    return True

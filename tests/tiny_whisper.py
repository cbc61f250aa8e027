"""A tiny randomly initialised Whisper in whisper's own checkpoint format: the code path is real, the text is not."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from whisper.model import ModelDimensions, Whisper
from whisper.tokenizer import get_tokenizer


def tiny_whisper() -> tuple[ModelDimensions, Whisper]:
    """Return the dims and a seeded random model (the 99-language tokenizer's vocabulary)."""
    n_vocab = get_tokenizer(multilingual=True).encoding.n_vocab  # 51865
    dims = ModelDimensions(80, 1500, 64, 2, 1, n_vocab, 448, 64, 2, 1)
    torch.manual_seed(0)
    model = Whisper(dims)
    # whisper leaves the decoder's positional embedding as torch.empty (checkpoints fill it):
    # uninitialised memory can hold NaN, which makes saved and loaded weights compare unequal.
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.01)
    return dims, model


def save_tiny_whisper(path: Path) -> Path:
    """Save ``tiny_whisper()`` as a whisper checkpoint ``{"dims", "model_state_dict"}`` at ``path``."""
    dims, model = tiny_whisper()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path

"""The held-out loss: how well the generator converts clips it never trained on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from rvc.config.batch import balanced_batch
from rvc.models.commons import sequence_mask
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.train.data import TrainingSet
from rvc.train.mel import Spectrogram

# With --validate-every 0 (auto), validation may take at most this share of the run's time.
VALIDATION_SHARE = 0.1


@dataclass
class ValidationSchedule:
    """When to validate: every ``every`` epochs, or with ``every`` 0 as often as keeps validation
    under VALIDATION_SHARE of the time (every epoch while epochs are slow next to a validation;
    at a 1-second epoch and a 3-second validation, about every 27 epochs), and at the last epoch.
    """

    every: int
    last_epoch: int
    validation_s: float | None = None  # how long the last validation took
    trained_s: float = 0.0  # training time since then

    def due(self, epoch: int, epoch_s: float) -> bool:
        """Count ``epoch``'s training time; return whether to validate after it."""
        self.trained_s += epoch_s
        if self.every > 0:
            return epoch % self.every == 0
        if self.validation_s is None or epoch == self.last_epoch:
            return True
        return self.trained_s * VALIDATION_SHARE / (1 - VALIDATION_SHARE) >= self.validation_s

    def done(self, seconds: float) -> None:
        self.validation_s, self.trained_s = seconds, 0.0


class HeldOutMel:
    """The held-out loss: mel L1 per frame and mel bin through the conversion path (prior -> flow
    -> decoder) on the validation clips, with the same noise every time.

    Always in fp32, whatever the training precision: the loss measures the weights, not bf16's
    rounding (which raises the floor of quiet frames' log-mel by far more than any difference
    between two runs), and inference runs in fp32 or fp16. The clips may be on the host (a
    streamed run keeps its held-out clips there too): they move to the model a batch at a time.

    ``graphed`` (CUDA, clips on the device): the first call runs the pass eagerly, then captures
    it as a CUDA graph; later calls replay it, one launch instead of a few thousand small kernels
    and no host sync but the result's. The graph reads the parameters where they live, so the
    optimizers' in-place updates (and a rollback's in-place load) reach it; its noise is the same
    at every replay because each replay starts from the seed set just before it.

    ``first_clip`` is the first held-out clip as the last call converted it (trimmed to its
    length): TensorBoard's sample, which then costs no conversion of its own.
    """

    def __init__(
        self, model: nn.Module, spectrogram: Spectrogram, data: TrainingSet, batch_size: int, graphed: bool
    ) -> None:
        self.generator = cast(SynthesizerTrnMs768NSFsid, model)
        self.spectrogram = spectrogram
        self.data = data
        self.batch = balanced_batch(len(data), batch_size)
        self.device = next(self.generator.parameters()).device
        self.frames = max(1, int(data.lengths.sum()))
        self.graphed = graphed and self.device.type == "cuda" and data.wav.device == self.device
        self.first_samples = int(data.lengths[0]) * data.hop_length if len(data) else 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: tuple[torch.Tensor, torch.Tensor] | None = None  # the graph's outputs
        self.first_clip: torch.Tensor | None = None  # [1, samples], valid after a call
        self.capture_error: str | None = None  # why the pass runs eagerly after all, if its capture failed

    @torch.no_grad()
    def __call__(self) -> float:
        devices = [self.device] if self.device.type == "cuda" else []
        self.generator.eval()
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(0)
                if self.graph is not None and self.static is not None:
                    self.graph.replay()
                    total, first = self.static
                else:
                    total, first = self._sum()
                    if self.graphed:  # (the capture records into its own memory pool: total and first stay)
                        try:
                            self._capture()
                        except Exception as error:  # a validation that cannot be graphed still validates
                            self.graphed, self.graph, self.static = False, None, None
                            self.capture_error = f"{type(error).__name__}: {error}"[:300]
        finally:
            self.generator.train()
        self.first_clip = first[:, : self.first_samples]
        return float(total) / self.frames

    def _capture(self) -> None:
        """Capture the pass (after the eager one that tuned cuDNN for these shapes)."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.static = self._sum()
        self.graph = graph

    def _sum(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The masked L1 summed over clips, frames and mel bins / bins, on the device (no host sync),
        and the first clip's converted audio [1, padded samples]."""
        data, generator = self.data, self.generator
        total = torch.zeros((), device=self.device)
        first = torch.zeros(1, 0, device=self.device)
        for start in range(0, len(data), self.batch):
            index = torch.arange(start, min(start + self.batch, len(data)), device=data.wav.device)
            wav, phone, pitch, pitchf, lengths, speakers = (t[index].to(self.device) for t in data.tensors())
            with torch.autocast(self.device.type, enabled=False):
                audio, _, _ = generator.infer(phone.float(), lengths, pitch, pitchf, speakers)
            real_mel = self.spectrogram.mel(wav)
            fake_mel = self.spectrogram.mel(audio.squeeze(1).float())
            mask = sequence_mask(lengths, real_mel.size(-1)).unsqueeze(1)
            total = total + ((fake_mel - real_mel).abs() * mask).sum() / real_mel.size(1)
            if start == 0:
                first = audio[:1, 0].float()
        return total, first

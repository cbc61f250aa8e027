"""The GPU memory a training run needs, estimated from the settings before any GPU is touched.

Validate says it, batch size "auto" takes its first trial batch from it (the trials then measure),
and an out-of-memory message suggests a batch from it. Four parts:

- fixed: the weights and both optimizers' moments, and the workspaces (no clip adds to it);
- the dataset: every clip, padded to the longest, lives on the GPU unless it is streamed;
- the training step: a share per clip in the batch, part following the training segment (the
  decoder, the discriminators), part the clip's padded length (the encoders and flows see whole clips);
- the held-out pass: whole held-out clips converted in fp32 without gradients, at most the training
  batch at once. In a graphed run the step's memory pool stays reserved while it runs, so it adds
  to the step's share; an eager step's memory is free again by then, so only what exceeds it counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from rvc.config.batch import held_out_batch
from rvc.config.experiment import ExperimentConfig
from rvc.config.train import MAX_BATCH

GIB = 2**30
# Peak GPU memory of one training step with the full v2 40k model (segment 12800 samples, 3 s clips):
# a fixed part plus a part per clip in the batch, fitted to our H100 measurement at batch 8 (bf16
# 3.8 GiB, fp32 5.6 GiB; benchmarks/results), less the 0.18 GiB its 10-minute set took on the GPU (the
# dataset is its own part now). The fixed part is the 1.21 GiB of weights and AdamW moments (108M
# parameters in fp32) and little else. Other sample rates scale with the segment length.
MEMORY_FIXED_GIB = {"bf16": 1.22, "fp16": 1.22, "fp32": 1.42}
MEMORY_PER_CLIP_GIB = {"bf16": 0.33, "fp16": 0.33, "fp32": 0.55}
# The shapes those per-clip figures were measured at: clips of 3 s (300 frames), v2 40k's segment.
REFERENCE_FRAMES = 300
REFERENCE_SEGMENT = 12800
# Of a clip's share at those shapes, the part that grows with the clip's padded length.
# benchmarks/clip_memory.py counts what each part of the real step keeps for its backward (v2 40k,
# fp32): 299 MiB a clip for the segment's part, 0.32 MiB a frame for the rest, so 24% at 300 frames.
# On an H100, batch auto's graphed trials took about 1.5x as much a 12 s clip as a 3 s one.
WHOLE_CLIP_SHARE = 0.24
# The held-out pass, per clip and per output sample (fp32, no gradients: the decoder's last stages at
# the output rate dominate). benchmarks/clip_memory.py counts 923 bytes a sample at the pass's peak
# (v2 40k, any batch and length: it is linear in both); on an H100 (memory_caps.py at b94033c, 5 clips
# of 11.6 s run eagerly) the pass took 1.10x that count.
HELD_OUT_BYTES_PER_SAMPLE = 1020
# The whole set goes on the GPU when it takes at most this share of the GPU's memory (else it streams
# from host memory a batch at a time: rvc/train/batches.py).
RESIDENT_SHARE = 0.25
# A clip's bytes a frame on the GPU beside its audio: content features (fp16), coarse and fine pitch.
FRAME_BYTES_BESIDE_AUDIO = 768 * 2 + 8 + 4


def _memory_key(precision: str) -> str:
    """The measured precision whose memory ``precision`` is budgeted at ("auto", which trains in fp32
    where a GPU has no bf16, and plans with an fp32 generator count as fp32: an overestimate, never
    an out-of-memory)."""
    return "bf16" if precision in ("bf16", "fp16", "bf16-tail", "bf16-frame") else "fp32"


def _longest_frames(config: ExperimentConfig) -> float:
    """The longest clip in frames, as prepare recorded it (unrecorded: the reference length)."""
    model = config.model
    frames = config.data.longest_clip_seconds * model.sample_rate / model.hop_length
    return frames if frames > 0 else REFERENCE_FRAMES


def clip_scale(config: ExperimentConfig) -> float:
    """How much a clip of this dataset and model costs against MEMORY_PER_CLIP_GIB's (3 s clips, 40k's segment).

    The decoder and the discriminators work on the training segment; the text and posterior encoders
    and the flows on whole clips, each padded to the longest (``longest_clip_seconds``; unrecorded:
    the reference length) and at least to the segment.
    """
    model = config.model
    frames = max(_longest_frames(config), model.segment_size / model.hop_length)
    segment = model.segment_size / REFERENCE_SEGMENT
    return (1 - WHOLE_CLIP_SHARE) * segment + WHOLE_CLIP_SHARE * frames / REFERENCE_FRAMES


def dataset_gib(config: ExperimentConfig) -> float:
    """The training and held-out clips as the trainer holds them on a GPU: each split padded to its
    longest clip (the training clips at least to the segment); the training clips' longest stands
    for the held-out ones', which prepare does not record."""
    model, data = config.model, config.data
    frame_bytes = model.hop_length * 4 + FRAME_BYTES_BESIDE_AUDIO
    longest = _longest_frames(config)
    train_frames = max(longest, model.segment_frames)
    return (data.train_clips * train_frames + data.validation_clips * longest) * frame_bytes / GIB


@dataclass(frozen=True)
class MemoryEstimate:
    """The parts of a run's peak GPU memory, in GiB; ``gib(batch)`` adds them up for a batch size."""

    fixed: float  # weights, optimizer moments, workspaces
    dataset: float  # the padded clips on the GPU (0: streamed from host memory)
    per_clip: float  # a training clip's share of the step
    held_out_per_clip: float  # a held-out clip's share of the held-out pass
    held_out_clips: int
    graphed: bool  # the step is a CUDA graph, whose pool stays reserved through the held-out pass

    def step(self, batch: int) -> float:
        """The training step's peak at ``batch``, the dataset on the GPU included (what a trial measures)."""
        return self.fixed + self.dataset + self.per_clip * batch

    def held_out(self, batch: int) -> float:
        """The held-out pass's own peak beside a training batch of ``batch``."""
        return self.held_out_per_clip * held_out_batch(self.held_out_clips, batch)

    def beside_step(self, batch: int) -> float:
        """What the held-out pass adds to the step's measured peak: all of it beside a graphed step (its
        pool stays reserved), nothing after an eager one (a pass of at most the training batch fits in
        what the step freed)."""
        return self.held_out(batch) if self.graphed else 0.0

    def gib(self, batch: int) -> float:
        """The run's peak at ``batch``: the step's, and the held-out pass beside or after it."""
        if self.graphed:
            return self.step(batch) + self.held_out(batch)
        return self.fixed + self.dataset + max(self.per_clip * batch, self.held_out(batch))

    def parts(self, batch: int) -> str:
        """What ``gib(batch)`` is made of, in words: where a smaller figure would come from."""
        held_out = self.held_out(batch)
        words = [f"weights and optimizer {self.fixed:.1f}"]
        if self.dataset >= 0.05:
            words.append(f"clips on the GPU {self.dataset:.1f}")
        words.append(f"the training step {self.per_clip * batch:.1f}")
        if held_out >= 0.05:
            beside = "beside it" if self.graphed else "after it"
            words.append(f"held-out clips converted {beside} {held_out:.1f}")
        return ", ".join(words)

    def largest_batch(self, gpu_gib: float, share: float) -> int:
        """The largest batch whose estimate fits in ``share`` of ``gpu_gib`` (at least 1)."""
        fits = [batch for batch in range(1, MAX_BATCH + 1) if self.gib(batch) <= share * gpu_gib]
        return max(fits, default=1)


def memory_estimate(config: ExperimentConfig, precision: str, gpu_gib: float | None = None) -> MemoryEstimate:
    """The estimate's parts for this model, dataset, precision and step mode; ``gpu_gib`` (when known)
    decides whether the dataset is held on the GPU as the trainer decides it."""
    key = _memory_key(precision)
    train = config.train
    data = dataset_gib(config)
    streamed = train.data_placement == "stream" or (
        train.data_placement == "auto" and gpu_gib is not None and data > RESIDENT_SHARE * gpu_gib
    )
    model = config.model
    held_out_samples = _longest_frames(config) * model.hop_length
    return MemoryEstimate(
        fixed=MEMORY_FIXED_GIB[key],
        dataset=0.0 if streamed else data,
        per_clip=MEMORY_PER_CLIP_GIB[key] * clip_scale(config),
        held_out_per_clip=held_out_samples * HELD_OUT_BYTES_PER_SAMPLE / GIB,
        held_out_clips=config.data.validation_clips,
        graphed=train.step_mode != "eager",
    )


def estimate_memory_gib(config: ExperimentConfig, precision: str, gpu_gib: float | None = None) -> float:
    """Estimate the run's peak GPU memory (GiB) at the configured batch size (a number)."""
    return memory_estimate(config, precision, gpu_gib).gib(config.train.resolved_batch_size)


def largest_batch(config: ExperimentConfig, gpu_gib: float, precision: str = "auto", share: float = 0.9) -> int:
    """Return the largest batch size whose estimated peak fits in ``share`` of ``gpu_gib`` (at least 1)."""
    return memory_estimate(config, precision, gpu_gib).largest_batch(gpu_gib, share)

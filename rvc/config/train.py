"""Training settings: one typed dataclass, each field with the reason for its default."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from rvc.errors import UserError
from rvc.settings import cli_message, problems_of, setting

LrScheme = Literal["exponential", "multistep", "cosine"]
LR_SCHEMES: tuple[LrScheme, ...] = get_args(LrScheme)
Precision = Literal["auto", "fp32", "bf16", "fp16", "bf16-d", "bf16-tail", "bf16-frame"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
StepMode = Literal["auto", "eager", "graph", "compiled", "regional"]  # see rvc/train/graph.py
STEP_MODES: tuple[StepMode, ...] = get_args(StepMode)
DataPlacement = Literal["auto", "gpu", "stream"]  # see rvc/train/batches.py
DATA_PLACEMENTS: tuple[DataPlacement, ...] = get_args(DataPlacement)
# Far above what any GPU holds (an H100 fits about 200 clips of the v2 model): a larger number is a typo.
MAX_BATCH = 1024
# Ten times the RVC WebUI's and Applio's sliders (1,000 and 10,000): more is a typo, and a number
# past 64 bits would end the run in an overflow instead of an answer.
MAX_EPOCHS = 100_000
BatchSize = int | Literal["auto"]  # "auto": the trainer measures what fits (rvc/train/batch_choice.py)


def parse_batch_size(text: str) -> BatchSize:
    """Parse ``--batch-size``: 'auto' or a whole number (its range is checked with the other settings)."""
    text = text.strip().lower()
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise UserError(
            f"$batch_size {text!r}: use auto or a whole number of clips (e.g. 8)",
            field="batch_size",
            options=TrainConfig,
        ) from None


@dataclass
class TrainConfig:
    epochs: int = setting(
        200,
        "an upper bound: the overtraining detector says when held-out loss stops improving",
        minimum=1,
        maximum=MAX_EPOCHS,
    )
    batch_size: BatchSize = setting(
        "auto",
        "clips per step; auto: the largest that fits the GPU with a margin, measured by a trial step when "
        "training starts, and never more than the dataset's length suggests (RVC's 4 to 16); larger batches "
        "train smoother but need more GPU memory",
        minimum=1,
        maximum=MAX_BATCH,
        metavar="N|auto",
        parse=parse_batch_size,
    )
    lr: float = setting(1e-4, "RVC's AdamW learning rate for both G and D", label="Learning rate", above=0, maximum=1)
    betas: tuple[float, float] = setting((0.8, 0.99), "RVC's AdamW betas", label="AdamW betas")
    eps: float = setting(1e-9, "AdamW epsilon, as RVC", label="AdamW epsilon", above=0, maximum=1)
    lr_scheme: LrScheme = setting(
        "exponential", "exponential (RVC), multistep, or cosine with warm restarts", label="LR schedule"
    )
    lr_gamma: float = setting(
        0.999875,
        "exponential: multiply the LR by this every epoch, as RVC does",
        label="LR decay per epoch (exponential)",
        above=0,
        maximum=1,
    )
    lr_milestones: list[int] = setting(
        factory=list, help="multistep: epochs at which the LR is multiplied", label="LR milestones, epochs (multistep)"
    )
    lr_factor: float = setting(
        0.5, "multistep: the factor applied at each milestone", label="LR factor (multistep)", above=0, maximum=1
    )
    cosine_period: int = setting(
        100, "cosine: epochs until the first restart", label="Cosine period, epochs", minimum=1
    )
    cosine_restart_decay: float = setting(
        1.0,
        "cosine: the peak LR is multiplied by this at each restart",
        label="Cosine restart decay",
        above=0,
        maximum=1,
    )
    cosine_min_lr: float = setting(
        1e-6, "cosine: the LR at the bottom of each cycle", label="Cosine minimum LR", minimum=0, maximum=1
    )
    grad_accum: int = setting(
        1,
        "optimizer steps every N batches (a larger effective batch without the memory)",
        label="Gradient accumulation",
        minimum=1,
        maximum=1024,  # each epoch's order holds accum x batch rows per step: 1e11 of them filled memory
    )
    grad_clip: float | None = setting(
        None,
        "clip gradient norms to this; None: measure only, as RVC does",
        label="Gradient clipping (empty: off)",
        above=0,
    )
    c_mel: float = setting(45.0, "weight of the L1 mel loss, as RVC", label="Mel loss weight", above=0)
    c_kl: float = setting(1.0, "weight of the KL loss, as RVC", label="KL loss weight", minimum=0)
    multiscale_mel: bool = setting(
        False, "add mel losses at several resolutions (sharper highs, slower steps)", label="Multi-scale mel loss"
    )
    save_every: int = setting(10, "epochs between saved states (and exports)", label="Save every N epochs", minimum=1)
    keep_last: int = setting(
        3, "how many G_/D_ states to keep on disk (the best one is kept apart)", label="Keep last N states", minimum=1
    )
    validate_every: int = setting(
        0,
        "epochs between held-out validation losses; 0: auto, as often as keeps validation under a tenth "
        "of the time (every epoch while epochs are slow), and at the last epoch",
        label="Validate every N epochs (0: auto)",
        minimum=0,
    )
    precision: Precision = setting(
        "auto",
        "auto: bf16-tail on GPUs with bf16 (fp32's held-out loss within noise, 1.5x its speed), else fp32 with TF32; "
        "bf16: fastest, but trains to a worse held-out loss; "
        "bf16-d: discriminators in bf16, generator in fp32; bf16-tail: bf16 but the decoder's last stage; "
        "bf16-frame: bf16 but the encoders and flow; "
        "fp16 with a dynamic loss scale (GPUs without bf16, such as the T4)",
    )
    step_mode: StepMode = setting(
        "auto",
        "auto: on a GPU the whole step runs as one CUDA graph, torch.compiled where that finishes the run "
        "sooner, its compile included (by what each mode cost on this machine); eager (CPUs, debugging), "
        "graph, compiled, or regional (the repeated blocks compiled, then graphed: a shorter compile)",
    )
    data_placement: DataPlacement = setting(
        "auto",
        "auto: the whole training set on the GPU when it takes at most a quarter of its memory, else "
        "streamed from host memory one batch at a time; gpu; stream",
        label="Training set placement",
    )
    tf32: bool = setting(
        True, "TF32 matmuls on Ampere and newer: much faster, far below audible differences", label="TF32 matmuls"
    )
    pretrained_g: str | None = setting(
        None, "path to a pretrained generator (f0G40k.pth, a community pretrain)", label="Pretrained generator (G)"
    )
    pretrained_d: str | None = setting(None, "path to the matching discriminator", label="Pretrained discriminator (D)")
    resume: bool = setting(True, "continue from the newest complete state when there is one")
    seed: int = setting(1234, "random seed of initialisation and data order", minimum=0, maximum=2**32 - 1)
    overtrain_patience: int = setting(
        30,
        "epochs without a better smoothed held-out mel loss before warning",
        label="Overtraining patience, epochs",
        minimum=0,
    )
    auto_stop: bool = setting(
        False, "stop (and keep the best state) when the patience runs out", label="Stop when overtraining"
    )
    mlflow: bool = setting(
        False, "also log to MLflow (pip install mlflow; MLFLOW_TRACKING_URI picks the server)", label="MLflow logging"
    )
    log_every_steps: int = setting(
        50, "a step event at least every N steps ...", label="Progress every N steps", minimum=1
    )
    log_every_seconds: float = setting(
        5.0, "... and at least every N seconds", label="Progress every N seconds", minimum=0
    )

    @property
    def resolved_batch_size(self) -> int:
        """The batch size as a number: the trainer resolves "auto" (rvc/train/batch_choice.py) before
        anything that shapes a step reads it, and hands on a config holding the number."""
        if isinstance(self.batch_size, int):
            return self.batch_size
        raise ValueError("batch size 'auto' must be resolved first (rvc.train.batch_choice.choose_batch)")

    def errors(self) -> list[str]:
        """Return what is wrong with these values, one message per problem."""
        # Choices and ranges as declared; options named by their flags (the web UI puts its labels in).
        problems = [cli_message(problem) for problem in problems_of(self)]
        if self.batch_size != "auto" and (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)):
            problems.append(f"--batch-size {self.batch_size!r}: use auto or a whole number of clips (e.g. 8)")
        if not all(math.isfinite(beta) and 0 <= beta < 1 for beta in self.betas):
            problems.append(f"--betas {self.betas[0]:g},{self.betas[1]:g}: each must be at least 0 and below 1")
        if any(milestone < 1 for milestone in self.lr_milestones):
            problems.append(f"--lr-milestones {self.lr_milestones}: each must be an epoch, at least 1")
        if (self.pretrained_g is None) != (self.pretrained_d is None):
            given, missing = ("g", "d") if self.pretrained_d is None else ("d", "g")
            problems.append(
                f"--pretrained-{given} is set but --pretrained-{missing} is not: give both --pretrained-g and "
                "--pretrained-d (a G/D pair), or neither"
            )
        return problems

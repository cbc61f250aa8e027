"""Training settings: one typed dataclass, each field with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LR_SCHEMES = ("exponential", "multistep", "cosine")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "bf16-d", "bf16-tail", "bf16-frame")
STEP_MODES = ("auto", "eager", "graph", "compiled")  # see rvc/train/graph.py
DATA_PLACEMENTS = ("auto", "gpu", "stream")  # see rvc/train/batches.py


def setting(default: Any, help: str) -> Any:
    """A dataclass field with a one-line help text (shown by the CLI and the web UI)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    epochs: int = setting(200, "an upper bound: the overtraining detector says when held-out loss stops improving")
    batch_size: int = setting(8, "RVC's usual size; larger batches train smoother but need more GPU memory")
    lr: float = setting(1e-4, "RVC's AdamW learning rate for both G and D")
    betas: tuple[float, float] = setting((0.8, 0.99), "RVC's AdamW betas")
    eps: float = setting(1e-9, "AdamW epsilon, as RVC")
    lr_scheme: str = setting("exponential", "exponential (RVC), multistep, or cosine with warm restarts")
    lr_gamma: float = setting(0.999875, "exponential: multiply the LR by this every epoch, as RVC does")
    lr_milestones: list[int] = field(
        default_factory=list, metadata={"help": "multistep: epochs at which the LR is multiplied"}
    )
    lr_factor: float = setting(0.5, "multistep: the factor applied at each milestone")
    cosine_period: int = setting(100, "cosine: epochs until the first restart")
    cosine_restart_decay: float = setting(1.0, "cosine: the peak LR is multiplied by this at each restart")
    cosine_min_lr: float = setting(1e-6, "cosine: the LR at the bottom of each cycle")
    grad_accum: int = setting(1, "optimizer steps every N batches (a larger effective batch without the memory)")
    grad_clip: float | None = setting(None, "clip gradient norms to this; None: measure only, as RVC does")
    c_mel: float = setting(45.0, "weight of the L1 mel loss, as RVC")
    c_kl: float = setting(1.0, "weight of the KL loss, as RVC")
    multiscale_mel: bool = setting(False, "add mel losses at several resolutions (sharper highs, slower steps)")
    save_every: int = setting(10, "epochs between saved states (and exports)")
    keep_last: int = setting(3, "how many G_/D_ states to keep on disk (the best one is kept apart)")
    validate_every: int = setting(
        0,
        "epochs between held-out validation losses; 0: auto, as often as keeps validation under a tenth "
        "of the time (every epoch while epochs are slow), and at the last epoch",
    )
    precision: str = setting(
        "auto",
        "auto: bf16-tail on GPUs with bf16 (fp32's held-out loss within noise, 1.5x its speed), else fp32 with TF32; "
        "bf16: fastest, but trains to a worse held-out loss; "
        "bf16-d: discriminators in bf16, generator in fp32; bf16-tail: bf16 but the decoder's last stage; "
        "bf16-frame: bf16 but the encoders and flow; "
        "fp16 with a dynamic loss scale (GPUs without bf16, such as the T4)",
    )
    step_mode: str = setting(
        "auto",
        "auto: on a GPU the whole step runs as one CUDA graph, torch.compiled for runs long enough to repay "
        "the compile; eager (CPUs, debugging), graph, or compiled",
    )
    data_placement: str = setting(
        "auto",
        "auto: the whole training set on the GPU when it takes at most a quarter of its memory, else "
        "streamed from host memory one batch at a time; gpu; stream",
    )
    tf32: bool = setting(True, "TF32 matmuls on Ampere and newer: much faster, far below audible differences")
    pretrained_g: str | None = setting(None, "path to a pretrained generator (f0G40k.pth, a community pretrain)")
    pretrained_d: str | None = setting(None, "path to the matching discriminator")
    resume: bool = setting(True, "continue from the newest complete state when there is one")
    seed: int = setting(1234, "random seed of initialisation and data order")
    overtrain_patience: int = setting(30, "epochs without a better smoothed held-out mel loss before warning")
    auto_stop: bool = setting(False, "stop (and keep the best state) when the patience runs out")
    mlflow: bool = setting(False, "also log to MLflow (pip install mlflow; MLFLOW_TRACKING_URI picks the server)")
    log_every_steps: int = setting(50, "a step event at least every N steps ...")
    log_every_seconds: float = setting(5.0, "... and at least every N seconds")

    def errors(self) -> list[str]:
        """Return what is wrong with these values, one message per problem."""
        problems = []
        positive = ("epochs", "batch_size", "grad_accum", "save_every", "keep_last")
        for name in positive:
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.validate_every < 0:
            problems.append(f"validate_every must be 0 (auto) or more (got {self.validate_every})")
        if not self.lr > 0:
            problems.append(f"lr must be positive (got {self.lr})")
        if self.lr_scheme not in LR_SCHEMES:
            problems.append(f"lr_scheme must be one of {', '.join(LR_SCHEMES)} (got {self.lr_scheme!r})")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if self.step_mode not in STEP_MODES:
            problems.append(f"step_mode must be one of {', '.join(STEP_MODES)} (got {self.step_mode!r})")
        if self.data_placement not in DATA_PLACEMENTS:
            problems.append(f"data_placement must be one of {', '.join(DATA_PLACEMENTS)} (got {self.data_placement!r})")
        if self.grad_clip is not None and not self.grad_clip > 0:
            problems.append(f"grad_clip must be positive or unset (got {self.grad_clip})")
        if (self.pretrained_g is None) != (self.pretrained_d is None):
            problems.append("give both pretrained_g and pretrained_d, or neither")
        return problems

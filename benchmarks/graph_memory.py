"""Where a capped, graphed start's GPU memory goes: from batch auto's trials to the step's capture.

Run on a GPU: ``python benchmarks/graph_memory.py [--cap 6] [--precision bf16-tail] [--batch-size auto]
[--seconds 3600] [--clips 24]``.

Under a 6 GiB cap a capture has failed with about 4.9 GiB allocated, only 0.3 GiB of it in the
graph's pool, and 1.1 GiB reserved in gaps, at batch 13 and at batch 5 alike: something that does
not scale with the batch is held when the capture starts. This trains one epoch of the GPU test's
experiment (the full 40k model, ``--clips`` clips of 3 s, a recorded length of ``--seconds`` so
that RVC's length rule allows 16) in this process, with the trainer's own code, and records the
allocator's state at each point: around every trial of batch auto, at the start of the step's
preparation (a trial's capture included), when its capture begins (the warm-up done, its cache given
back), with the sizes of the weights, gradients, optimizer states and clips then; the end's (or the
failure's) state last.
Results go to ``benchmarks/results/graph_memory-<machine>[-<tag>].json`` after each point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import header  # noqa: E402


def gib(count: int) -> float:
    return round(count / 2**30, 3)


class Recorder:
    """Appends the allocator's state at named points to the result and writes it each time."""

    def __init__(self, result: dict[str, Any], out: Path) -> None:
        self.result, self.out = result, out

    def point(self, name: str, **extra: Any) -> None:
        stats = torch.cuda.memory_stats()
        self.result["points"].append(
            {
                "point": name,
                "allocated_gib": gib(torch.cuda.memory_allocated()),
                "reserved_gib": gib(torch.cuda.memory_reserved()),
                "peak_allocated_gib": gib(torch.cuda.max_memory_allocated()),
                "peak_reserved_gib": gib(torch.cuda.max_memory_reserved()),
                "segments": stats.get("segment.all.current", 0),
                "inactive_split_gib": gib(stats.get("inactive_split_bytes.all.current", 0)),
                **extra,
            }
        )
        print(json.dumps(self.result["points"][-1]), flush=True)
        self.out.write_text(json.dumps(self.result, indent=2) + "\n")


def tensor_bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor) and t.is_cuda)


def model_sizes(step: Any) -> dict[str, float]:
    """The weights, gradients and optimizer states of both models, and the clips on the GPU, in GiB."""
    models = step.models
    params = list(models.generator.parameters()) + list(models.discriminator.parameters())
    states = [v for opt in (models.optimizer_g, models.optimizer_d) for s in opt.state.values() for v in s.values()]
    return {
        "weights_gib": gib(tensor_bytes(params)),
        "grads_gib": gib(tensor_bytes(p.grad for p in params)),
        "optimizer_states_gib": gib(tensor_bytes(states)),
        "clips_gib": gib(step.data.nbytes()),
    }


def instrument(recorder: Recorder) -> None:
    """Wrap the trial and the graph's preparation so each records the allocator's state."""
    import rvc.train.batch_choice as batch_choice
    import rvc.train.graph as graph

    measure = batch_choice.TrialStep.__call__

    def trial(self: Any, batch: int) -> float | None:
        recorder.point(f"trial {batch}: before")
        need = measure(self, batch)
        recorder.point(f"trial {batch}: after", need_gib=need)
        return need

    batch_choice.TrialStep.__call__ = trial  # type: ignore[method-assign]

    preparing: list[Any] = []  # the step whose graph is being prepared (by a trial or by training)
    original_prepare = graph.GraphedStep.prepare
    original_capture_begin = torch.cuda.CUDAGraph.capture_begin

    def prepare(self: Any, index: torch.Tensor, skipped_before: int = 0) -> float:
        recorder.point("prepare: start", **model_sizes(self.step))
        preparing.append(self.step)
        try:
            seconds = original_prepare(self, index, skipped_before)
        finally:
            preparing.pop()
        recorder.point("prepare: captured")
        return seconds

    def capture_begin(self: Any, *args: Any, **kwargs: Any) -> Any:
        # torch.cuda.graph has synchronised, collected and emptied the cache: what the capture starts from.
        sizes = model_sizes(preparing[-1]) if preparing else {}
        recorder.point("prepare: warm-up done, capture begins", **sizes)
        recorder.result.setdefault("summaries_before_capture", []).append(torch.cuda.memory_summary(abbreviated=True))
        return original_capture_begin(self, *args, **kwargs)

    graph.GraphedStep.prepare = prepare  # type: ignore[method-assign]
    torch.cuda.CUDAGraph.capture_begin = capture_begin  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap", type=float, default=6.0, help="RVC_GPU_MEMORY_GIB for the trainer")
    parser.add_argument("--precision", default="bf16-tail")
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--seconds", type=float, default=3600.0, help="the dataset length the config records")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("graph_memory.py measures a CUDA GPU's allocator: run it on one")
    os.environ["RVC_GPU_MEMORY_GIB"] = str(args.cap)

    from rvc.config.experiment import DataInfo, ExperimentConfig
    from rvc.experiment.config_file import save_config
    from rvc.models.config import ModelConfig
    from rvc.train.__main__ import main as train
    from tests.fake_experiment import make_extracted_experiment

    result: dict[str, Any] = {**header("graph_memory"), "settings": vars(args) | {"out": None}, "points": []}
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"graph_memory-{result['machine']}{'-' + args.tag if args.tag else ''}.json"
    recorder = Recorder(result, out)
    instrument(recorder)
    with tempfile.TemporaryDirectory() as scratch:
        logs = Path(scratch) / "logs"
        experiment = make_extracted_experiment(logs, train_clips=args.clips, validation_clips=4, seconds=3.0)
        config = ExperimentConfig(ModelConfig.for_sample_rate(40000))
        config.data = DataInfo(40000, train_clips=args.clips, validation_clips=4, seconds=args.seconds)
        config.train.epochs, config.train.save_every, config.train.precision = 1, 1, args.precision
        config.train.step_mode = "graph"
        config.train.batch_size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
        save_config(experiment, config)
        try:
            result["exit_code"] = train(["--experiment", "voice", "--device", "cuda", "--logs-dir", str(logs)])
        except Exception:  # the failure is the finding: keep the state it left
            result["exception"] = traceback.format_exc()[-3000:]
        recorder.point("end")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

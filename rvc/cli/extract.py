"""``python -m rvc extract``: pitch and content features for the prepared clips."""

from __future__ import annotations

import argparse

from rvc.experiment import Workspace

HELP = "extract f0 (pitch) and content features from the prepared clips"

# Kept here rather than imported so that --help does not import the f0 package's dependencies.
F0_CHOICES = ("rmvpe", "crepe", "crepe-tiny", "fcpe", "harvest", "dio", "pm")
EMBEDDER_HELP = "contentvec, hubert_base, chinese_hubert_base, japanese_hubert_base, korean_hubert_base, or a path"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment name (a folder in the logs dir)")
    parser.add_argument("--f0", dest="f0_method", default="rmvpe", choices=F0_CHOICES, help="pitch method")
    parser.add_argument("--embedder", default="contentvec", help=f"content encoder: {EMBEDDER_HELP}")
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per GPU batch")
    parser.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"), help="embedder precision on a GPU"
    )
    parser.add_argument("--workers", type=int, default=0, help="processes for CPU pitch methods (0 = one per core)")
    parser.add_argument("--f0-min", type=float, default=50.0, help="lowest pitch searched, Hz")
    parser.add_argument("--f0-max", type=float, default=1100.0, help="highest pitch searched, Hz")
    parser.add_argument(
        "--only", default="all", choices=("all", "f0", "content"), help="extract one part only (the other is kept)"
    )


def run(args: argparse.Namespace, workspace: Workspace) -> int:
    from rvc.errors import UserError
    from rvc.features.extract import ExtractOptions, extract_features

    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    experiment = workspace.experiment(args.experiment)
    options = ExtractOptions(
        f0_method=args.f0_method,
        embedder=args.embedder,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        workers=args.workers,
        f0_min=args.f0_min,
        f0_max=args.f0_max,
        only=args.only,
    )
    report = extract_features(experiment, workspace.assets, options)
    failed_clips = report.failed_clips()
    return 1 if report.clip_count and len(failed_clips) == report.clip_count else 0  # not one clip is ready

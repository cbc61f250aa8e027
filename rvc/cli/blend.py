"""``python -m rvc blend``: the weighted average of two voice models, or of two G/D pretrains (a "merge")."""

from __future__ import annotations

import argparse
from pathlib import Path

from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.jobs.reporter import Reporter

HELP = "blend two exported models of one sample rate and content encoder (or, with --pretrain, two G/D pairs)"
PROGRESS = True  # the web app runs it as a job (reading and writing a full model takes seconds)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="two exported models A B; with --pretrain, four files: G_A D_A G_B D_B",
    )
    parser.add_argument(
        "--ratio", type=float, default=0.5, help="the share of the first: ratio * A + (1 - ratio) * B, from 0 to 1"
    )
    parser.add_argument("--out", type=Path, default=None, help="model file to write; unset: logs/NAME/NAME.pth")
    parser.add_argument(
        "--name", default=None, help="the blend's name (stored in the file; with --pretrain, the pair's name)"
    )
    parser.add_argument(
        "--pretrain",
        action="store_true",
        help="merge two pretrains: installs the pair as pretrained_v2/NAME/<rate>/ (listed under custom)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a model or pair of that name")


def _merge_pretrains(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    from rvc.blend import merge_pretrains

    if len(args.files) != 4 or not args.name:
        raise UserError("--pretrain merges two pairs: give four files, G_A D_A G_B D_B, and --name for the merge")
    g_a, d_a, g_b, d_b = args.files
    folder = merge_pretrains(workspace.assets, args.name, (g_a, d_a), (g_b, d_b), args.ratio, args.overwrite)
    reporter.result(f"{folder}: merge of {g_a.name} and {g_b.name} at ratio {args.ratio:g}")
    return 0


def run(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    from rvc.blend import blend_target, check_ratio, read_blend_pair, write_blend

    check_ratio(args.ratio)
    if args.pretrain:
        return _merge_pretrains(args, workspace, reporter)
    if len(args.files) != 2:
        raise UserError(f"blend takes two exported models, A and B (got {len(args.files)} files)")
    if args.out is None and not args.name:
        raise UserError("say where the blend goes: --out FILE, or --name NAME for logs/NAME/NAME.pth")
    if args.out is not None and args.out.exists() and not args.overwrite:
        raise UserError(f"{args.out} exists: choose another file, or pass --overwrite")
    out = args.out if args.out is not None else blend_target(workspace, args.name, args.overwrite)
    a, b = read_blend_pair(*args.files)
    bar = reporter.bar("blend", 1, "model")
    path = write_blend(a, b, args.ratio, out, name=args.name)
    bar.update()
    bar.close()
    reporter.result(f"{path}: {args.ratio:g} × {a.path.name} + {1 - args.ratio:g} × {b.path.name}")
    return 0

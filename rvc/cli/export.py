"""``python -m rvc export``: write a trained generator as an RVC v2 voice model (.pth)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rvc.experiment import Experiment, Workspace, names
from rvc.fileio import replaceable
from rvc.jobs.reporter import Reporter

HELP = (
    "export a generator checkpoint as an RVC v2 model (.pth) for the RVC WebUI, Applio and voice changers, "
    "or (--pretrain) a training state as a G/D pretrain pair"
)
PROGRESS = True  # --json-progress: its log and end as @@rvc lines (rvc.cli.progress)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment name (a folder in the logs dir)")
    parser.add_argument(
        "--checkpoint",
        default="latest",
        help=f"latest, best, {names.generator_file('<step>')} (in logs/NAME/{names.CHECKPOINTS_DIR}) or a file path",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="file to write; unset: logs/NAME/NAME.pth, or NAME_best.pth for best"
    )
    parser.add_argument("--name", default=None, help="model name stored in the file; unset: the experiment name")
    parser.add_argument("--author", default=None, help="author stored in the file (Applio shows it)")
    parser.add_argument(
        "--onnx",
        action="store_true",
        help=f"also write the model's inference generator as ONNX beside it (NAME{names.ONNX_SUFFIX}), for "
        "ONNX Runtime and real-time voice changers; needs the optional packages onnx and onnxruntime",
    )
    pretrain = parser.add_argument_group("pretrain")
    pretrain.add_argument(
        "--pretrain",
        action="store_true",
        help=f"write the G and D of one complete state (--checkpoint latest or {names.generator_file('<step>')}) as "
        "a pretrain pair in RVC's format, installed as the custom pretrain --name (default: the experiment's name), "
        "or written to the folder --out",
    )
    pretrain.add_argument("--overwrite", action="store_true", help="replace a pretrain of that name and rate")


def run(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    from rvc.export import export_experiment, read_exported
    from rvc.export_metadata import experiment_metadata

    if args.onnx:
        from rvc.onnx_export import require_onnx

        require_onnx()  # before the export: say what to install, not after a minute's work
    experiment = workspace.experiment(args.experiment)
    if args.pretrain:
        return _pretrain(args, experiment, workspace, reporter)
    out = replaceable(args.out, names.MODEL_SUFFIX, "a model") if args.out is not None else None
    extra = {key: value for key, value in (("name", args.name), ("author", args.author)) if value is not None}
    metadata = experiment_metadata(experiment)  # before the bar: a damaged report's warning has a line of its own
    bar = reporter.bar("export", 2, "step")  # write, then read back
    path = export_experiment(experiment, args.checkpoint, out, extra_metadata=extra, metadata=metadata)
    bar.update()
    model = read_exported(path)  # what other tools will load: check it reads back
    bar.update()
    bar.close()
    info, step = model.metadata.get("info"), model.metadata.get("step")
    summary = f"{path}: {model.config.sample_rate_tag} v2 model, {info}, step {step}"
    if args.onnx:
        summary += f"; {_export_onnx(path, reporter)}"
    reporter.result(summary)
    return 0


def _export_onnx(model: Path, reporter: Reporter) -> str:
    """Write the ONNX graph beside ``model`` and check it against PyTorch; return what to tell the user."""
    from rvc.onnx_export import OPSET, check_onnx, export_onnx

    bar = reporter.bar("onnx", 2, "step")  # write, then convert the same input with both
    path = export_onnx(model, model.with_suffix(names.ONNX_SUFFIX))
    bar.update()
    difference = check_onnx(path, model)
    bar.update()
    bar.close()
    return f"{path.name}: ONNX opset {OPSET}, matches PyTorch within {difference:.0e}"


def _pretrain(args: argparse.Namespace, experiment: Experiment, workspace: Workspace, reporter: Reporter) -> int:
    from rvc.experiment.names import sample_rate_tag
    from rvc.pretrained.make import export_pretrain

    made = export_pretrain(experiment, workspace.assets, args.checkpoint, args.name, args.out, args.overwrite)
    where = f"written to {made.g.parent}" if args.out is not None else "installed as a custom pretrain"
    reporter.result(
        f"pretrain {made.name!r} ({sample_rate_tag(made.sample_rate)}) from step {made.step} (epoch {made.epoch}), "
        f"{where}: G {made.g}, D {made.d}; train from it with `python -m rvc config --experiment NAME "
        f"--pretrained-g {made.g} --pretrained-d {made.d}` or choose it under Pretrained G/D in Generate Configuration"
    )
    return 0

"""``python -m rvc run``: the one-click pipeline, prepare -> extract -> config -> train -> index -> export.

Each stage runs with this command's reporter, so its bars (clips, pitch, content, ...) show as
they would alone, under one bar of the chain's stages; ``--json-progress`` makes all of it one
job's events (the web app's Train from recordings). Training runs as the trainer's own child
process (``rvc.train.launcher``, as the Train tab starts it: ``train.log``, ``progress.jsonl``, the
lock), so the Train tab shows it live, and its Stop there ends training early: the chain then
builds the index and exports the state it saved. Stopping the chain stops the trainer first (it
saves). Finished work is kept: a second run continues where the first ended.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.choices import F0_METHODS, SAMPLE_RATES
from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.jobs.reporter import Bar, Reporter

if TYPE_CHECKING:
    from rvc.train.events import Event

PROGRESS = True  # a bar of the stages (and each stage's own), or --json-progress (rvc.cli.progress)

HELP = "one click: prepare, extract, configure (defaults sized to the data and GPU), train, index and export"

# The chain's stages, in order, with what each does in a few words (its log line says it).
STAGES: dict[str, str] = {
    "prepare": "cut the recordings into clips",
    "extract": "compute pitch and content features",
    "config": "choose the training settings",
    "train": "train the model",
    "index": "build the retrieval index",
    "export": "export the model",
}
POLL_S = 0.5  # how often the trainer's progress.jsonl is read while it trains


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment name")
    parser.add_argument("--input", required=True, nargs="+", help="folder(s) of recordings")
    parser.add_argument("--sample-rate", type=int, default=40000, choices=SAMPLE_RATES, help="model rate")
    parser.add_argument("--f0", default="rmvpe", choices=F0_METHODS, help="pitch method (see `extract --help`)")
    parser.add_argument("--embedder", default="contentvec", help="content encoder name or path")
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--epochs", type=int, default=None, help="default: the config stage's")
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=None,
        metavar="N|auto",
        help="default: auto, the largest that fits the GPU (measured when training starts) and suits the data",
    )
    parser.add_argument("--pretrained-g", default=None, help="pretrained generator (.pth)")
    parser.add_argument("--pretrained-d", default=None, help="pretrained discriminator (.pth)")
    parser.add_argument("--auto-stop", default="true", help="stop when held-out loss stops improving")
    parser.add_argument("--tiny-model", action="store_true", help=argparse.SUPPRESS)  # tests and debug runs


def _batch_size(text: str) -> int | str:
    from rvc.config.train import parse_batch_size
    from rvc.settings import cli_message

    try:
        return parse_batch_size(text)
    except UserError as error:  # argparse reports it as "argument --batch-size: ..."
        raise argparse.ArgumentTypeError(cli_message(error)) from None


def stage_arguments(args: argparse.Namespace) -> dict[str, list[str]]:
    """Return each stage's own arguments (after ``python -m rvc ... <stage>``); train and export take none."""
    name = ["--experiment", args.experiment]
    config = [*name, "--auto-stop", args.auto_stop]
    for flag, value in (
        ("--epochs", args.epochs),
        ("--batch-size", args.batch_size),
        ("--pretrained-g", args.pretrained_g),
        ("--pretrained-d", args.pretrained_d),
    ):
        if value is not None:
            config += [flag, str(value)]
    if args.tiny_model:
        config.append("--tiny-model")
    return {
        "prepare": [*name, "--input", *args.input, "--sample-rate", str(args.sample_rate)],
        "extract": [*name, "--f0", args.f0, "--embedder", args.embedder, "--device", args.device],
        "config": config,
        "index": name,
    }


def refuse_early(workspace: Workspace, args: argparse.Namespace, arguments: dict[str, list[str]]) -> None:
    """Refuse what a later stage would refuse, before prepare's minutes of work.

    Each stage's flags are read by that stage's own parser (argparse says what is wrong and exits
    with status 2), and the training settings are checked as ``config`` checks them; what depends
    on the data (the batch against the clips, a pretrain's rate) is still judged by ``config``.
    """
    import dataclasses

    from rvc.cli import build_parser
    from rvc.config.experiment import ExperimentConfig
    from rvc.config.train import TrainConfig
    from rvc.config.validate import pretrain_problem
    from rvc.features.embedder_sources import EMBEDDERS
    from rvc.models.config import ModelConfig

    folders = ["--logs-dir", str(workspace.logs_dir), "--assets-dir", str(workspace.assets_dir)]
    parsed = {stage: build_parser().parse_args([*folders, stage, *argv]) for stage, argv in arguments.items()}
    given = {f.name: getattr(parsed["config"], f.name, None) for f in dataclasses.fields(TrainConfig)}
    train = dataclasses.replace(TrainConfig(), **{k: v for k, v in given.items() if v is not None})
    errors = train.errors()
    model = ModelConfig.tiny(args.sample_rate) if args.tiny_model else ModelConfig.for_sample_rate(args.sample_rate)
    for flag, path in (("--pretrained-g", train.pretrained_g), ("--pretrained-d", train.pretrained_d)):
        if path and not Path(path).is_file():
            errors.append(f"{flag} {path} is not a file: give the path of the pretrained .pth")
        elif path and (problem := pretrain_problem(ExperimentConfig(model, train), path, flag == "--pretrained-g")):
            errors.append(problem)  # the check config makes, before prepare's minutes instead of after
    if args.embedder not in EMBEDDERS and not Path(args.embedder).expanduser().exists():  # as extract would say
        errors.append(
            f"--embedder {args.embedder!r} is no known content encoder ({', '.join(EMBEDDERS)}) and no path: give "
            "one of those, or the path of a Hugging Face model folder or a fairseq .pt file"
        )
    errors += _configured_rate_problems(workspace, args)
    if errors:
        raise UserError("nothing was started:\n  " + "\n  ".join(errors))


def _configured_rate_problems(workspace: Workspace, args: argparse.Namespace) -> list[str]:
    """An experiment configured before keeps its model (config changes only what it is given), so a dataset
    prepared at another rate is refused by config, after prepare has replaced the one it had."""
    from rvc.experiment.config_file import find_config

    experiment = workspace.experiment(args.experiment)
    saved = find_config(experiment, check=False)
    if saved is None or saved.model.sample_rate == args.sample_rate:
        return []
    rate = saved.model.sample_rate
    return [
        f"experiment {args.experiment} is configured for a {rate} Hz model ({experiment.config_json}): run it "
        f"with --sample-rate {rate} (its dataset and states stay as they are), or choose another --experiment name"
    ]


def run(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    name = args.experiment
    arguments = stage_arguments(args)
    refuse_early(workspace, args, arguments)
    chain = reporter.bar("stages", len(STAGES), "stage")
    exported: list[str] = []
    try:
        for number, (stage, what) in enumerate(STAGES.items(), start=1):
            reporter.log(f"== {stage}: {what} (stage {number} of {len(STAGES)})")
            if stage == "train":
                code, exported = _train(workspace, name, args.device, reporter)
            elif stage == "export":
                code = _export(workspace, name, exported, reporter)
            else:
                code = _stage(workspace, stage, arguments[stage], reporter)
            if code != 0:
                reporter.log(f"stopped: the {stage} stage failed (exit {code}); finished work is kept for the next run")
                return code
            chain.update(1)
    finally:
        chain.close()
    experiment = workspace.experiment(name)
    models = ", ".join(str(path) for path in experiment.exported_models())
    reporter.result(f"{name}: trained from its recordings; model {models}; index {experiment.index_file}")
    return 0


def _stage(workspace: Workspace, stage: str, argv: list[str], reporter: Reporter) -> int:
    """Run one stage of ``python -m rvc`` in this process, with this command's reporter."""
    from rvc.cli import CHANGE_EXPERIMENT, _stage_module, build_parser
    from rvc.experiment.lock import refuse_while_training

    folders = ["--logs-dir", str(workspace.logs_dir), "--assets-dir", str(workspace.assets_dir)]
    args = build_parser().parse_args([*folders, stage, *argv])
    if stage in CHANGE_EXPERIMENT:
        refuse_while_training(workspace.experiment(args.experiment), stage)
    module = _stage_module(stage)
    if getattr(module, "PROGRESS", False):
        return int(module.run(args, workspace, reporter))
    return int(module.run(args, workspace))


def _export(workspace: Workspace, name: str, exported: list[str], reporter: Reporter) -> int:
    """Export the best (else the latest) saved state, unless the trainer exported its model as it ended."""
    if exported:
        reporter.log(f"the trainer exported {', '.join(exported)}")
        return 0
    which = "best" if workspace.experiment(name).checkpoints.has_best() else "latest"
    return _stage(workspace, "export", ["--experiment", name, "--checkpoint", which], reporter)


def _train(workspace: Workspace, name: str, device: str, reporter: Reporter) -> tuple[int, list[str]]:
    """Train as a child process and follow its events; return its exit status and the models it exported."""
    from rvc.train import launcher
    from rvc.train.progress import read_events

    experiment = workspace.experiment(name)
    events_file = experiment.progress_jsonl
    offset = events_file.stat().st_size if events_file.exists() else 0  # this launch's events only
    child = launcher.start(workspace, name, launcher.train_command(workspace, name, device=device))
    follower = _TrainFollower(reporter)
    try:
        while child.poll() is None:
            found, offset = read_events(events_file, offset)
            follower.apply_all(found)
            time.sleep(POLL_S)
    except BaseException:  # a stop of the chain (SIGTERM, Ctrl-C): the trainer saves, then the chain ends
        reporter.log("stopping the trainer: it saves its state (Resume, or running this again, continues it)")
        launcher.stop(experiment, child)
        raise
    finally:
        follower.close()
    found, offset = read_events(events_file, offset)
    follower.apply_all(found)
    follower.close()
    if child.returncode != 0:
        failed = f"the trainer exited with status {child.returncode}; its log is {experiment.train_log}"
        raise UserError(follower.failure or failed)
    return 0, follower.exported


class _TrainFollower:
    """Turn the trainer's events into a bar of steps and a few lines for the chain's log."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.bar: Bar | None = None
        self.first_step = 0
        self.shown = 0
        self.exported: list[str] = []
        self.failure: str | None = None

    def apply_all(self, events: list[Event]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: Event) -> None:
        from rvc.train.events import DoneEvent, EpochEvent, ErrorEvent, ExportEvent, StartEvent, StepEvent

        if isinstance(event, StartEvent):
            self.close()
            self.first_step, self.shown = event.start_step, event.start_step
            self.bar = self.reporter.bar("training", max(event.total_steps - event.start_step, 1), "step")
            where = f"from step {event.start_step}" if event.start_step else "from the start"
            self.reporter.log(
                f"training {event.clips} clips on {event.device}: {event.epochs} epochs of {event.steps_per_epoch} "
                f"steps, {where}"
            )
        elif isinstance(event, StepEvent) and self.bar is not None and event.step > self.shown:
            self.bar.update(event.step - self.shown)
            self.shown = event.step
        elif isinstance(event, EpochEvent):
            held_out = event.validation.get("loss/val/mel")
            extra = f", held-out mel L1 {held_out:.4g}" if held_out is not None else ""
            self.reporter.log(f"epoch {event.epoch} of {event.epochs} done in {event.epoch_s:.1f} s{extra}")
        elif isinstance(event, ExportEvent):
            self.exported.append(event.path)
        elif isinstance(event, ErrorEvent) and not event.recoverable:
            self.failure = f"training failed: {event.message}"
        elif isinstance(event, DoneEvent) and event.stopped:
            self.reporter.log(f"training was stopped at step {event.step}; its state is saved")
        elif isinstance(event, DoneEvent):
            self.reporter.log(f"training finished at step {event.step}, after epoch {event.epoch}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

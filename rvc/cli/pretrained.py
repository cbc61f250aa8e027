"""``python -m rvc pretrained``: list, download and add pretrained G/D pairs (and the data stage's weights).

A stage with progress (``rvc.cli.progress``): a download shows a bar per file with its rate and
ETA, says each retry while the Hub cannot be reached, and with ``--json-progress`` speaks the
``@@rvc`` protocol; the web app's Download Pretrained tab runs it as a job of the assets folder.
Each action takes the progress flags itself (``pretrained download NAME --json-progress``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.choices import SAMPLE_RATES
from rvc.cli.progress import add_progress_arguments
from rvc.experiment import Workspace
from rvc.experiment.names import DISCRIMINATOR_PATTERN, GENERATOR_PATTERN
from rvc.jobs.reporter import BYTES, Bar, Reporter
from rvc.pretrained.download import RETRIES

if TYPE_CHECKING:
    from rvc.pretrained.catalogue import Catalogue
    from rvc.pretrained.download import DownloadProgress

HELP = "list, download (from the Hugging Face Hub) and add pretrained G/D pairs, rmvpe and the content encoders"
PROGRESS = True  # a bar per file with an ETA, or --json-progress (rvc.cli.progress)
PROGRESS_PER_ACTION = True  # the flags follow the action: `pretrained download NAME --json-progress`

_RATES = SAMPLE_RATES


def _retries(text: str) -> int:
    """--retries: a whole number of 0 or more (-1 was read as 0)."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of retries, got {text!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more retries, got {count}")
    return count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show the catalogue and the installed pairs")
    listing.add_argument("--sample-rate", type=int, choices=_RATES, default=None, help="only this sample rate")
    download = actions.add_parser(
        "download",
        help="download a catalogue pretrain (or rmvpe / an embedder) into the assets folder",
        description="NAME is a pretrain id or name from `pretrained list` (e.g. titan, rvc-v2), "
        "or 'rmvpe', or an embedder name (contentvec, hubert_base, ...). "
        "The Hub address comes from HF_ENDPOINT (default https://huggingface.co).",
    )
    download.add_argument("name", metavar="NAME", help="catalogue id or name, 'rmvpe' or an embedder name")
    download.add_argument(
        "--sample-rate", type=int, choices=_RATES, default=None, help="which pair (needed when it has several)"
    )
    download.add_argument(
        "--retries",
        type=_retries,
        default=RETRIES,
        metavar="N",
        help="times to ask the Hub again while it cannot be reached (waiting 1, 2, 4 ... s; each wait is said)",
    )
    add = actions.add_parser("add", help="validate a custom G and D and copy them into the assets folder")
    add.add_argument("--g", type=Path, required=True, help=f"the generator file ({GENERATOR_PATTERN})")
    add.add_argument("--d", type=Path, required=True, help=f"the matching discriminator file ({DISCRIMINATOR_PATTERN})")
    add.add_argument("--name", required=True, help="name of the pair (letters, digits, '-', '_', '.')")
    add.add_argument(
        "--sample-rate", type=int, choices=_RATES, default=None, help="unset: detected from the G file's shapes"
    )
    add.add_argument("--overwrite", action="store_true", help="replace a pair of the same name and sample rate")
    for action in (listing, download, add):
        add_progress_arguments(action)


def run(args: argparse.Namespace, workspace: Workspace, reporter: Reporter) -> int:
    from rvc.pretrained.catalogue import load_catalogue_for

    catalogue = load_catalogue_for(workspace.assets)
    if args.action == "list":
        return _list(catalogue, workspace, args.sample_rate)
    if args.action == "download":
        return _download(catalogue, workspace, args, reporter)
    return _add(workspace, args, reporter)


def _list(catalogue: Catalogue, workspace: Workspace, sample_rate: int | None) -> int:
    from rvc.experiment.names import sample_rate_tag
    from rvc.pretrained.catalogue import installed_pair
    from rvc.pretrained.pairs import list_pretrain_pairs

    assets = workspace.assets
    print(f"catalogue: {catalogue.path}")
    for entry in catalogue.pretrains:
        cells = []
        for rate in entry.rates:
            if sample_rate is not None and rate.sample_rate != sample_rate:
                continue
            tag = sample_rate_tag(rate.sample_rate)
            if not rate.available:
                cells.append(f"{tag} unavailable")
            else:
                cells.append(f"{tag} installed" if installed_pair(assets, entry, rate.sample_rate) else tag)
        if cells:
            print(f"  {entry.id:<20} {entry.name} by {entry.author}: {', '.join(cells)}")
    print("other weights:")
    for asset in catalogue.weights:
        state = "installed" if asset.installed(assets) else "not downloaded"
        print(f"  {asset.id:<20} {asset.name} ({asset.kind}): {state}")
    pairs = list_pretrain_pairs(assets, sample_rate)
    print(f"installed pairs in {assets.pretrained_dir}:" if pairs else f"no pairs installed in {assets.pretrained_dir}")
    for pair in pairs:
        print(f"  {pair.label}\n    G {pair.g}\n    D {pair.d}")
    return 0


def _download(catalogue: Catalogue, workspace: Workspace, args: argparse.Namespace, reporter: Reporter) -> int:
    from rvc.errors import UserError
    from rvc.experiment.names import sample_rate_tag
    from rvc.pretrained.download import download_pretrain, download_weights

    assets, name, retries = workspace.assets, args.name, args.retries
    bars = _DownloadBars(reporter)
    if name.strip().lower() in {a.id.lower() for a in catalogue.weights}:
        asset = catalogue.find_weights(name)
        reporter.log(f"downloading {asset.name} into {asset.target_dir(assets)}")
        try:
            paths = download_weights(assets, asset, progress=bars, retries=retries, log=reporter.log)
        finally:
            bars.close()
        for path in paths:
            print(path)
        reporter.result(f"downloaded {asset.name} into {paths[0].parent}")
        return 0
    entry = catalogue.find_pretrain(name)
    sample_rate = args.sample_rate
    if sample_rate is None:
        if len(entry.available_rates) != 1:
            offered = ", ".join(str(r) for r in entry.available_rates) or "none"
            raise UserError(f"{entry.name} comes at several sample rates: add --sample-rate ({offered})")
        sample_rate = entry.available_rates[0]
    reporter.log(f"downloading {entry.name} {sample_rate_tag(sample_rate)} into {assets.pretrained_dir}")
    try:
        pair = download_pretrain(assets, entry, sample_rate, progress=bars, retries=retries, log=reporter.log)
    finally:
        bars.close()
    print(f"{pair.label}\n  --pretrained-g {pair.g}\n  --pretrained-d {pair.d}")
    reporter.result(f"downloaded {pair.label} into {pair.g.parent}")
    return 0


class _DownloadBars:
    """A download's progress as the stage's bars: one per file and step (downloading, then checking)."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.key: tuple[int, str] | None = None
        self.bar: Bar | None = None
        self.done = 0

    def __call__(self, update: DownloadProgress) -> None:
        key = (update.file_index, update.stage)
        if key != self.key or self.bar is None:
            self.close()
            verb = "checking" if update.stage == "verify" else "downloading"
            task = f"{verb} {Path(update.filename).name} ({update.file_index + 1}/{update.file_count})"
            self.key, self.done = key, 0
            self.bar = self.reporter.bar(task, update.total or 0, BYTES)
        self.bar.update(update.done - self.done)
        self.done = update.done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _add(workspace: Workspace, args: argparse.Namespace, reporter: Reporter) -> int:
    from rvc.pretrained.custom import add_custom_pair

    pair = add_custom_pair(workspace.assets, args.name, args.g, args.d, args.sample_rate, overwrite=args.overwrite)
    print(f"added {pair.label}\n  --pretrained-g {pair.g}\n  --pretrained-d {pair.d}")
    reporter.result(f"added {pair.label} to {pair.g.parent}")
    return 0

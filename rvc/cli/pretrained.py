"""``python -m rvc pretrained``: list, download and add pretrained G/D pairs (and the data stage's weights)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rvc.choices import SAMPLE_RATES
from rvc.experiment import Workspace
from rvc.experiment.names import DISCRIMINATOR_PATTERN, GENERATOR_PATTERN

if TYPE_CHECKING:
    from rvc.pretrained.catalogue import Catalogue
    from rvc.pretrained.download import DownloadProgress

HELP = "list, download (from the Hugging Face Hub) and add pretrained G/D pairs, rmvpe and the content encoders"

_RATES = SAMPLE_RATES


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
    add = actions.add_parser("add", help="validate a custom G and D and copy them into the assets folder")
    add.add_argument("--g", type=Path, required=True, help=f"the generator file ({GENERATOR_PATTERN})")
    add.add_argument("--d", type=Path, required=True, help=f"the matching discriminator file ({DISCRIMINATOR_PATTERN})")
    add.add_argument("--name", required=True, help="name of the pair (letters, digits, '-', '_', '.')")
    add.add_argument(
        "--sample-rate", type=int, choices=_RATES, default=None, help="unset: detected from the G file's shapes"
    )
    add.add_argument("--overwrite", action="store_true", help="replace a pair of the same name and sample rate")


def run(args: argparse.Namespace, workspace: Workspace) -> int:
    from rvc.pretrained.catalogue import load_catalogue_for

    catalogue = load_catalogue_for(workspace.assets)
    if args.action == "list":
        return _list(catalogue, workspace, args.sample_rate)
    if args.action == "download":
        return _download(catalogue, workspace, args.name, args.sample_rate)
    return _add(workspace, args)


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


def _download(catalogue: Catalogue, workspace: Workspace, name: str, sample_rate: int | None) -> int:
    from rvc.errors import UserError
    from rvc.experiment.names import sample_rate_tag
    from rvc.pretrained.download import download_pretrain, download_weights

    assets = workspace.assets
    if name.strip().lower() in {a.id.lower() for a in catalogue.weights}:
        paths = download_weights(assets, catalogue.find_weights(name), progress=_print_progress)
        print(file=sys.stderr)
        for path in paths:
            print(path)
        return 0
    entry = catalogue.find_pretrain(name)
    if sample_rate is None:
        if len(entry.available_rates) != 1:
            offered = ", ".join(str(r) for r in entry.available_rates) or "none"
            raise UserError(f"{entry.name} comes at several sample rates: add --sample-rate ({offered})")
        sample_rate = entry.available_rates[0]
    print(f"downloading {entry.name} {sample_rate_tag(sample_rate)} into {assets.pretrained_dir}", file=sys.stderr)
    pair = download_pretrain(assets, entry, sample_rate, progress=_print_progress)
    print(file=sys.stderr)
    print(f"{pair.label}\n  --pretrained-g {pair.g}\n  --pretrained-d {pair.d}")
    return 0


def _print_progress(update: DownloadProgress) -> None:
    fraction = update.fraction
    percent = f" {100 * fraction:5.1f}%" if fraction is not None else ""
    print(f"\r{update.text}{percent}   ", end="", file=sys.stderr, flush=True)


def _add(workspace: Workspace, args: argparse.Namespace) -> int:
    from rvc.pretrained.custom import add_custom_pair

    pair = add_custom_pair(workspace.assets, args.name, args.g, args.d, args.sample_rate, overwrite=args.overwrite)
    print(f"added {pair.label}\n  --pretrained-g {pair.g}\n  --pretrained-d {pair.d}")
    return 0

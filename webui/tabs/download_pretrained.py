"""Download Pretrained tab: the catalogue, Hub downloads with progress, custom G/D uploads, installed pairs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.experiment.names import DISCRIMINATOR_PATTERN, GENERATOR_PATTERN, sample_rate_tag
from rvc.pretrained.catalogue import SAMPLE_RATES, Catalogue, installed_pair, load_catalogue_for
from rvc.pretrained.custom import add_custom_pair
from rvc.pretrained.download import DownloadProgress, ProgressCallback, download_pretrain, download_weights
from rvc.pretrained.pairs import list_pretrain_pairs

if TYPE_CHECKING:
    from webui.context import AppContext

INTRO = (
    "A pretrain is a G/D pair already trained on hours of many voices: fine-tuning from one needs minutes of "
    "audio instead of hours. Pick one trained at your dataset's sample rate. Downloads come from the Hugging Face "
    "Hub into `{folder}/<name>/<rate>/`, are checked (sha256 where known) and then appear in the "
    "**Generate Configuration** tab's pretrain lists."
)
ALL = 0  # the sample-rate filter's "all" value
RATE_FILTER = [("All", ALL), *((sample_rate_tag(r), r) for r in SAMPLE_RATES)]
CATALOGUE_HEADERS = ["Pretrain", "Author", "32k", "40k", "48k", "About"]
INSTALLED_HEADERS = ["Pair", "Rate", "Origin", "G file", "D file"]
WEIGHTS_HEADERS = ["Weights", "Used for", "Status", "Hugging Face repository"]
_CHOICE = re.compile(r"(?P<id>[a-z0-9][a-z0-9._-]*)@(?P<rate>32000|40000|48000)")


# ------------------------------------------------------------------ handlers


def _shown(path: Path, assets: AssetDir) -> str:
    try:
        return str(path.relative_to(assets.root))
    except ValueError:
        return str(path)


def catalogue_rows(assets: AssetDir, catalogue: Catalogue, rate_filter: int) -> list[list[str]]:
    """Return the catalogue table: one row per pretrain offering ``rate_filter`` (all when 0)."""
    rows = []
    for entry in catalogue.pretrains:
        if rate_filter and rate_filter not in entry.available_rates:
            continue
        cells = []
        for rate in SAMPLE_RATES:
            offer = entry.rate(rate)
            if offer is None:
                cells.append("–")
            elif not offer.available:
                cells.append("files unknown")
            else:
                cells.append("✓ installed" if installed_pair(assets, entry, rate) else "available")
        rows.append([entry.name, entry.author, *cells, entry.description])
    return rows


def download_choices(assets: AssetDir, catalogue: Catalogue, rate_filter: int) -> list[tuple[str, str]]:
    """Return the (label, value) pairs of the download dropdown: each available pretrain at each rate."""
    choices = []
    for entry in catalogue.pretrains:
        for rate in entry.available_rates:
            if rate_filter and rate != rate_filter:
                continue
            mark = " (installed)" if installed_pair(assets, entry, rate) else ""
            choices.append((f"{entry.name} · {sample_rate_tag(rate)} · {entry.author}{mark}", f"{entry.id}@{rate}"))
    return choices


def installed_rows(assets: AssetDir, rate_filter: int) -> list[list[str]]:
    """Return the installed-pairs table (what Generate Configuration offers)."""
    return [
        [pair.name, sample_rate_tag(pair.sample_rate), pair.origin, _shown(pair.g, assets), _shown(pair.d, assets)]
        for pair in list_pretrain_pairs(assets, rate_filter or None)
    ]


def weights_rows(assets: AssetDir, catalogue: Catalogue) -> list[list[str]]:
    """Return the table of the data stage's weights (rmvpe, content encoders) and whether each is there."""
    rows = []
    for asset in catalogue.weights:
        used_for = "pitch (--f0 rmvpe)" if asset.kind == "rmvpe" else f"content features (--embedder {asset.id})"
        status = "✓ installed" if asset.installed(assets) else "downloads on first use"
        rows.append([asset.name, used_for, status, asset.files[0][0].repo_id])
    return rows


def weights_choices(catalogue: Catalogue) -> list[tuple[str, str]]:
    return [(f"{asset.name} ({asset.kind})", asset.id) for asset in catalogue.weights]


def gradio_progress(progress: Any) -> ProgressCallback:
    """Return a download callback that moves a ``gr.Progress`` bar."""

    def report(update: DownloadProgress) -> None:
        progress(update.fraction, desc=update.text)

    return report


def download_selected(assets: AssetDir, choice: str | None, report: ProgressCallback | None = None) -> str:
    """Download the chosen ``"<id>@<rate>"`` pretrain; return a status line for the user."""
    match = _CHOICE.fullmatch(choice or "")
    if match is None:
        return "Choose a pretrain and sample rate in the list first."
    try:
        catalogue = load_catalogue_for(assets)
        entry = catalogue.find_pretrain(match["id"])
        pair = download_pretrain(assets, entry, int(match["rate"]), progress=report)
    except UserError as error:
        return f"❌ {error}"
    except OSError as error:  # disk full, permissions, a second download of the same pair racing this one
        return f"❌ could not write the download into {assets.root}: {error}"
    return (
        f"✅ Downloaded **{pair.label}** into `{_shown(pair.g.parent, assets)}/`. "
        "It is in the Generate Configuration tab's pretrain lists now."
    )


def download_weights_selected(assets: AssetDir, asset_id: str | None, report: ProgressCallback | None = None) -> str:
    """Download the chosen rmvpe / content-encoder weights; return a status line."""
    if not asset_id:
        return "Choose the weights to download first."
    try:
        asset = load_catalogue_for(assets).find_weights(asset_id)
        paths = download_weights(assets, asset, progress=report)
    except UserError as error:
        return f"❌ {error}"
    except OSError as error:
        return f"❌ could not write the download into {assets.root}: {error}"
    return f"✅ Downloaded **{asset.name}** into `{_shown(paths[0].parent, assets)}/`."


def suggest_pair_name(g_file: str | None) -> str:
    """Return a pair name from an uploaded G file name: ``G_SnowieV3.1_40k.pth`` -> ``SnowieV3.1_40k``."""
    if not g_file:
        return ""
    stem = Path(g_file).stem
    stem = re.sub(r"^(f0)?G[_-]?|[_-]G$", "", stem) or stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "custom"


def add_uploaded_pair(
    assets: AssetDir, g_file: str | None, d_file: str | None, name: str | None, sample_rate: int
) -> str:
    """Validate an uploaded G and D against the chosen sample rate and add them; return a status line."""
    if not g_file or not d_file:
        return "Upload both files: the generator (G) and the discriminator (D)."
    name = (name or "").strip()
    if not name:
        return "❌ Give the pair a name (letters, digits, '-', '_', '.')."
    try:
        pair = add_custom_pair(assets, name, Path(g_file), Path(d_file), int(sample_rate))
    except UserError as error:  # includes PretrainMismatchError: the shapes do not fit that sample rate
        return f"❌ Not added: {error}"
    except OSError as error:
        return f"❌ Not added: could not copy the files into {assets.pretrained_dir}: {error}"
    return (
        f"✅ Added **{pair.label}** to `{_shown(pair.g.parent, assets)}/` after checking both files against the "
        f"{sample_rate_tag(pair.sample_rate)} v2 model. It is in the Generate Configuration tab's lists now."
    )


# ------------------------------------------------------------------ layout


def render(ctx: AppContext) -> None:
    """Draw the tab inside the current ``gr.Tab`` and wire it to the handlers above."""
    import gradio as gr

    assets = ctx.workspace.assets
    try:
        found: Catalogue | None = load_catalogue_for(assets)
        problem = ""
    except UserError as error:
        found, problem = None, f"❌ {error}"

    gr.Markdown(INTRO.format(folder=_shown(assets.pretrained_dir, assets)))
    rate_filter = gr.Radio(RATE_FILTER, value=ALL, label="Sample rate", info="show the pretrains trained at this rate")
    table = gr.Dataframe(
        catalogue_rows(assets, found, ALL) if found else None,
        headers=CATALOGUE_HEADERS,
        interactive=False,
        wrap=True,
        column_widths=["14%", "17%", "9%", "9%", "9%", "42%"],
        label="Catalogue",
        max_height=440,
    )
    with gr.Row(equal_height=True):
        choice = gr.Dropdown(
            download_choices(assets, found, ALL) if found else [], value=None, label="Pretrain to download", scale=4
        )
        download_button = gr.Button("Download", variant="primary", scale=1, min_width=140)
    status = gr.Markdown(problem, elem_id="pretrained-status")

    with gr.Accordion("Add your own G/D pair", open=False):
        gr.Markdown(
            "Both files are loaded safely (`weights_only=True`: tensors only, no code) and their shapes are "
            "checked against the v2 model of the chosen sample rate before they are copied into the assets folder."
        )
        with gr.Row():
            g_file = gr.File(label=f"Generator ({GENERATOR_PATTERN})", file_types=[".pth"], type="filepath", height=120)
            d_file = gr.File(
                label=f"Discriminator ({DISCRIMINATOR_PATTERN})", file_types=[".pth"], type="filepath", height=120
            )
        with gr.Row(equal_height=True):
            pair_name = gr.Textbox(label="Name", placeholder="e.g. my-pretrain", scale=2)
            pair_rate = gr.Radio(
                [(sample_rate_tag(r), r) for r in SAMPLE_RATES], value=40000, label="Trained at", scale=2
            )
            add_button = gr.Button("Validate and add", scale=1, min_width=160)
        add_status = gr.Markdown()

    with gr.Accordion("Pitch and content-encoder weights", open=False):
        gr.Markdown(
            "The data stage downloads these on first use; fetch them here ahead of time (before going offline, say)."
        )
        weights_table = gr.Dataframe(
            weights_rows(assets, found) if found else None,
            headers=WEIGHTS_HEADERS,
            interactive=False,
            wrap=True,
            label="Weights",
        )
        with gr.Row(equal_height=True):
            weights_choice = gr.Dropdown(
                weights_choices(found) if found else [], value=None, label="Weights to download", scale=4
            )
            weights_button = gr.Button("Download weights", scale=1, min_width=160)
        weights_status = gr.Markdown()

    installed = gr.Dataframe(
        installed_rows(assets, ALL),
        headers=INSTALLED_HEADERS,
        interactive=False,
        wrap=True,
        label="Installed pairs (offered in Generate Configuration)",
        column_widths=["18%", "7%", "10%", "32%", "33%"],
    )

    def refresh(rate: int) -> tuple[Any, ...]:
        try:
            current = load_catalogue_for(assets)
        except UserError as error:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), installed_rows(assets, rate), f"❌ {error}"
        return (
            catalogue_rows(assets, current, rate),
            gr.update(choices=download_choices(assets, current, rate)),
            weights_rows(assets, current),
            gr.update(choices=weights_choices(current)),
            installed_rows(assets, rate),
            gr.skip(),
        )

    views = [table, choice, weights_table, weights_choice, installed]

    def download(value: str | None, rate: int, progress: Any = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 (gradio injects it)
        message = download_selected(assets, value, gradio_progress(progress))
        return (*refresh(rate)[:-1], message)

    def download_extra(value: str | None, rate: int, progress: Any = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 (gradio injects it)
        message = download_weights_selected(assets, value, gradio_progress(progress))
        return (*refresh(rate)[:-1], message)

    def add(g: str | None, d: str | None, name: str | None, pair_sr: int, rate: int) -> tuple[Any, ...]:
        message = add_uploaded_pair(assets, g, d, name, pair_sr)
        return (*refresh(rate)[:-1], message)

    tab = _current_tab()
    # the tab's select event re-reads the folder: pairs added from the command line show up too
    for trigger in [rate_filter.change] + ([tab.select] if tab is not None else []):
        trigger(refresh, inputs=rate_filter, outputs=[*views, status])
    download_button.click(download, inputs=[choice, rate_filter], outputs=[*views, status])
    weights_button.click(download_extra, inputs=[weights_choice, rate_filter], outputs=[*views, weights_status])
    g_file.upload(suggest_pair_name, inputs=g_file, outputs=pair_name)
    add_button.click(add, inputs=[g_file, d_file, pair_name, pair_rate, rate_filter], outputs=[*views, add_status])


def _current_tab() -> Any:
    """Return the gr.Tab this tab is drawn in (its select event refreshes the tables), or None."""
    import gradio as gr
    from gradio.context import Context

    block = Context.block
    return block if isinstance(block, gr.Tab) else None

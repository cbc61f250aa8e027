"""Download Pretrained tab: the catalogue, Hub downloads with progress, custom G/D uploads, installed pairs.

A download runs as a job of the assets folder (``python -m rvc pretrained download ...``, a child
process): its bars, its log (each retry while the Hub cannot be reached) and Stop are drawn by a
job panel, so closing or reloading the page loses nothing and the server never waits on the Hub.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.experiment.names import DISCRIMINATOR_PATTERN, GENERATOR_PATTERN, sample_rate_tag
from rvc.jobs.state import ENDED, read_job
from rvc.pretrained.catalogue import SAMPLE_RATES, Catalogue, installed_pair, load_catalogue_for
from rvc.pretrained.custom import add_custom_pair
from rvc.pretrained.pairs import list_pretrain_pairs
from webui.job_panel import render_panel, wire_assets_panel
from webui.stage_jobs import StageJobs

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
STAGE = "pretrained"  # a download is `python -m rvc pretrained download ...`, a job of the assets folder


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


def download_args(assets: AssetDir, choice: str | None) -> tuple[list[str], str]:
    """Return the download job's arguments and title for the chosen ``"<id>@<rate>"``; UserError when none is."""
    match = _CHOICE.fullmatch(choice or "")
    if match is None:
        raise UserError("choose a pretrain and sample rate in the list first")
    entry = load_catalogue_for(assets).find_pretrain(match["id"])
    rate = int(match["rate"])
    return ["download", entry.id, "--sample-rate", str(rate)], f"{entry.name} {sample_rate_tag(rate)}"


def weights_args(assets: AssetDir, asset_id: str | None) -> tuple[list[str], str]:
    """Return the download job's arguments and title for rmvpe or a content encoder's weights."""
    if not asset_id:
        raise UserError("choose the weights to download first")
    asset = load_catalogue_for(assets).find_weights(asset_id)
    return ["download", asset.id], asset.name


def start_download(jobs: StageJobs, request: Callable[[], tuple[list[str], str]]) -> str:
    """Start the download ``request()`` describes as a job; return the line the tab shows."""
    try:
        args, title = request()
        jobs.start_assets(STAGE, args)
    except UserError as error:  # no such pretrain, or a download runs already
        return f"Not started: {error}"
    return f"Downloading {title}: the download log shows its progress; it goes on if this page is closed or reloaded."


def download_outcome(assets: AssetDir, jobs: StageJobs) -> str:
    """Return what the newest download came to ("" while it runs, or when there was none)."""
    job = jobs.pick_assets((STAGE,))
    if job is None:
        return ""
    state, status = read_job(job.events)
    if status not in ENDED:
        return ""
    if status == "done" and state.end is not None and " into " in state.end.message:
        what, folder = state.end.message.removeprefix("downloaded ").rsplit(" into ", 1)
        pair = Path(folder).is_relative_to(assets.pretrained_dir)
        where = " It is in the Generate Configuration tab's pretrain lists now." if pair else ""
        return f"Downloaded **{what}** into `{_shown(Path(folder), assets)}/`.{where}"
    if state.end is None:
        return "Not downloaded: the download's process ended without a word (killed?); start it again to resume."
    return f"Not downloaded: {state.end.message}"


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
        return "Not added: give the pair a name (letters, digits, '-', '_', '.')."
    if sample_rate not in SAMPLE_RATES:  # none chosen (a stale page): int(None) raised
        rates = ", ".join(sample_rate_tag(rate) for rate in SAMPLE_RATES)
        return f"Not added: choose the rate the pair was trained at ('Trained at': {rates})."
    try:
        pair = add_custom_pair(assets, name, Path(g_file), Path(d_file), int(sample_rate))
    except UserError as error:  # includes PretrainMismatchError: the shapes do not fit that sample rate
        return f"Not added: {error}"
    except OSError as error:
        return f"Not added: could not copy the files into {assets.pretrained_dir}: {error}"
    return (
        f"Added **{pair.label}** to `{_shown(pair.g.parent, assets)}/` after checking both files against the "
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
        found, problem = None, f"Error: {error}"

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
    panel = render_panel("Download log")  # the download job's bars, log and Stop; a reload draws the same job

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
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), installed_rows(assets, rate), f"Error: {error}"
        return (
            catalogue_rows(assets, current, rate),
            gr.update(choices=download_choices(assets, current, rate)),
            weights_rows(assets, current),
            gr.update(choices=weights_choices(current)),
            installed_rows(assets, rate),
            gr.skip(),
        )

    views = [table, choice, weights_table, weights_choice, installed]

    def download(value: str | None) -> tuple[str, Any]:
        notice = start_download(ctx.stage_jobs, lambda: download_args(assets, value))
        return notice, "" if notice.startswith("Downloading") else gr.skip()  # the last outcome is old news

    def download_extra(value: str | None) -> tuple[str, Any]:
        notice = start_download(ctx.stage_jobs, lambda: weights_args(assets, value))
        return notice, "" if notice.startswith("Downloading") else gr.skip()

    def downloaded(rate: int) -> tuple[Any, ...]:
        # the outcome replaces the "Downloading ..." notices, which are no longer true
        return (*refresh(rate)[:-1], download_outcome(assets, ctx.stage_jobs), "", "")

    def add(g: str | None, d: str | None, name: str | None, pair_sr: int, rate: int) -> tuple[Any, ...]:
        message = add_uploaded_pair(assets, g, d, name, pair_sr)
        return (*refresh(rate)[:-1], message)

    tab = _current_tab()
    # the tab's select event re-reads the folder: pairs added from the command line show up too
    for trigger in [rate_filter.change] + ([tab.select] if tab is not None else []):
        trigger(refresh, inputs=rate_filter, outputs=[*views, status])
    download_button.click(download, inputs=choice, outputs=[panel.notice, status])
    weights_button.click(download_extra, inputs=weights_choice, outputs=[weights_status, status])
    # When a download ends (here or in another page), the tables and the status say what it did.
    report = [*views, status, panel.notice, weights_status]
    wire_assets_panel(panel, ctx.stage_jobs, (STAGE,), report, downloaded, [rate_filter])
    g_file.upload(suggest_pair_name, inputs=g_file, outputs=pair_name)
    add_button.click(add, inputs=[g_file, d_file, pair_name, pair_rate, rate_filter], outputs=[*views, add_status])


def _current_tab() -> Any:
    """Return the gr.Tab this tab is drawn in (its select event refreshes the tables), or None."""
    import gradio as gr
    from gradio.context import Context

    block = Context.block
    return block if isinstance(block, gr.Tab) else None

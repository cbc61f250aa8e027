"""The Gradio web app. Only this package imports gradio."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio as gr

    from webui.context import AppContext

log = logging.getLogger(__name__)

# (tab label, module under webui.tabs), in the order a user works through them.
TABS = (
    ("Train from recordings", "train_from_recordings"),  # the newcomer's one click; the tabs after it are the steps
    ("Prepare Dataset", "prepare_dataset"),
    ("Generate Configuration", "generate_config"),
    ("Train", "train"),
    ("Download Pretrained", "download_pretrained"),
    ("Try Model", "try_model"),
    ("Model tools", "model_tools"),  # what to do with finished models: blend (Applio's "Extra")
    ("Settings", "settings"),
)

CSS = """
.rvc-header {margin-bottom: 0 !important}
.rvc-header p {color: var(--body-text-color-subdued); margin-top: 0}
.rvc-stats {display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 8px}
.rvc-stat {border: 1px solid var(--border-color-primary); border-radius: var(--radius-md); padding: 6px 10px;
  background: var(--block-background-fill)}
.rvc-stat-label {font-size: var(--text-sm); color: var(--body-text-color-subdued)}
.rvc-stat-value {font-weight: 600}
.rvc-console {max-height: 340px; overflow-y: auto; display: flex; flex-direction: column-reverse;
  border: 1px solid var(--border-color-primary); border-radius: var(--radius-md); padding: 8px 12px;
  background: var(--background-fill-secondary)}
.rvc-console pre {margin: 0; white-space: pre-wrap; font-family: var(--font-mono); font-size: var(--text-sm)}
.rvc-console-empty {color: var(--body-text-color-subdued); font-size: var(--text-sm)}
.rvc-tensorboard {width: 100%; height: 760px; border: 1px solid var(--border-color-primary);
  border-radius: var(--radius-md)}
.rvc-job {padding: 6px 10px}
.rvc-job-task {display: flex; gap: .6em; align-items: center; margin: .2em 0}
.rvc-job-task progress {flex: 1; height: 1em}
.rvc-job-name {min-width: 12em}
.rvc-job-count {font-size: var(--text-sm); color: var(--body-text-color-subdued)}
.rvc-current {border-left: 3px solid var(--color-accent); padding-left: 10px}
.rvc-current p {margin: 0}
#try-model-history th, #try-model-history th * {word-break: keep-all !important; overflow-wrap: normal !important;
  hyphens: none}
"""


def make_theme(name: str) -> gr.themes.Base:
    """Return the Gradio theme called ``name`` (one of webui.settings.THEMES)."""
    import gradio as gr

    themes = {
        "default": gr.themes.Default,
        "soft": gr.themes.Soft,
        "base": gr.themes.Base,
        "glass": gr.themes.Glass,
        "monochrome": gr.themes.Monochrome,
        "citrus": gr.themes.Citrus,
        "ocean": gr.themes.Ocean,
        "origin": gr.themes.Origin,
    }
    return themes.get(name, gr.themes.Default)()


def _tab_module(name: str) -> object | None:
    """Import ``webui.tabs.<name>``, or return None (and log it) when that tab has not landed yet."""
    qualified = f"webui.tabs.{name}"
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as error:
        if error.name != qualified:  # the tab exists but one of its imports is missing: a real error
            raise
        log.info("tab module %s does not exist yet: its tab is left out", qualified)
        return None


def build_ui(ctx: AppContext) -> gr.Blocks:
    """Build the app: one tab per module of ``webui.tabs`` that exists, each drawn by its ``render(ctx)``."""
    import gradio as gr

    from webui.current import CurrentExperiment
    from webui.tab_timers import tick_in_the_open_tab_only

    with gr.Blocks(title="RVC Studio") as app:
        gr.Markdown(
            "# RVC Studio\nRecordings in, a voice model out: prepare, configure, train, export.",
            elem_classes="rvc-header",
        )
        # One current experiment for every tab, remembered by the browser; the tabs register their choosers.
        ctx.current = CurrentExperiment(ctx.workspace)
        tabs = []
        with gr.Tabs():
            for label, name in TABS:
                module = _tab_module(name)
                if module is None:
                    continue
                with gr.Tab(label, id=name) as tab:
                    module.render(ctx)  # type: ignore[attr-defined]
                tabs.append(tab)
        tick_in_the_open_tab_only(tabs)
        ctx.current.wire(app)
    # The tabs' events are the UI's plumbing, not an API. Gradio describes public endpoints,
    # with their inputs' default values, even on the page it serves before the login (--auth),
    # so a public endpoint would show anyone its defaults: paths, settings, a typed secret.
    for function in app.fns.values():
        function.api_visibility = "private"
    return app

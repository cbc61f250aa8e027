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
    ("Prepare Dataset", "prepare_dataset"),
    ("Generate Configuration", "generate_config"),
    ("Train", "train"),
    ("Download Pretrained", "download_pretrained"),
    ("Try Model", "try_model"),
    ("Settings", "settings"),
)

CSS = """
footer {display: none !important}
.rvc-header {margin-bottom: 0 !important}
.rvc-header p {color: var(--body-text-color-subdued); margin-top: 0}
"""


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

    with gr.Blocks(title="RVC Studio") as app:
        gr.Markdown(
            "# RVC Studio\nRecordings in, a voice model out: prepare, configure, train, export.",
            elem_classes="rvc-header",
        )
        with gr.Tabs():
            for label, name in TABS:
                module = _tab_module(name)
                if module is None:
                    continue
                with gr.Tab(label, id=name):
                    module.render(ctx)  # type: ignore[attr-defined]
    return app

"""The Gradio web app. Only this package imports gradio."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio as gr

    from rvc.paths import Workspace


def build_ui(workspace: Workspace) -> gr.Blocks:
    """Build the app. The tabs arrive with the web app issue; today it says what is coming."""
    import gradio as gr

    with gr.Blocks(title="RVC Studio") as app:
        gr.Markdown(
            "# RVC Studio\n"
            "The data pipeline works from the command line today: "
            "`python -m rvc prepare` and `python -m rvc extract` (see the README).\n\n"
            "Coming next: Prepare Dataset, Generate Configuration, Train (live graphs, TensorBoard), "
            "Download Pretrained, Settings and Try Model tabs.\n\n"
            f"Experiments folder: `{workspace.logs_dir}` · assets folder: `{workspace.assets_dir}`"
        )
    return app

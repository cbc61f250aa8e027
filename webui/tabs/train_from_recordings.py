"""Train from recordings: one click from a folder of recordings to a voice model (the newcomer's path).

It starts ``python -m rvc run`` as one job (``webui.one_click``): prepare, extract, configure,
train, index, export. The job panel draws its stages' bars and its log, and re-attaches after a
reload or an app restart; the Train tab shows the training itself, live, as for any run.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr

from rvc.audio import AUDIO_EXTENSIONS
from rvc.choices import F0_METHODS, SAMPLE_RATES
from rvc.experiment.names import sample_rate_tag
from webui import one_click
from webui.context import AppContext
from webui.current import textbox_follower
from webui.encoders import encoder_choices, where_to_put
from webui.job_panel import render_panel, start_handler, wire_panel

INTRO = (
    "One click from your recordings to a voice model: the recordings are cut into clips, their pitch and "
    "content features computed, the training settings chosen for the data and this machine, the model "
    "trained (watch it in **Train**), the retrieval index built and the model exported. Each step is the "
    "same as in the other tabs, which show its results; closing the page stops nothing, and **Stop** keeps "
    "what is finished (pressing the button again goes on from there)."
)


def render(ctx: AppContext) -> None:
    """Draw the tab and wire its button to one ``run`` job."""
    gr.Markdown(INTRO)
    fields: dict[str, gr.components.Component] = {}
    with gr.Row():
        fields["experiment"] = experiment = gr.Textbox(
            label=one_click.LABELS["experiment"],
            placeholder="my-voice",
            info="the experiment's name (letters, digits, - _ and .); it becomes the app's current experiment",
            scale=2,
            elem_id="one-click-experiment",
        )
        fields["sample_rate"] = rate = gr.Radio(
            [(sample_rate_tag(rate), rate) for rate in SAMPLE_RATES],
            value=40000,
            label=one_click.LABELS["sample_rate"],
            info="40k suits most voices; the pretrains must match it",
        )
    with gr.Row(equal_height=True):
        fields["folders"] = gr.Textbox(
            label=one_click.LABELS["folders"],
            lines=2,
            placeholder="/home/me/recordings",
            info="one folder per line, read recursively (wav, flac, mp3, ...); 10 minutes or more of clean speech",
            elem_id="one-click-folders",
        )
        fields["uploads"] = gr.File(
            label=f"{one_click.LABELS['uploads']}: copied into the experiment when you start; ✕ only takes a file "
            "off this list",
            file_count="multiple",
            file_types=sorted(f".{ext}" for ext in AUDIO_EXTENSIONS),
            height=150,
        )
    _draw_settings(ctx, fields)
    button = gr.Button("Train from recordings", variant="primary", elem_id="one-click-start")
    panel = render_panel("Log of the chain")
    result = gr.Markdown(elem_id="one-click-result")

    ctx.current_experiment().follow(textbox_follower(experiment))
    keys = list(fields)

    def request(*values: Any) -> one_click.StageRequest:
        return one_click.chain_request(ctx, dict(zip(keys, values, strict=True)))

    button.click(start_handler(ctx.stage_jobs, request), inputs=list(fields.values()), outputs=panel.notice).then(
        lambda: "", outputs=result
    )
    wire_panel(panel, ctx.stage_jobs, experiment, [result], partial(one_click.outcome, ctx), stages=(one_click.STAGE,))
    rate.input(partial(_pretrains, ctx), inputs=rate, outputs=fields["pretrain"])
    # Weights added since the app started (an encoder, a pretrain pair) are offered when a page opens.
    gr.on(triggers=None, fn=partial(_refresh, ctx), inputs=rate, outputs=[fields["embedder"], fields["pretrain"]])


def _draw_settings(ctx: AppContext, fields: dict[str, gr.components.Component]) -> None:
    workspace = ctx.workspace
    pairs, first = one_click.pretrain_choices(workspace, 40000)
    rmvpe = workspace.assets.rmvpe_weights.is_file()
    with gr.Row():
        fields["f0_method"] = gr.Dropdown(
            list(F0_METHODS),
            value="rmvpe",
            label=one_click.LABELS["f0_method"],
            elem_id="one-click-f0",
            info="rmvpe: RVC's best" + ("" if rmvpe else " (its weights download on first use)"),
        )
        fields["embedder"] = gr.Dropdown(
            encoder_choices(workspace.assets),
            value="contentvec",
            allow_custom_value=True,
            label=one_click.LABELS["embedder"],
            elem_id="one-click-embedder",
            info=f"contentvec for most voices; {where_to_put(workspace.assets)}",
        )
        fields["epochs"] = gr.Number(
            None,
            precision=0,
            label=one_click.LABELS["epochs"],
            elem_id="one-click-epochs",
            info="empty or 0: chosen for the data; training stops itself once the held-out loss stops improving",
        )
    fields["pretrain"] = gr.Dropdown(
        pairs,
        value=first,
        label=one_click.LABELS["pretrain"],
        info="the model starts from these weights; get more in Download Pretrained",
    )


def _refresh(ctx: AppContext, rate: int) -> tuple[Any, Any]:
    return gr.update(choices=encoder_choices(ctx.workspace.assets)), _pretrains(ctx, rate)


def _pretrains(ctx: AppContext, rate: int) -> Any:
    pairs, first = one_click.pretrain_choices(ctx.workspace, rate)
    return gr.update(choices=pairs, value=first)

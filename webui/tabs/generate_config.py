"""Generate Configuration tab: every training setting, suggested values, import, validate, save."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rvc.errors import UserError
from rvc.experiment.names import CONFIG
from webui import config_handlers as handlers
from webui import config_pretrains
from webui.config_handlers import LABELS, PRETRAIN_FIELDS, FieldSpec, LoadedForm
from webui.config_pretrains import NO_PRETRAIN

if TYPE_CHECKING:
    import gradio as gr

    from webui.context import AppContext

INTRO = (
    f"The training settings of an experiment, saved as `logs/<experiment>/{CONFIG}` for the Train tab. "
    "They start as the preset's suggestions for the dataset (or the saved file); **Validate** checks them "
    "(pretrains included) and estimates the GPU memory, **Save** writes them."
)
OPEN_SECTIONS = ("Length and batch", "Saving, validation and overtraining", "Precision and speed")


def _widget(spec: FieldSpec) -> gr.components.Component:
    import gradio as gr

    common: dict[str, Any] = {"label": spec.label, "info": spec.help}
    if spec.kind == "switch":
        return gr.Checkbox(spec.default, **common)
    if spec.kind == "choice":
        return gr.Radio(list(spec.choices), value=spec.default, **common)
    if spec.kind == "whole":
        return gr.Number(spec.default, precision=0, **common)
    if spec.kind in ("number", "optional number"):
        return gr.Number(spec.default, step=1e-12, **common)  # any value is valid, however small
    placeholder = {"whole list": "e.g. 100, 200", "pair": "e.g. 0.8, 0.99"}.get(spec.kind)
    return gr.Textbox(spec.default, placeholder=placeholder, **common)


def render(ctx: AppContext) -> None:
    """Draw the tab inside the current ``gr.Tab`` and wire its buttons to the handlers."""
    import gradio as gr
    from gradio.context import Context

    tab = Context.block  # the gr.Tab this tab is drawn in: its select event refreshes the lists
    experiments = handlers.list_experiments(ctx.workspace)
    fields: dict[str, gr.components.Component] = {}

    gr.Markdown(INTRO)
    with gr.Row():
        experiment = gr.Dropdown(
            experiments, value=None, label="Experiment", info="prepared in the Prepare Dataset tab", scale=3
        )
        sample_rate = gr.Radio(
            [("32k", 32000), ("40k", 40000), ("48k", 48000)],
            value=40000,
            label="Sample rate",
            info="the model preset; the dataset's rate is suggested",
            scale=2,
        )
    with gr.Row(equal_height=False):
        source = gr.Markdown("Choose an experiment to load its settings.")
        refresh = gr.Button("Refresh lists", size="sm", scale=0, min_width=120)
    with gr.Row(equal_height=False):
        import_from = gr.Dropdown(
            experiments,
            value=None,
            label="Import settings from",
            info="an experiment with a saved configuration",
            scale=3,
        )
        with gr.Column(scale=2, min_width=200):
            import_button = gr.Button("Import settings", size="md")
            suggest_button = gr.Button("Reset to suggested", size="md")

    pretrain_dropdowns: list[gr.Dropdown] = []
    with gr.Row():
        for name in PRETRAIN_FIELDS:
            spec = next(s for s in handlers.field_specs() if s.name == name)
            fields[name] = dropdown = gr.Dropdown(
                [("none: train from scratch", NO_PRETRAIN)],
                value=NO_PRETRAIN,
                allow_custom_value=True,  # a saved path outside the listing (another run's state) stays shown
                label=LABELS[name],
                info=spec.help,
            )
            pretrain_dropdowns.append(dropdown)
    with gr.Row(equal_height=False):
        pretrain_note = gr.Markdown()
        refresh_pretrains = gr.Button("Refresh pretrains", size="sm", scale=0, min_width=140)

    for title, specs in handlers.sections():
        with gr.Accordion(title, open=title in OPEN_SECTIONS):
            for row in range(0, len(specs), 3):
                with gr.Row():
                    for spec in specs[row : row + 3]:
                        fields[spec.name] = _widget(spec)

    with gr.Row():
        validate_button = gr.Button("Validate")
        save_button = gr.Button("Save configuration", variant="primary")
    result = gr.Markdown()

    names = list(fields)
    values = list(fields.values())
    g_field, d_field = pretrain_dropdowns

    def pretrains(rate: int, g: str | None, d: str | None) -> tuple[Any, Any, str]:
        choices = config_pretrains.pretrain_choices(ctx.workspace, rate, g, d)
        return (
            gr.update(choices=choices.generators, value=choices.generator),
            gr.update(choices=choices.discriminators, value=choices.discriminator),
            choices.note,
        )

    def fill(loaded: LoadedForm) -> list[Any]:
        g, d, note = pretrains(loaded.sample_rate, loaded.values["pretrained_g"], loaded.values["pretrained_d"])
        shown = {**loaded.values, "pretrained_g": g, "pretrained_d": d}
        return [loaded.sample_rate, *(shown[name] for name in names), loaded.message, note]

    form_outputs = [sample_rate, *values, source, pretrain_note]

    def unchanged(message: str) -> list[Any]:
        return [gr.skip()] * (len(form_outputs) - 2) + [message, gr.skip()]

    def load(name: str | None) -> list[Any]:
        if not name:
            return unchanged("Choose an experiment to load its settings.")
        try:
            return fill(handlers.load_form(ctx.workspace, name, ctx.settings.default_precision))
        except UserError as error:
            return unchanged(f"❌ {error}")

    def suggest(name: str | None) -> list[Any]:
        try:
            return fill(handlers.suggested_form(ctx.workspace, name or "", ctx.settings.default_precision))
        except UserError as error:
            return unchanged(f"❌ {error}")

    def import_settings(name: str | None, other: str | None) -> list[Any]:
        if not other:
            return unchanged("Choose the experiment to import from.")
        try:
            return fill(handlers.import_form(ctx.workspace, name or "", other))
        except UserError as error:
            return unchanged(f"❌ {error}")

    def refresh_lists() -> tuple[Any, Any]:
        # Only the choices: setting the value would fire the experiment's change event and reload the form.
        found = handlers.list_experiments(ctx.workspace)
        return gr.update(choices=found), gr.update(choices=found)

    def pair_partner(g: str | None, d: str | None) -> Any:
        partner = config_pretrains.partner_of(ctx.workspace, g)
        return partner if partner is not None and partner != d else gr.skip()

    def validate(name: str | None, rate: int, *field_values: Any) -> str:
        if not name:
            return "Choose an experiment first."
        form = dict(zip(names, field_values, strict=True))
        return handlers.validate_form(ctx.workspace, ctx.paths, name, rate, form)

    def save(name: str | None, rate: int, *field_values: Any) -> str:
        if not name:
            return "Choose an experiment first."
        form = dict(zip(names, field_values, strict=True))
        return handlers.save_form(ctx.workspace, ctx.paths, name, rate, form)

    experiment.change(load, inputs=experiment, outputs=form_outputs)
    suggest_button.click(suggest, inputs=experiment, outputs=form_outputs)
    import_button.click(import_settings, inputs=[experiment, import_from], outputs=form_outputs)
    for trigger in (sample_rate.input, refresh_pretrains.click):
        trigger(pretrains, inputs=[sample_rate, g_field, d_field], outputs=[g_field, d_field, pretrain_note])
    g_field.input(pair_partner, inputs=[g_field, d_field], outputs=d_field)
    list_events = [refresh.click] + ([tab.select] if isinstance(tab, gr.Tab) else [])
    for trigger in list_events:
        trigger(refresh_lists, outputs=[experiment, import_from]).then(
            pretrains, inputs=[sample_rate, g_field, d_field], outputs=[g_field, d_field, pretrain_note]
        )
    validate_button.click(validate, inputs=[experiment, sample_rate, *values], outputs=result)
    save_button.click(save, inputs=[experiment, sample_rate, *values], outputs=result).then(
        refresh_lists, outputs=[experiment, import_from]
    )

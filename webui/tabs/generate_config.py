"""Generate Configuration tab: every training setting, suggested values, import, validate, save."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rvc.errors import UserError
from rvc.experiment.names import CONFIG
from webui import config_handlers as handlers
from webui import config_pretrains
from webui.config_handlers import LABELS, PRETRAIN_FIELDS, FieldSpec, LoadedForm
from webui.config_pretrains import NO_PRETRAIN
from webui.current import dropdown_follower

if TYPE_CHECKING:
    import gradio as gr

    from webui.context import AppContext

INTRO = (
    f"The training settings of an experiment, saved as `logs/<experiment>/{CONFIG}` for the Train tab. "
    "They start as the preset's suggestions for the dataset (or the saved file); **Validate** checks them "
    "(pretrains included) and estimates the GPU memory, **Save** writes them."
)
LOAD_FAILED = "Not loaded:"  # how the source line begins when the experiment's settings could not be read
NOT_CHOSEN = "Choose an experiment to load its settings."  # the source line before any form was loaded
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
    placeholder = {"whole list": "e.g. 100, 200", "pair": "e.g. 0.8, 0.99", "whole or auto": "auto, or e.g. 8"}.get(
        spec.kind
    )
    return gr.Textbox(spec.default, placeholder=placeholder, **common)


def render(ctx: AppContext) -> None:
    """Draw the tab inside the current ``gr.Tab`` and wire its buttons to the handlers."""
    import gradio as gr
    from gradio.context import Context

    tab = Context.block  # the gr.Tab this tab is drawn in: its select event refreshes the pretrain lists
    gr.Markdown(INTRO)
    chooser = _draw_chooser(handlers.list_experiments(ctx.workspace))
    current = ctx.current_experiment()
    current.follow(dropdown_follower(chooser.experiment, handlers.configurable))
    pretrains = _draw_pretrains()
    fields: dict[str, gr.components.Component] = {**pretrains.fields, **_draw_sections()}
    with gr.Row():
        validate_button = gr.Button("Validate")
        save_button = gr.Button("Save configuration", variant="primary")
    result = gr.Markdown()
    actions = _Actions(validate_button, save_button, result)
    on = _Handlers(ctx, list(fields))
    _wire(on, tab if isinstance(tab, gr.Tab) else None, chooser, pretrains, fields, actions)
    current.on_change(on.refresh_imports, outputs=[chooser.import_from])
    # When the experiment changes on disk, a form that says something no longer true loads again: one that
    # could not load or shows suggestions (the data changed, or settings were saved since), or the saved
    # settings when the file was saved again (by Save, the CLI, Train from recordings). Edits of a loaded
    # saved form stay.
    loaded = gr.State(None)  # the config file's modification time when the form was last filled
    form_outputs = [chooser.sample_rate, *fields.values(), chooser.source, pretrains.note]
    chooser.source.change(on.config_stamp, inputs=chooser.experiment, outputs=loaded, show_progress="hidden")
    stale_inputs = [chooser.experiment, chooser.source, loaded]
    current.on_change(on.reload_if_stale, inputs=stale_inputs, outputs=form_outputs)
    if isinstance(tab, gr.Tab):  # and when the tab opens: a chooser set before the tab was first drawn
        tab.select(on.reload_if_stale, inputs=stale_inputs, outputs=form_outputs, show_progress="hidden")


@dataclass
class _Chooser:
    """The experiment, its preset, and where its settings come from."""

    experiment: gr.Dropdown
    sample_rate: gr.Radio
    source: gr.Markdown  # what the form shows: the saved file, the suggestions, an import
    import_from: gr.Dropdown
    import_button: gr.Button
    suggest_button: gr.Button


@dataclass
class _Pretrains:
    """The pretrained G and D dropdowns (form fields too) and their note."""

    fields: dict[str, gr.components.Component]
    g_field: gr.Dropdown
    d_field: gr.Dropdown
    note: gr.Markdown
    refresh: gr.Button


@dataclass
class _Actions:
    validate_button: gr.Button
    save_button: gr.Button
    result: gr.Markdown


def _draw_chooser(experiments: list[str]) -> _Chooser:
    import gradio as gr

    with gr.Row():
        experiment = gr.Dropdown(
            experiments,
            value=None,
            label="Experiment",
            info="the app's current experiment (prepared in Prepare Dataset); choosing one here chooses it everywhere",
            scale=3,
        )
        sample_rate = gr.Radio(
            [("32k", 32000), ("40k", 40000), ("48k", 48000)],
            value=40000,
            label="Sample rate",
            info="the model preset; the dataset's rate is suggested",
            scale=2,
        )
    source = gr.Markdown(NOT_CHOSEN)
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
    return _Chooser(experiment, sample_rate, source, import_from, import_button, suggest_button)


def _draw_pretrains() -> _Pretrains:
    import gradio as gr

    fields: dict[str, gr.components.Component] = {}
    dropdowns: list[gr.Dropdown] = []
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
            dropdowns.append(dropdown)
    with gr.Row(equal_height=False):
        note = gr.Markdown()
        refresh = gr.Button("Refresh pretrains", size="sm", scale=0, min_width=140)
    g_field, d_field = dropdowns
    return _Pretrains(fields, g_field, d_field, note, refresh)


def _draw_sections() -> dict[str, gr.components.Component]:
    """Draw every other training setting, three to a row, in its section's accordion."""
    import gradio as gr

    fields: dict[str, gr.components.Component] = {}
    for title, specs in handlers.sections():
        with gr.Accordion(title, open=title in OPEN_SECTIONS):
            for row in range(0, len(specs), 3):
                with gr.Row():
                    for spec in specs[row : row + 3]:
                        fields[spec.name] = _widget(spec)
    return fields


class _Handlers:
    """The tab's event handlers; a form's values arrive in the order of ``names``."""

    def __init__(self, ctx: AppContext, names: list[str]) -> None:
        self.ctx = ctx
        self.names = names

    def pretrains(self, rate: int, g: str | None, d: str | None) -> tuple[Any, Any, str]:
        import gradio as gr

        choices = config_pretrains.pretrain_choices(self.ctx.workspace, rate, g, d)
        return (
            gr.update(choices=choices.generators, value=choices.generator),
            gr.update(choices=choices.discriminators, value=choices.discriminator),
            choices.note,
        )

    def fill(self, loaded: LoadedForm) -> list[Any]:
        """Return the form's outputs: the rate, every field, the source line and the pretrain note."""
        g, d, note = self.pretrains(loaded.sample_rate, loaded.values["pretrained_g"], loaded.values["pretrained_d"])
        shown = {**loaded.values, "pretrained_g": g, "pretrained_d": d}
        return [loaded.sample_rate, *(shown[name] for name in self.names), loaded.message, note]

    def unchanged(self, message: str) -> list[Any]:
        """Return the form's outputs that leave every field as it is and say ``message``."""
        import gradio as gr

        return [gr.skip()] * (1 + len(self.names)) + [message, gr.skip()]

    def config_stamp(self, name: str | None) -> float | None:
        """Return the modification time of the experiment's saved settings (None: none saved)."""
        try:
            path = handlers.experiment_of(self.ctx.workspace, name).config_json
        except UserError:
            return None
        return path.stat().st_mtime if path.is_file() else None

    def reload_if_stale(self, name: str | None, shown: str | None, stamp: float | None) -> list[Any]:
        """Load the form again when what it says is no longer true; leave a loaded form (and its edits) alone."""
        import gradio as gr

        shown = shown or NOT_CHOSEN
        # NOT_CHOSEN with a name chosen: the form never loaded for it (the chooser can be set while the tab
        # is not drawn yet, and choosing the same name again sends no change).
        not_current = shown.startswith((LOAD_FAILED, handlers.SUGGESTED, NOT_CHOSEN))
        if name and (not_current or self.config_stamp(name) != stamp):
            return self.load(name)
        return [gr.skip()] * (3 + len(self.names))

    def load(self, name: str | None) -> list[Any]:
        if not name:
            return self.unchanged(NOT_CHOSEN)
        try:
            return self.fill(handlers.load_form(self.ctx.workspace, name, self.ctx.settings.default_precision))
        except UserError as error:
            return self.unchanged(f"{LOAD_FAILED} {error}")

    def suggest(self, name: str | None) -> list[Any]:
        try:
            return self.fill(
                handlers.suggested_form(self.ctx.workspace, name or "", self.ctx.settings.default_precision)
            )
        except UserError as error:
            return self.unchanged(f"Error: {error}")

    def import_settings(self, name: str | None, other: str | None) -> list[Any]:
        if not other:
            return self.unchanged("Choose the experiment to import from.")
        try:
            return self.fill(handlers.import_form(self.ctx.workspace, name or "", other))
        except UserError as error:
            return self.unchanged(f"Error: {error}")

    def refresh_imports(self) -> Any:
        """Return the import list's new choices (the experiment list follows the app's current experiment)."""
        import gradio as gr

        return gr.update(choices=handlers.list_experiments(self.ctx.workspace))

    def pair_partner(self, g: str | None, d: str | None) -> Any:
        import gradio as gr

        partner = config_pretrains.partner_of(self.ctx.workspace, g)
        return partner if partner is not None and partner != d else gr.skip()

    def validate(self, name: str | None, rate: int, *field_values: Any) -> str:
        if not name:
            return "Choose an experiment first."
        form = dict(zip(self.names, field_values, strict=True))
        return handlers.validate_form(
            self.ctx.workspace, self.ctx.paths, name, rate, form, device=self.ctx.settings.default_device
        )

    def save(self, name: str | None, rate: int, *field_values: Any) -> str:
        if not name:
            return "Choose an experiment first."
        form = dict(zip(self.names, field_values, strict=True))
        return handlers.save_form(self.ctx.workspace, self.ctx.paths, name, rate, form)


def _wire(
    on: _Handlers,
    tab: gr.Tab | None,
    chooser: _Chooser,
    pretrains: _Pretrains,
    fields: dict[str, gr.components.Component],
    actions: _Actions,
) -> None:
    """Connect the tab's events: loading a form, the pretrain pair, the lists, validate and save."""
    values = list(fields.values())
    form_outputs = [chooser.sample_rate, *values, chooser.source, pretrains.note]
    chooser.experiment.change(on.load, inputs=chooser.experiment, outputs=form_outputs)
    chooser.experiment.change(lambda: "", outputs=actions.result)  # a Validate or Save of another experiment
    chooser.suggest_button.click(on.suggest, inputs=chooser.experiment, outputs=form_outputs)
    chooser.import_button.click(
        on.import_settings, inputs=[chooser.experiment, chooser.import_from], outputs=form_outputs
    )

    pair = [pretrains.g_field, pretrains.d_field]
    for trigger in (chooser.sample_rate.input, pretrains.refresh.click):
        trigger(on.pretrains, inputs=[chooser.sample_rate, *pair], outputs=[*pair, pretrains.note])
    pretrains.g_field.input(on.pair_partner, inputs=pair, outputs=pretrains.d_field)

    if tab is not None:  # pretrains downloaded since the page was drawn show when the tab opens
        tab.select(on.pretrains, inputs=[chooser.sample_rate, *pair], outputs=[*pair, pretrains.note])

    form_inputs = [chooser.experiment, chooser.sample_rate, *values]
    actions.validate_button.click(on.validate, inputs=form_inputs, outputs=actions.result)
    actions.save_button.click(on.save, inputs=form_inputs, outputs=actions.result)

"""Settings tab: edit and save the app's settings (webui.settings), validated field by field."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from functools import partial
from typing import Any

import gradio as gr

from rvc.config.train import PRECISIONS
from rvc.errors import UserError
from webui.context import AppContext
from webui.settings import THEMES, WHISPER_MODELS, Settings, save_problems

NEXT_START = ("logs_dir", "assets_dir", "theme", "share", "auth")  # read once, when the app starts
FIELD_ORDER = tuple(f.name for f in fields(Settings))
# Each field's label: the tab shows it, and its messages name the field by it (the file's keys are for the file).
LABELS = {
    "logs_dir": "Experiments folder (logs)",
    "assets_dir": "Weights folder (assets)",
    "default_device": "Default device",
    "default_precision": "Default precision",
    "tensorboard_port": "TensorBoard port",
    "console_lines": "Console lines",
    "verbose": "Verbose console (also the @@rvc progress lines)",
    "theme": "Theme",
    "share": "Public share link (gradio.live)",
    "auth": "Login",
    "whisper_model": "Whisper model",
    "whisper_language": "Language",
}


def settings_from_form(previous: Settings, *values: Any, remove_login: bool = False) -> Settings:
    """Return the Settings the form's values (in FIELD_ORDER) describe; numbers arrive as floats or None.

    The login field holds only a newly typed USER:PASS: empty keeps ``previous.auth``
    (the stored login is never sent to the browser), ``remove_login`` clears it.
    """
    data = dict(zip(FIELD_ORDER, values, strict=True))
    for name in ("tensorboard_port", "console_lines"):
        data[name] = _whole_number(name, data[name])
    for name in ("verbose", "share"):  # a checkbox sends true or false; anything else would be saved as it came
        if not isinstance(data[name], bool):
            raise UserError(f"'{LABELS[name]}': tick it or leave it empty (got {data[name]!r})")
    for name in ("logs_dir", "assets_dir", "auth", "whisper_language", "default_device", "whisper_model"):
        data[name] = str(data[name] or "").strip()
    data["auth"] = "" if remove_login else (data["auth"] or previous.auth)
    return Settings(**data)


def _whole_number(name: str, value: Any) -> int:
    """Return a number field's value as a whole number; UserError naming the field for none, a fraction or NaN."""
    label = f"'{LABELS[name]}'"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{label}: give a number") from None
    except OverflowError:  # a whole number of hundreds of digits
        raise UserError(f"{label}: give a whole number (got one of {len(str(value))} digits)") from None
    if not math.isfinite(number) or number != int(number):
        raise UserError(f"{label}: give a whole number (got {number:g})")
    return int(number)


def _in_tab_words(problem: str) -> str:
    """Name the field a problem begins with (``console_lines: ...``) by its label, as the tab shows it."""
    name, colon, rest = problem.partition(": ")
    return f"'{LABELS[name]}': {rest}" if colon and name in LABELS else problem


def _login_field(settings: Settings) -> Any:
    hint = "a login is set: type USER:PASS to change it" if settings.auth else "no login: type USER:PASS to set one"
    return gr.Textbox(value="", placeholder=hint)


def save(ctx: AppContext, *values: Any) -> tuple[str, Any, bool]:
    """Validate and save the form; return the message (what happened, or every problem) and the login field."""
    *form, remove_login = values
    try:
        settings = settings_from_form(ctx.settings, *form, remove_login=bool(remove_login))
    except UserError as error:
        return f"Not saved: {error}", gr.skip(), gr.skip()
    problems = settings.errors() + save_problems(settings, ctx.settings_path)
    if problems:
        text = "Not saved. Fix these fields:\n" + "\n".join(f"- {_in_tab_words(problem)}" for problem in problems)
        return text, gr.skip(), gr.skip()
    before = ctx.settings
    try:
        ctx.save_settings(settings)
    except (UserError, OSError) as error:
        return f"Not saved: {error}", gr.skip(), gr.skip()
    changed = [name for name in FIELD_ORDER if getattr(before, name) != getattr(settings, name)]
    later = [name for name in changed if name in NEXT_START]
    text = f"Saved to `{ctx.settings_path}`."
    if later:
        text += f" {', '.join(later)}: applied when the app starts again."
    return text, _login_field(settings), False


def current(ctx: AppContext) -> list[Any]:
    """Return the form's values from the settings in use (the login field empty, with a hint)."""
    values = [getattr(ctx.settings, name) for name in FIELD_ORDER]
    values[FIELD_ORDER.index("auth")] = _login_field(ctx.settings)
    return [*values, False]


def reset(ctx: AppContext) -> list[Any]:
    """Return the form filled with the defaults (not saved until Save); folders and login stay."""
    defaults = replace(Settings(), logs_dir=ctx.settings.logs_dir, assets_dir=ctx.settings.assets_dir)
    values = [getattr(defaults, name) for name in FIELD_ORDER]
    values[FIELD_ORDER.index("auth")] = _login_field(ctx.settings)
    return [*values, False, "Defaults filled in (folders and login kept): click **Save** to keep them."]


def _override_note(ctx: AppContext) -> str:
    if not ctx.overrides:
        return ""
    used = {"logs_dir": ctx.workspace.logs_dir, "assets_dir": ctx.workspace.assets_dir}
    lines = [
        f"- `{flag}` on the command line replaces `{name}` for this run"
        + (f" (`{used[name]}`)" if name in used else "")
        for name, flag in ctx.overrides.items()
    ]
    return "\n" + "\n".join(lines)


def render(ctx: AppContext) -> None:
    """Draw the Settings tab."""
    s = ctx.settings
    gr.Markdown(
        f"Saved in `{ctx.settings_path}`. Folders, theme, share and login apply when the app starts again; "
        "the rest at once." + _override_note(ctx)
    )
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Folders")
            logs_dir = gr.Textbox(
                s.logs_dir, label=LABELS["logs_dir"], info="relative paths start at the settings file's folder"
            )
            assets_dir = gr.Textbox(
                s.assets_dir, label=LABELS["assets_dir"], info="relative paths start at the settings file's folder"
            )
            gr.Markdown("### Training")
            device = gr.Dropdown(
                ["auto", "cpu", "cuda", *[f"cuda:{i}" for i in range(8)]],
                value=s.default_device,
                allow_custom_value=True,
                label=LABELS["default_device"],
                info="auto: the first GPU when there is one; the Train tab's GPU ids override it",
            )
            precision = gr.Dropdown(
                list(PRECISIONS),
                value=s.default_precision,
                label=LABELS["default_precision"],
                info=(
                    "auto: bf16-tail on GPUs with bf16 (fp32's held-out loss within noise, 1.5x its speed), else fp32; "
                    "bf16 is faster but trains to a worse held-out loss (new configurations start with it)"
                ),
            )
            port = gr.Number(
                s.tensorboard_port,
                precision=0,
                label=LABELS["tensorboard_port"],
                info="a free one is taken if it is busy",
            )
            console_lines = gr.Number(
                s.console_lines,
                precision=0,
                label=LABELS["console_lines"],
                info="how much of the trainer's log to show",
            )
            verbose = gr.Checkbox(s.verbose, label=LABELS["verbose"])
        with gr.Column():
            gr.Markdown("### Interface and access")
            theme = gr.Dropdown(list(THEMES), value=s.theme, label=LABELS["theme"])
            share = gr.Checkbox(s.share, label=LABELS["share"], info="needs a login (below)")
            # Never s.auth as the value: a component's value travels to every browser.
            auth = gr.Textbox(
                "",
                label=LABELS["auth"],
                type="password",
                info="asked by every page; stored in the settings file as typed",
            )
            remove_login = gr.Checkbox(False, label="Remove the login")
            gr.Markdown("### Whisper (Prepare Dataset)")
            whisper_model = gr.Dropdown(
                list(WHISPER_MODELS), value=s.whisper_model, allow_custom_value=True, label=LABELS["whisper_model"]
            )
            whisper_language = gr.Textbox(
                s.whisper_language, label=LABELS["whisper_language"], placeholder="en, ja, ... (empty: detect)"
            )
    with gr.Row():
        save_button = gr.Button("Save", variant="primary")
        reset_button = gr.Button("Reset to defaults")
    message = gr.Markdown(elem_id="settings-message")
    form = [
        logs_dir,
        assets_dir,
        device,
        precision,
        port,
        console_lines,
        verbose,
        theme,
        share,
        auth,
        whisper_model,
        whisper_language,
    ]
    # The form is built once; each page load fills it with what is saved now.
    gr.on(triggers=None, fn=partial(current, ctx), outputs=[*form, remove_login], show_progress="hidden")
    save_button.click(partial(save, ctx), inputs=[*form, remove_login], outputs=[message, auth, remove_login])
    reset_button.click(partial(reset, ctx), outputs=[*form, remove_login, message])

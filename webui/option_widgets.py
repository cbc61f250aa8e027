"""Widgets built from an option's declaration (``rvc.settings.setting``): its label, help, choices, range and step.

A tab draws a knob with ``slider(setting_of(ConvertOptions, "pitch"))`` instead of repeating what the
option already says; the CLI's flag is made from the same declaration, so the two never drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rvc.settings import Setting, ui_help

if TYPE_CHECKING:
    import gradio as gr


def _common(option: Setting, value: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments every widget takes from the declaration; ``kwargs`` win."""
    declared = {"value": option.default if value is None else value, "label": option.label, "info": ui_help(option)}
    return declared | kwargs


def slider(option: Setting, value: float | None = None, **kwargs: Any) -> gr.Slider:
    """Return a slider over the option's declared range, in its declared steps."""
    import gradio as gr

    if option.minimum is None or option.maximum is None:
        raise ValueError(f"{option.owner.__name__}.{option.name} declares no range for a slider")
    return gr.Slider(option.minimum, option.maximum, step=option.step, **_common(option, value, kwargs))


def dropdown(option: Setting, value: Any = None, **kwargs: Any) -> gr.Dropdown:
    """Return a dropdown of the option's choices (its ``Literal``'s values)."""
    import gradio as gr

    return gr.Dropdown(list(option.choices), **_common(option, value, kwargs))


def checkbox(option: Setting, value: bool | None = None, **kwargs: Any) -> gr.Checkbox:
    """Return a checkbox for a switch."""
    import gradio as gr

    return gr.Checkbox(**_common(option, value, kwargs))

"""Only the open tab's timers tick.

Each ``gr.Timer`` tick is a round trip from the page to the server and back, even when nothing
changed. With a job panel on most tabs polling every second, an open page kept the server and the
browser busy with about ten requests a second, and every click waited behind them (on the 2-core
test machine the Train tab's browser test went from 50 s to 140 s). A hidden tab shows nothing,
so its timers stop while another tab is open and start again when the user opens it; a tab's
first tick redraws whatever changed meanwhile. Timers outside the tabs (the current experiment's
watch) keep ticking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gradio as gr


def timers_in(block: Any) -> list[gr.Timer]:
    """Return every timer placed inside ``block`` (a tab, a row, a column, ...), in layout order."""
    import gradio as gr

    found = []
    for child in getattr(block, "children", []):
        if isinstance(child, gr.Timer):
            found.append(child)
        found.extend(timers_in(child))
    return found


def tick_in_the_open_tab_only(tabs: list[gr.Tab]) -> None:
    """Let only the timers of the open tab tick; the first tab is open when a page loads."""
    import gradio as gr

    by_tab = [timers_in(tab) for tab in tabs]
    every = [timer for timers in by_tab for timer in timers]
    if not every:
        return
    for index, timers in enumerate(by_tab):
        for timer in timers:
            timer.active = index == 0

    def opened(mine: list[gr.Timer]) -> Any:
        ids = {id(timer) for timer in mine}
        return lambda: [gr.Timer(active=id(timer) in ids) for timer in every]

    for tab, timers in zip(tabs, by_tab, strict=True):
        tab.select(opened(timers), outputs=every, show_progress="hidden")

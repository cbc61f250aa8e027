"""The current experiment: one for the whole app, carried across tabs and remembered by the browser.

Each tab that works on an experiment registers its chooser with :meth:`CurrentExperiment.follow`.
Choosing an experiment in any of them makes it the current one: every other chooser shows it,
the line under the app's title says how far it has come, and the browser keeps its name (local
storage, ``gr.BrowserState``), so a reload opens on it. A timer watches the workspace: when an
experiment appears or changes state (prepared, configured, trained, exported, ...), the
choosers' lists and the tabs' listeners (:meth:`on_change`) are refreshed, so no list
or message waits for a Refresh button.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rvc.errors import UserError
from rvc.experiment import ExperimentStatus, Workspace
from rvc.experiment.names import validate_experiment_name

if TYPE_CHECKING:
    import gradio as gr

LISTING_POLL_S = 2.0  # how often each open page looks for new or changed experiments

# The furthest stage reached, in words, and what to do next.
STAGE_WORDS = {
    "new": ("nothing prepared yet", "prepare its recordings (Prepare Dataset), or use Train from recordings"),
    "prepared": ("clips prepared", "extract its features (Prepare Dataset, step 2)"),
    "extracted": ("features extracted", "save its settings (Generate Configuration)"),
    "configured": ("settings saved", "start training (Train)"),
    "trained": ("trained", "export a model (Train, under The model)"),
    "exported": ("model exported", "try it (Try Model)"),
}


def listing(workspace: Workspace) -> list[ExperimentStatus]:
    """Return every experiment with its state, newest change first."""
    return sorted(workspace.experiments(), key=lambda status: status.modified, reverse=True)


def signature(name: str, statuses: Sequence[ExperimentStatus]) -> str:
    """Return a short text that changes whenever the current experiment changes, or any experiment appears,
    goes or changes state."""
    parts = [
        f"{s.name}:{s.stage}:{int(s.training)}:{int(s.indexed)}:{int(s.has_run)}:{s.modified:.3f}" for s in statuses
    ]
    return f"{name}:" + hashlib.sha1("|".join(sorted(parts)).encode()).hexdigest()[:16]


def valid_name(text: str | None) -> str | None:
    """Return ``text`` as an experiment name, or None when it is empty or not a valid name."""
    name = (text or "").strip()
    if not name:
        return None
    try:
        return validate_experiment_name(name)
    except UserError:
        return None


def pick(stored: str | None, statuses: Sequence[ExperimentStatus]) -> str:
    """Return the experiment a page opens on: the stored one if it exists, else one that trains or runs a
    stage job now, else the newest."""
    from rvc.jobs.launcher import running_jobs

    names = [status.name for status in statuses]
    if stored and stored in names:
        return stored
    busy = [s.name for s in statuses if s.training] or [s.name for s in statuses if running_jobs(s.experiment)]
    return busy[0] if busy else (names[0] if names else "")


def header_text(name: str, statuses: Sequence[ExperimentStatus]) -> str:
    """Return the line under the title: the current experiment, how far it has come, what to do next."""
    if not name:
        if not statuses:
            return (
                "**No experiment yet.** Start with **Train from recordings** (one click from a folder of "
                "recordings to a model), or prepare one step by step in **Prepare Dataset**."
            )
        return "**No experiment chosen.** Choose one in any tab; every tab then works on it."
    status = next((s for s in statuses if s.name == name), None)
    if status is None:
        return f"Experiment: **{name}** (new: nothing on disk yet). Next: {STAGE_WORDS['new'][1]}."
    done, next_step = STAGE_WORDS[status.stage]
    extras = [done]
    if status.indexed:
        extras.append("index built")
    if status.training:
        extras.append("training now")
        next_step = "watch it in Train"
    return f"Experiment: **{name}**: {', '.join(extras)}. Next: {next_step}."


@dataclass
class Follower:
    """A tab's experiment chooser and how it shows an experiment.

    show : (experiment name, listing) -> the component's update that shows it (value, choices)
    relist : (the component's value, the current experiment, listing) -> the update of its choices (and of its
        value only where it shows nothing yet); None: it has no choices
    name_of : the component's value -> the experiment it means (None: none, or not an experiment)
    relist_reads_value : whether the watch passes ``relist`` the component's value (else None). Only a component
        that accepts any value may be read: Gradio refuses an input outside a dropdown's choices before the
        function runs, and one refusal would stop the whole watch, the relist that would mend it included.
    """

    component: gr.components.Component
    show: Callable[[str, list[ExperimentStatus]], Any]
    relist: Callable[[Any, str, list[ExperimentStatus]], Any] | None
    name_of: Callable[[Any], str | None]
    triggers: tuple[str, ...]  # the component's events that mean "the user chose"
    keeps_typed: bool = False  # a text field: what the user typed before the page finished loading stays
    relist_reads_value: bool = False


def dropdown_follower(
    component: gr.Dropdown, names: Callable[[list[ExperimentStatus]], list[str]], triggers: tuple[str, ...] = ("input",)
) -> Follower:
    """A dropdown of experiment names: ``names(listing)`` are its choices (the current one is always among them).

    Its value is the current experiment or nothing (choosing one makes it current), so the relist keeps the
    current one listed instead of reading the value: a watch that had read the current experiment just before
    the user chose another may still land after the choice, and leaves the choice listed one tick later.
    """
    import gradio as gr

    def choices(name: str | None, statuses: list[ExperimentStatus]) -> list[str]:
        found = names(statuses)
        return found if not name or name in found else [name, *found]

    def show(name: str, statuses: list[ExperimentStatus]) -> Any:
        return gr.update(choices=choices(name, statuses), value=name or None)

    def relist(value: Any, current: str, statuses: list[ExperimentStatus]) -> Any:
        return gr.update(choices=choices(current, statuses))

    return Follower(component, show, relist, valid_name, triggers)


def textbox_follower(component: gr.Textbox) -> Follower:
    """A text field for a name (a new experiment is named here): chosen when the user leaves it or presses Enter."""

    def show(name: str, statuses: list[ExperimentStatus]) -> Any:
        return name

    return Follower(component, show, None, valid_name, ("submit", "blur"), keeps_typed=True)


class CurrentExperiment:
    """The page's current experiment: its stored name, the header line, the workspace watch, the followers."""

    def __init__(self, workspace: Workspace) -> None:
        import gradio as gr

        self.workspace = workspace
        key = hashlib.sha1(str(workspace.logs_dir.resolve()).encode()).hexdigest()[:12]
        # Keyed by the logs folder: two apps with other workspaces keep their own. The value is only a
        # name, so the secret need not be secret; a fixed one keeps it readable after an app restart.
        self.stored = gr.BrowserState("", storage_key=f"rvc-studio-experiment-{key}", secret=f"rvc-studio-{key}")
        self.header = gr.Markdown(elem_id="current-experiment", elem_classes="rvc-current")
        self.seen = gr.State("")  # the signature (current experiment, workspace) this page last drew
        self.followers: list[Follower] = []

    def follow(self, follower: Follower) -> None:
        """Register a tab's chooser: it shows the current experiment, and a choice in it makes that current."""
        self.followers.append(follower)

    def on_change(
        self,
        fn: Callable[..., Any],
        inputs: Sequence[gr.components.Component] = (),
        outputs: Sequence[gr.components.Component] = (),
    ) -> None:
        """Run ``fn`` (a tab's refresh of its own lists or messages) whenever another experiment becomes the
        current one, or any experiment changes on disk (by this page, another, the CLI, a job)."""
        self.seen.change(fn, inputs=list(inputs), outputs=list(outputs), show_progress="hidden")

    # --- the events -------------------------------------------------------------------------------

    def _restore(self, stored: str | None, *values: Any) -> list[Any]:
        import gradio as gr

        statuses = listing(self.workspace)
        name = pick(valid_name(stored), statuses)
        shown = [
            gr.skip() if follower.keeps_typed and (value or not name) else follower.show(name, statuses)
            for follower, value in zip(self.followers, values, strict=True)
        ]
        return [name, header_text(name, statuses), signature(name, statuses), *shown]

    def _chosen(self, index: int) -> Callable[..., list[Any]]:
        import gradio as gr

        chooser = self.followers[index]

        def chosen(value: Any, stored: str | None) -> list[Any]:
            name = chooser.name_of(value)
            others = len(self.followers) - 1
            if name is None or name == stored:
                return [gr.skip()] * (3 + others)
            statuses = listing(self.workspace)
            shown = [f.show(name, statuses) for i, f in enumerate(self.followers) if i != index]
            return [name, header_text(name, statuses), signature(name, statuses), *shown]

        return chosen

    def _read_by_watch(self) -> list[Follower]:
        return [follower for follower in self.followers if follower.relist_reads_value]

    def _watch(self, seen: str, stored: str | None, *read: Any) -> list[Any]:
        import gradio as gr

        statuses = listing(self.workspace)
        name = valid_name(stored) or ""
        now = signature(name, statuses)
        if now == seen:
            return [gr.skip()] * (2 + len(self.followers))
        values = dict(zip(map(id, self._read_by_watch()), read, strict=True))
        relisted = [
            f.relist(values.get(id(f)), name, statuses) if f.relist is not None else gr.skip() for f in self.followers
        ]
        return [now, header_text(name, statuses), *relisted]

    def wire(self, app: gr.Blocks) -> None:
        """Connect the events, once every tab has registered its chooser (build_ui calls it last)."""
        import gradio as gr

        components = [follower.component for follower in self.followers]
        app.load(
            self._restore,
            inputs=[self.stored, *components],
            outputs=[self.stored, self.header, self.seen, *components],
            show_progress="hidden",
        )
        for index, follower in enumerate(self.followers):
            others = [c for i, c in enumerate(components) if i != index]
            for trigger in follower.triggers:
                getattr(follower.component, trigger)(
                    self._chosen(index),
                    inputs=[follower.component, self.stored],
                    outputs=[self.stored, self.header, self.seen, *others],
                    show_progress="hidden",
                )
        timer = gr.Timer(LISTING_POLL_S)
        timer.tick(
            self._watch,
            inputs=[self.seen, self.stored, *[follower.component for follower in self._read_by_watch()]],
            outputs=[self.seen, self.header, *components],
            show_progress="hidden",
        )

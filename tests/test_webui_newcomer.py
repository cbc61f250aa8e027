"""A newcomer's path through the web app, in a real browser: an empty workspace, Train from recordings
(one click: prepare -> extract -> config -> train -> index -> export, as one job), then every tab on
the experiment it made, a clip converted; reloads in between, and no message that is no longer true.
A tiny model (app.py --tiny-model), a tiny HuBERT found in assets/embedders/, pm pitch. It is also the
suite's check that every tab renders, with a screenshot of each (tests/screenshots/newcomer_*.png), and
its run of the CLI's one-click ``run`` (which the chain is).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

pytest.register_assert_rewrite("tests.browser")  # before its import: its fixtures' asserts explain themselves

from rvc.experiment import Experiment, Workspace  # noqa: E402
from rvc.export import read_exported  # noqa: E402
from tests.browser import RunningApp, open_tab, screenshot, start_app, stop_app  # noqa: E402
from tests.fake_experiment import save_tiny_hubert  # noqa: E402
from tests.synth import speech_like  # noqa: E402
from webui import TABS  # noqa: E402

pytest_plugins = ["tests.browser"]

NAME = "newcomer"
# Words that are true of an experiment that is not trained yet, or of a run that has ended: none of them may
# show once the one-click chain has trained and exported the model.
STALE = (
    "No experiment yet",
    "No experiment is ready",
    "not trained yet",
    "No exported model yet",
    "has no exported model",
    "Resuming",
    "Starting newcomer",
    "nothing prepared yet",
    "no saved settings yet",
    "Not loaded:",
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app on an empty workspace whose assets hold a custom content encoder (the tiny HuBERT)."""
    root = tmp_path_factory.mktemp("newcomer")
    save_tiny_hubert(root / "assets" / "embedders" / "tiny-hubert", hidden_size=768, layers=1)
    running = start_app(root, "--tiny-model")
    try:
        yield running
    finally:
        stop_app(running)


def _recordings(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for i in range(2):
        sf.write(folder / f"take{i}.wav", speech_like(44100, phrases=(2.0, 1.6), seed=i), 44100)
    return folder


def expect(locator: Any, message: str | None = None) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator, message)


def _choose(page: Any, field: str, option: str | re.Pattern[str]) -> None:
    page.locator(f"#{field} input").click()
    page.get_by_role("option", name=option).click()


def _no_stale_words(page: Any, where: str) -> None:
    """Wait until the page shows none of STALE (what a tab says while it catches up is not asserted)."""
    body = page.locator("body")
    for words in STALE:
        expect(body, f"{where} still says {words!r}").not_to_contain_text(words, use_inner_text=True)
    assert page.locator(".toast-wrap .toast-body.error").count() == 0, f"an error toast on {where}"


def _reload(page: Any) -> None:
    page.reload()
    page.wait_for_selector("button[role=tab]", state="visible")
    page.locator("#current-experiment").filter(has_text=f"Experiment: {NAME}").wait_for()  # remembered


def test_a_newcomer_goes_from_recordings_to_a_converted_clip(page: Any, app: RunningApp, tmp_path: Path) -> None:
    recordings = _recordings(tmp_path / "recordings")
    present = [label for label, module in TABS if importlib.util.find_spec(f"webui.tabs.{module}") is not None]
    assert [text.strip() for text in page.get_by_role("tab").all_inner_texts()] == present  # every tab, in order
    page.locator("#current-experiment").filter(has_text="No experiment yet").wait_for()  # where to start
    screenshot(page, "newcomer_empty_workspace")
    _one_click(page, recordings)

    root = Workspace(app.logs_dir, app.assets_dir).experiment(NAME)
    model = read_exported(root.exported_model())
    assert model.version == "v2" and model.sample_rate == 40000 and model.metadata["f0_method"] == "pm"
    assert model.metadata["epochs"] == 2 and root.index_file.is_file()

    _every_tab_shows_it(page, root)
    _try_model_converts(page, root, recordings)

    # A reload keeps the experiment and its model; the other tabs render without an error.
    _reload(page)
    open_tab(page, "Try Model")
    expect(page.locator("#try-model-model input")).to_have_value(re.compile(rf"^{NAME} / "))
    _no_stale_words(page, "Try Model after a reload")
    seen = {"Train from recordings", "Prepare Dataset", "Generate Configuration", "Train", "Try Model"}
    for label in [label for label in present if label not in seen]:
        open_tab(page, label)
        _no_stale_words(page, label)
        screenshot(page, f"newcomer_tab_{label.lower().replace(' ', '_')}")


def _one_click(page: Any, recordings: Path) -> None:
    """Train from recordings, from the first tab; reload while it runs; wait for the chain's end."""
    # The custom encoder in assets/embedders/ is offered by name.
    page.locator("#one-click-experiment").get_by_label("Voice name").fill(NAME)
    page.locator("#one-click-folders").get_by_label(re.compile("Folder")).fill(str(recordings))
    _choose(page, "one-click-f0", "pm")
    _choose(page, "one-click-embedder", re.compile(r"^tiny-hubert \(in "))
    page.locator("#one-click-epochs input").fill("2")
    page.get_by_role("button", name="Train from recordings", exact=True).click()
    started = page.locator(".rvc-job").filter(has_text=f"run on {NAME}")
    started.wait_for(timeout=120_000)
    events = started.get_attribute("data-events")

    # A reload mid-chain: the experiment is remembered and the same job is drawn.
    _reload(page)
    expect(page.locator("#one-click-experiment").get_by_label("Voice name")).to_have_value(NAME)
    chain = page.locator(f".rvc-job[data-events='{events}']")
    chain.wait_for()
    screenshot(page, "newcomer_chain_running")
    page.locator(f".rvc-job[data-events='{events}'][data-status='done']").wait_for(timeout=600_000)
    page.locator("#one-click-result").filter(has_text=f"{NAME} is trained").wait_for()
    for task in ("stages", "training"):
        assert chain.locator(f"[data-task='{task}']").count() == 1, f"no {task} bar"
    _no_stale_words(page, "Train from recordings")
    screenshot(page, "newcomer_tab_train_from_recordings")


def _every_tab_shows_it(page: Any, root: Experiment) -> None:
    """Train, Generate Configuration and Prepare Dataset show the chain's experiment, in words true now."""
    open_tab(page, "Train")
    page.locator("#train-status").filter(has_text=f"{NAME}: finished").wait_for()
    assert page.locator("#train-message [data-testid='markdown']").inner_text().strip() == ""
    expected = "best" if root.checkpoints.has_best() else "latest"  # the export offers what exists
    expect(page.locator(f"#train-export-which input[value='{expected}']")).to_be_checked()
    cards = page.locator("#train-progress").inner_text()
    assert "Next save\n–" in cards and "Time left\n–" in cards, cards
    _no_stale_words(page, "Train")
    screenshot(page, "newcomer_tab_train")

    open_tab(page, "Generate Configuration")
    page.get_by_text("Loaded the saved settings").wait_for()
    _no_stale_words(page, "Generate Configuration")
    screenshot(page, "newcomer_tab_generate_configuration")

    open_tab(page, "Prepare Dataset")
    expect(page.get_by_label("Experiment name").locator("visible=true")).to_have_value(NAME)
    page.get_by_text("clips: ").first.wait_for()
    _no_stale_words(page, "Prepare Dataset")
    screenshot(page, "newcomer_tab_prepare_dataset")


def _try_model_converts(page: Any, root: Experiment, recordings: Path) -> None:
    """Try Model has the chain's model selected; a clip converts, with the conversion's own words."""
    open_tab(page, "Try Model")
    expect(page.locator("#try-model-model input")).to_have_value(re.compile(rf"^{NAME} / {NAME}(_best)?\.pth$"))
    page.locator("#try-model-clip input[type=file]").set_input_files(str(recordings / "take0.wav"))
    page.get_by_test_id("audio-player-Clip to convert").wait_for(state="attached")  # uploaded
    page.get_by_role("button", name="Convert", exact=True).click()
    page.locator("#try-model-status").filter(has_text="Converted:").wait_for(timeout=120_000)
    assert page.locator("#try-model-history-0").is_visible()
    _no_stale_words(page, "Try Model")
    screenshot(page, "newcomer_tab_try_model")

"""Try Model tab: its handlers with a tiny exported model and tiny HuBERT (its browser test is the newcomer's
flow, test_webui_newcomer); in this module's app, the Model tools tab's Blend and the Train tab's Publish."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from rvc.audio import write_wav
from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.export import export_model
from rvc.infer.pipeline import ConvertOptions
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from tests.fake_experiment import save_tiny_hubert, tiny_config
from tests.synth import speech_like
from webui import try_model_handlers as h

pytest_plugins = ["tests.browser"]


def make_voice(logs: Path, name: str, hubert: Path) -> tuple[Path, Path]:
    """Export NAME.pth and NAME_best.pth (different weights) of a tiny model that records ``hubert``."""
    config = tiny_config().model
    paths = []
    for seed, suffix in ((0, ""), (1, "_best")):
        torch.manual_seed(seed)
        generator = SynthesizerTrnMs768NSFsid(config)
        path = logs / name / f"{name}{suffix}.pth"
        path.parent.mkdir(parents=True, exist_ok=True)
        export_model(generator.state_dict(), config, path, epoch=1, step=10, metadata={"embedder": str(hubert)})
        paths.append(path)
    return paths[0], paths[1]


def make_clip(path: Path) -> Path:
    write_wav(path, speech_like(16000, phrases=(0.8,), gap_seconds=0.1), 16000)
    return path


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path, Path]:
    root = tmp_path_factory.mktemp("try")
    workspace = Workspace(root / "logs", root / "assets")
    hubert = save_tiny_hubert(root / "hubert", hidden_size=768, layers=1)
    latest, _ = make_voice(workspace.logs_dir, "voice", hubert)
    return workspace, latest, make_clip(root / "clip.wav")


OPTIONS = ConvertOptions(f0_method="pm", index_rate=0.0)


def test_lists_models_and_converts_into_the_experiment(voice: tuple[Workspace, Path, Path]) -> None:
    workspace, latest, clip = voice
    assert [label for label, _ in h.model_choices(workspace)] == ["voice / voice.pth", "voice / voice_best.pth"]
    assert h.index_choices(workspace, str(latest)) == [("none", h.NO_INDEX)]
    assert h.default_f0_method(workspace) == "pm"  # no RMVPE weights installed
    cache = h.ConverterCache(workspace)

    first = h.convert_clip(workspace, cache, latest, clip, OPTIONS, device="cpu")
    again = h.convert_clip(workspace, cache, latest, clip, OPTIONS, device="cpu")

    assert len(first) == 1 and first[0].path.parent == workspace.logs_dir / "voice" / "conversions"
    assert first[0].path.is_file() and first[0].path != again[0].path
    assert first[0].path.read_bytes() == again[0].path.read_bytes()  # seeded alike
    assert len(cache) == 1  # the second conversion reused the loaded voice


def test_a_conversion_says_what_it_does_and_a_folder_runs_as_the_model_experiments_job(
    voice: tuple[Workspace, Path, Path], tmp_path: Path
) -> None:
    from rvc.cli.argv import stage_parser
    from webui.context import AppContext
    from webui.settings import Settings
    from webui.try_model_folder import folder_request

    workspace, latest, clip = voice
    told: list[tuple[str, float]] = []
    cache = h.ConverterCache(workspace)
    for _ in range(2):  # the second conversion finds the voice loaded: no loading step
        h.convert_clip(
            workspace, cache, latest, clip, OPTIONS, device="cpu", on_progress=lambda *said: told.append(said)
        )
    words = [text for text, _ in told]
    assert words == [
        "loading the model and its content encoder", "converting", "converting window 1 of 1",
        "converting", "converting window 1 of 1",
    ]  # fmt: skip
    assert told[2][1] == 1.0

    assert h.model_experiment(workspace, str(latest)) == "voice"
    assert h.experiment_model(workspace, "voice") == str(latest.with_name("voice_best.pth"))
    ctx = AppContext.create(workspace, Settings(), tmp_path / "settings.json")
    songs = tmp_path / "songs"
    songs.mkdir()
    request = folder_request(ctx, str(latest), None, "", str(songs), "", OPTIONS)
    args = stage_parser("infer").parse_args(request.args)  # the job's command line is the CLI's
    assert (request.experiment, request.stage, args.input, args.model) == ("voice", "infer", songs, latest)
    assert args.output.parent == workspace.logs_dir / "voice" / "conversions" and args.f0_method == "pm"
    with pytest.raises(UserError, match="an uploaded model converts one clip at a time"):
        folder_request(ctx, str(tmp_path / "uploaded.pth"), None, "", str(songs), "", OPTIONS)
    with pytest.raises(UserError, match="system folder"):
        folder_request(ctx, str(latest), None, "", "/etc", "", OPTIONS)


def test_compare_checkpoints_gives_best_and_latest(voice: tuple[Workspace, Path, Path], tmp_path: Path) -> None:
    workspace, latest, clip = voice
    cache = h.ConverterCache(workspace)

    best, last = h.convert_clip(workspace, cache, latest, clip, OPTIONS, device="cpu", compare=True)

    assert (best.model, last.model) == ("voice_best.pth", "voice.pth")
    assert best.path.read_bytes() != last.path.read_bytes()  # different weights, same seed and clip
    lonely = tmp_path / "logs" / "solo" / "solo.pth"
    lonely.parent.mkdir(parents=True)
    lonely.write_bytes(latest.read_bytes())
    with pytest.raises(UserError, match=r"solo_best\.pth"):
        h.checkpoint_pair(lonely)


def test_history_keeps_the_last_n_newest_first(voice: tuple[Workspace, Path, Path]) -> None:
    _, latest, _ = voice
    history: list[h.Result] = []
    for number in range(6):
        result = h.Result(latest.with_name(f"{number}.wav"), "voice.pth", "none", OPTIONS, 0.1)
        history = h.add_to_history(history, [result])
    assert [r.path.name for r in history] == ["5.wav", "4.wav", "3.wav", "2.wav"]
    rows = h.history_rows(history)
    assert rows[0][0] == 1 and rows[0][-1] == "5.wav" and len(rows[0]) == len(h.HISTORY_HEADERS)


class Payload:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_refuses_a_malicious_upload_and_a_missing_encoder(voice: tuple[Workspace, Path, Path], tmp_path: Path) -> None:
    workspace, latest, clip = voice
    evil = tmp_path / "evil.pth"
    torch.save({"weight": {}, "config": [], "payload": Payload()}, evil)
    with pytest.raises(UserError, match=r"refused.*Python objects"):
        h.check_uploaded_model(evil)
    with pytest.raises(UserError, match=r"not a \.pth"):
        h.check_uploaded_model(tmp_path / "voice.txt")
    cache = h.ConverterCache(workspace)
    with pytest.raises(UserError, match="contentvec"):  # its weights are not installed, and no download
        h.convert_clip(workspace, cache, latest, clip, OPTIONS, embedder="contentvec", device="cpu")


# --- the browser (the Try Model tab itself: test_webui_newcomer) --------------------------------


def test_blend_model_b_moves_off_a_once_there_is_another_model(voice: tuple[Workspace, Path, Path]) -> None:
    """With one model listed B falls back to A's; a refresh after a second one appears moves B to it (the
    browser test below once loaded the page between two exports, and B stayed on A: a self-blend, refused)."""
    from types import SimpleNamespace

    from webui.tabs.model_tools import refresh

    workspace = voice[0]
    ctx = SimpleNamespace(workspace=workspace)
    paths = [path for _, path in h.model_choices(workspace)]
    assert len(paths) == 2
    assert [d.value for d in refresh(ctx, paths[0], paths[0])] == [paths[0], paths[1]]
    assert [d.value for d in refresh(ctx, paths[1], paths[0])] == [paths[1], paths[0]]
    assert [d.value for d in refresh(ctx, None, None)] == [paths[0], paths[1]]


def test_model_tools_tab_blends_two_models(page: Any, app: Any) -> None:
    from playwright.sync_api import expect

    from rvc.export import read_exported
    from tests.browser import open_tab, screenshot

    make_voice(app.logs_dir, "pair", app.logs_dir.parent / "hubert")  # pair.pth and pair_best.pth
    open_tab(page, "Model tools")
    page.get_by_role("button", name="Refresh models").click()  # the models were exported after the page loaded
    expect(page.get_by_label("Model A")).to_have_value("pair / pair.pth")
    expect(page.get_by_label("Model B")).to_have_value("pair / pair_best.pth")
    page.get_by_label("Name of the blend").fill("duet")
    page.get_by_role("button", name="Blend", exact=True).click()
    page.locator("#blend-message").get_by_text("Blended into").wait_for(timeout=120_000)
    screenshot(page, "model_tools_blended")
    parents = read_exported(app.logs_dir / "duet" / "duet.pth").metadata["blend"]
    assert (parents["a"]["file"], parents["b"]["file"], parents["ratio"]) == ("pair.pth", "pair_best.pth", 0.5)
    assert page.locator("#blend-file").is_visible()


@pytest.fixture
def finished(app: Any) -> Any:
    """A finished run, "sung", and a token where `hf auth login` saves one (the app's HOME): before the page loads."""
    from tests.test_publish import make_finished

    token = app.logs_dir.parent / ".cache" / "huggingface" / "token"
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text("hf_browser_test")
    return make_finished(app.logs_dir, app.logs_dir.parent / "elsewhere", "sung")


def test_train_tab_publish_runs_as_a_job_and_says_why_it_stopped(app: Any, finished: Any, page: Any) -> None:
    """The Publish section once: the card is made and the job reports the Hub unreachable (this app is offline).

    The upload itself, over HTTP to a local Hub, is tests/test_publish.py's.
    """
    from tests.browser import open_tab, screenshot

    open_tab(page, "Train")
    page.locator("input[aria-label='Experiment']:visible").first.click()
    page.get_by_role("option", name="sung", exact=True).click()
    page.locator("#train-model").wait_for(state="visible", timeout=60_000)  # a finished run's model column
    page.get_by_text("Publish to the Hugging Face Hub").click()
    page.locator("#publish-token").get_by_text("A Hugging Face token was found").wait_for()
    page.locator("#publish-repo textarea, #publish-repo input").first.fill("me/sung-rvc")
    page.get_by_role("button", name="Publish", exact=True).click()
    page.locator("#publish-message").get_by_text("Publish failed: offline mode is on").wait_for(timeout=120_000)
    screenshot(page, "train_publish_offline")
    assert (finished.publish_dir / "README.md").is_file() and (finished.publish_dir / "sung.pth").is_file()

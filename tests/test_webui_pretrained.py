"""Download Pretrained tab: its handlers, then the real app in a real browser against a local Hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from rvc.experiment import AssetDir, Workspace
from rvc.models.config import ModelConfig
from rvc.models.discriminator import MultiPeriodDiscriminatorV2
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.models.weights import to_rvc_spelling
from rvc.pretrained.catalogue import bundled_catalogue_path, load_catalogue
from rvc.pretrained.download import DownloadProgress
from tests.fake_hub import FakeHub, serve_hub, tiny_pretrain_bytes, write_catalogue
from webui import config_pretrains
from webui.tabs import download_pretrained as tab

REPO = "tests/tiny-pretrain"
G_NAME, D_NAME = "G_tiny_40k.pth", "D_tiny_40k.pth"


def _serve_tiny(hub: FakeHub, optimizer_mb: float = 0.0) -> tuple[str, str]:
    g, d = tiny_pretrain_bytes(40000, optimizer_mb=optimizer_mb)
    return hub.add(REPO, G_NAME, g), hub.add(REPO, D_NAME, d)


def _full_size_pair(folder: Path, sample_rate: int) -> tuple[Path, Path]:
    """Save a G and D with the real v2 preset's shapes in a few kB (every tensor a broadcast zero)."""
    folder.mkdir(parents=True, exist_ok=True)
    with torch.device("meta"):
        modules = (SynthesizerTrnMs768NSFsid(ModelConfig.for_sample_rate(sample_rate)), MultiPeriodDiscriminatorV2())
    paths = []
    for module, name in zip(modules, ("G", "D"), strict=True):
        state = {k: torch.zeros(1, dtype=torch.float16).expand(v.shape) for k, v in module.state_dict().items()}
        path = folder / f"{name}_upload_{sample_rate // 1000}k.pth"
        torch.save({"model": to_rvc_spelling(state), "iteration": 0, "optimizer": {}, "learning_rate": 1e-4}, path)
        paths.append(path)
    return paths[0], paths[1]


# ------------------------------------------------------------------ handlers


def test_catalogue_table_and_choices_filter_by_sample_rate(tmp_path: Path) -> None:
    assets = AssetDir(tmp_path / "assets")
    catalogue = load_catalogue(bundled_catalogue_path())
    every = tab.catalogue_rows(assets, catalogue, tab.ALL)
    assert len(every) == len(catalogue.pretrains) and every[0][:5] == ["RVC v2", "RVC-Project", *["available"] * 3]
    at_48k = tab.catalogue_rows(assets, catalogue, 48000)
    assert {row[0] for row in at_48k} == {p.name for p in catalogue.pretrains if 48000 in p.available_rates}
    assert "KLM 4.2" not in {row[0] for row in at_48k}
    klm42 = next(row for row in every if row[0] == "KLM 4.2")
    assert klm42[2:5] == ["–", "files unknown", "–"]
    choices = tab.download_choices(assets, catalogue, 32000)
    assert ("RVC v2 · 32k · RVC-Project", "rvc-v2@32000") in choices
    assert all(value.endswith("@32000") for _, value in choices)
    assert {row[0] for row in tab.weights_rows(assets, catalogue)} >= {"RMVPE pitch estimator", "contentvec"}


def test_the_download_runs_as_a_job_and_generate_configuration_offers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rvc.cli import main
    from rvc.jobs import launcher
    from webui.stage_jobs import StageJobs

    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    assets, jobs = workspace.assets, StageJobs(workspace)
    assert tab.start_download(jobs, lambda: tab.download_args(assets, None)) == (
        "Not started: choose a pretrain and sample rate in the list first"
    )
    with serve_hub() as hub:
        write_catalogue(assets.pretrains_catalogue, REPO, G_NAME, D_NAME, _serve_tiny(hub))
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        args, title = tab.download_args(assets, "tiny@40000")
        assert (args, title) == (["download", "tiny", "--sample-rate", "40000"], "Tiny Test 40k")
        # the job's own command line, run here into the events file the job of the assets folder would write
        events = assets.jobs.events(tab.STAGE, "20240101-000000-000")
        assert main(launcher.stage_command(workspace, tab.STAGE, args, events)[3:]) == 0
    # a page reloaded (or an app restarted) draws the job and what it did from its events file alone
    jobs = StageJobs(workspace)
    assert jobs.view(jobs.pick_assets((tab.STAGE,))).status == "done"
    assert tab.download_outcome(assets, jobs) == (
        "Downloaded **Tiny Test (40k, catalogue)** into `pretrained_v2/tiny/40k/`. "
        "It is in the Generate Configuration tab's pretrain lists now."
    )
    assert tab.installed_rows(assets, 40000) == [
        ["Tiny Test", "40k", "catalogue", "pretrained_v2/tiny/40k/G.pth", "pretrained_v2/tiny/40k/D.pth"]
    ]
    assert tab.installed_rows(assets, 32000) == []
    catalogue = load_catalogue(assets.pretrains_catalogue)
    assert tab.catalogue_rows(assets, catalogue, 40000)[0][3] == "✓ installed"
    # the Generate Configuration tab's lister sees it at once, at 40k only
    offered = config_pretrains.pretrain_choices(workspace, 40000, None, None)
    assert ("tiny/40k/G.pth", str(assets.pretrained_dir / "tiny" / "40k" / "G.pth")) in offered.generators
    assert len(config_pretrains.pretrain_choices(workspace, 48000, None, None).generators) == 1  # "none" only


def test_upload_handler_validates_against_the_chosen_sample_rate(tmp_path: Path) -> None:
    assets = AssetDir(tmp_path / "assets")
    g, d = _full_size_pair(tmp_path / "upload", 40000)
    refused = tab.add_uploaded_pair(assets, str(g), str(d), "my-pair", 32000)
    assert refused.startswith("Not added: G file G_upload_40k.pth does not fit the 32k v2 generator"), refused
    assert "the file is a 40k v2 model" in refused
    assert tab.installed_rows(assets, tab.ALL) == []
    assert tab.add_uploaded_pair(assets, str(g), str(d), "", 40000).startswith("Not added: give the pair a name")
    assert tab.add_uploaded_pair(assets, str(g), None, "x", 40000).startswith("Upload both files")
    added = tab.add_uploaded_pair(assets, str(g), str(d), "my-pair", 40000)
    assert added.startswith("Added **my-pair (40k, custom)** to `pretrained_v2/my-pair/40k/`"), added
    assert [row[:3] for row in tab.installed_rows(assets, 40000)] == [["my-pair", "40k", "custom"]]


def test_pair_names_suggested_from_the_uploaded_file() -> None:
    assert tab.suggest_pair_name("/tmp/gradio/abc/G_SnowieV3.1_40k.pth") == "SnowieV3.1_40k"
    assert tab.suggest_pair_name("f0G40k.pth") == "40k"
    assert tab.suggest_pair_name("RIN_E3_G.pth") == "RIN_E3"
    assert tab.suggest_pair_name("G-f040k-TITAN-Medium.pth") == "f040k-TITAN-Medium"
    assert tab.suggest_pair_name(None) == ""


def test_progress_text_reads_well() -> None:
    update = DownloadProgress("models/40k/G-f040k.pth", 120 * 2**20, 438 * 2**20, 0, 2)
    assert update.text == "downloading G-f040k.pth (1/2): 120/438 MB"
    assert update.fraction == pytest.approx(120 / 438 / 2)


# ------------------------------------------------------------------ the real app in a real browser

pytest_plugins = ["tests.browser"]


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    with serve_hub() as server:
        yield server


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[Any]:
    """The app with HF_ENDPOINT on the local Hub (and downloads allowed), its catalogue a tiny pretrain."""
    from tests import browser as harness

    root = tmp_path_factory.mktemp("app")
    # ~12 MB: huggingface_hub writes in 10 MB chunks, so a connection dropped at 11 MB resumes mid-file
    digests = _serve_tiny(hub, optimizer_mb=12)
    path = write_catalogue(root / "assets" / "pretrains.json", REPO, G_NAME, D_NAME, digests)
    shipped = json.loads(bundled_catalogue_path().read_text())  # the real entries too: the screenshot shows them
    ours = json.loads(path.read_text())
    path.write_text(json.dumps(shipped | {"pretrains": ours["pretrains"] + shipped["pretrains"]}))
    plain_env = harness.app_env

    def env(home: Path) -> dict[str, str]:
        variables = plain_env(home)
        variables.pop("HF_HUB_OFFLINE", None)
        return variables | {"HF_ENDPOINT": hub.url}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(harness, "app_env", env)  # start_app takes the child's environment from app_env
        running = harness.start_app(root)
    try:
        yield running
    finally:
        harness.stop_app(running)


def test_download_through_the_tab_is_a_job_resumes_and_shows_in_generate_configuration(
    page: Any, app: Any, hub: FakeHub
) -> None:
    from tests.browser import open_tab, screenshot

    open_tab(page, "Download Pretrained")
    panel = page.get_by_role("tabpanel").filter(has=page.get_by_text("Pretrain to download"))
    panel.get_by_text("random tiny-model weights").filter(visible=True).first.wait_for()  # the catalogue table
    screenshot(page, "download_pretrained_catalogue")

    hub.drop_once(REPO, G_NAME, after_bytes=11_000_000)  # the connection drops once, mid-file
    page.get_by_label("Pretrain to download").click()
    page.get_by_role("option", name="Tiny Test · 40k · tests").click()
    page.get_by_role("button", name="Download", exact=True).click()
    status = page.locator("#pretrained-status")
    status.get_by_text("Downloaded").or_(status.get_by_text("Not downloaded")).first.wait_for(timeout=120_000)
    assert "Downloaded Tiny Test (40k, catalogue)" in status.inner_text(), status.inner_text()
    # the download ran as a job: its panel shows a bar per file and step, each full
    job = panel.locator(".rvc-job[data-status='done']")
    bar = job.locator("[data-task='downloading G_tiny_40k.pth (1/2)']")
    assert bar.get_attribute("data-done") == bar.get_attribute("data-total") == str(len(hub.files[(REPO, G_NAME)].data))
    assert job.locator("[data-task='checking D_tiny_40k.pth (2/2)']").count() == 1
    first, second = hub.gets(G_NAME)
    assert "range" not in first.headers and second.headers["range"].startswith("bytes=")
    assert (app.assets_dir / "pretrained_v2" / "tiny" / "40k" / "G.pth").read_bytes() == hub.files[(REPO, G_NAME)].data
    page.get_by_text("pretrained_v2/tiny/40k/G.pth").filter(visible=True).first.wait_for()  # installed pairs
    page.get_by_text("Add your own G/D pair").click()
    page.get_by_text("Pitch and content-encoder weights").click()
    page.get_by_role("button", name="Validate and add").wait_for()
    screenshot(page, "download_pretrained_done")

    open_tab(page, "Generate Configuration")
    page.get_by_label("Pretrained generator (G)").click()
    page.get_by_role("option", name="tiny/40k/G.pth").wait_for()

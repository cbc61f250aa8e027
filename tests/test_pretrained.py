"""Pretrained weights: the catalogue, Hub downloads (against a local Hub), custom pairs, the CLI stage."""

from __future__ import annotations

import argparse
import io
import json
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rvc.errors import UserError
from rvc.experiment import AssetDir, Workspace
from rvc.features.embedder_sources import EMBEDDERS
from rvc.models.config import ModelConfig
from rvc.models.discriminator import MultiPeriodDiscriminatorV2
from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
from rvc.models.weights import PretrainMismatchError, to_rvc_spelling
from rvc.pretrained.catalogue import CatalogueError, bundled_catalogue_path, load_catalogue, load_catalogue_for
from rvc.pretrained.custom import add_custom_pair
from rvc.pretrained.download import ChecksumError, DownloadError, DownloadProgress, download_pretrain, download_weights
from rvc.pretrained.pairs import list_pretrain_pairs
from tests.fake_experiment import tiny_config
from tests.fake_hub import FakeHub, closed_port_url, serve_hub, tiny_pretrain_bytes, write_catalogue, write_tiny_pair

REPO = "tests/tiny-pretrain"
G_NAME, D_NAME = "40k/G_tiny.pth", "40k/D_tiny.pth"

# The AI HUB pretrain table (../shared/seeds/000_...): name -> the sample rates it links.
SEED_TABLE = {
    "DMR V1": {32000},
    "Itaila V1.0": {32000},
    "IMA": {32000},
    "KLM 4.1": {32000, 48000},
    "KLM 4.2": {40000},
    "KLM BeatzForge": {32000, 48000},
    "Nanashi V1.7": {32000},
    "Nanashi Anime v1": {32000},
    "Ov2 Super": {32000, 40000, 48000},
    "RIN_E3": {40000},
    "Rigel (fine-tuned)": {32000, 40000},
    "SingerPreTrain": {32000},
    "Snowie": {40000, 48000},
    "SnowieV3 X RIN_E3": {40000},
    "SnowieV3.1": {32000, 40000, 48000},
    "TITAN": {32000, 40000, 48000},
    "UKA": {32000},
}


@pytest.fixture(scope="module")
def tiny_files() -> tuple[bytes, bytes]:
    # ~12 MB with the optimizer state: huggingface_hub writes in 10 MB chunks, so a drop at 11 MB resumes mid-file
    return tiny_pretrain_bytes(40000, optimizer_mb=12)


@pytest.fixture
def hub(tiny_files: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with serve_hub() as server:
        server.add(REPO, G_NAME, tiny_files[0])
        server.add(REPO, D_NAME, tiny_files[1])
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


@pytest.fixture
def assets(tmp_path: Path) -> AssetDir:
    return AssetDir(tmp_path / "assets")


def _catalogue(assets: AssetDir, hub: FakeHub, sha256: tuple[str | None, str | None] | None = None) -> None:
    digests = sha256 or (hub.files[(REPO, G_NAME)].etag, hub.files[(REPO, D_NAME)].etag)
    write_catalogue(assets.pretrains_catalogue, REPO, G_NAME, D_NAME, digests)


def _installed_files(assets: AssetDir) -> list[Path]:
    folder = assets.pretrained_dir
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ------------------------------------------------------------------ the catalogue


def test_bundled_catalogue_parses_and_every_entry_has_the_required_fields(tmp_path: Path) -> None:
    catalogue = load_catalogue(bundled_catalogue_path())
    by_name = {entry.name: entry for entry in catalogue.pretrains}
    for name, rates in SEED_TABLE.items():  # every pretrain of the table, at each rate the table links
        assert name in by_name, name
        assert {r.sample_rate for r in by_name[name].rates} == rates, name
    for entry in catalogue.pretrains:
        assert entry.id and entry.name and entry.author and entry.page.startswith("https://huggingface.co/")
        for rate in entry.rates:
            if not rate.available:
                assert len(rate.note) > 30, f"{entry.id} {rate.sample_rate}: say why it is unavailable"
                continue
            assert rate.g is not None and rate.d is not None
            for remote in (rate.g, rate.d):
                assert re.fullmatch(r"[\w.-]+/[\w.-]+", remote.repo_id) and remote.filename.endswith(".pth")
                assert remote.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", remote.sha256)
            assert rate.g.filename != rate.d.filename
    rvc = catalogue.find_pretrain("rvc-v2")
    assert rvc.available_rates == (32000, 40000, 48000)
    for rate in rvc.rates:  # RVC's own pairs, with the checksums RVC publishes
        assert rate.g is not None and rate.d is not None and rate.g.sha256 and rate.d.sha256
        assert rate.g.repo_id == "lj1995/VoiceConversionWebUI"
        assert rate.g.filename == f"pretrained_v2/f0G{rate.sample_rate // 1000}k.pth"
    assert catalogue.find_pretrain("TITAN") is by_name["TITAN"]
    # the data stage's weights: rmvpe from the catalogue, the embedders from EMBEDDERS (not duplicated)
    assets = AssetDir(tmp_path / "assets")
    rmvpe = catalogue.find_weights("rmvpe")
    assert rmvpe.target_dir(assets) / rmvpe.files[0][1] == assets.rmvpe_weights
    assert rmvpe.files[0][0].repo_id == "lj1995/VoiceConversionWebUI" and rmvpe.files[0][0].sha256
    assert {a.id for a in catalogue.weights if a.kind == "embedder"} == set(EMBEDDERS)
    contentvec = catalogue.find_weights("contentvec")
    assert contentvec.target_dir(assets) == assets.embedder_dir("contentvec")
    assert all(remote.sha256 for remote, _ in contentvec.files)  # EMBEDDERS' pinned checksums carried over


def test_a_broken_catalogue_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = write_catalogue(tmp_path / "pretrains.json", REPO, G_NAME, D_NAME, (None, None))
    data = json.loads(path.read_text())
    del data["pretrains"][0]["rates"]["40k"]["g"]["path"]
    path.write_text(json.dumps(data))
    with pytest.raises(CatalogueError, match=r"pretrains\[0\]\.rates\.40k\.g\.path: missing"):
        load_catalogue(path)
    path.write_text("{not json")
    with pytest.raises(CatalogueError, match=r"pretrains\.json is not valid JSON"):
        load_catalogue(path)


# ------------------------------------------------------------------ downloads


def test_a_download_lands_in_assets_is_checked_and_listed(assets: AssetDir, hub: FakeHub) -> None:
    _catalogue(assets, hub)
    entry = load_catalogue_for(assets).find_pretrain("tiny")
    updates: list[DownloadProgress] = []
    pair = download_pretrain(assets, entry, 40000, progress=updates.append)

    folder = assets.pretrained_dir / "tiny" / "40k"
    assert (pair.g, pair.d) == (folder / "G.pth", folder / "D.pth")
    assert pair.g.read_bytes() == hub.files[(REPO, G_NAME)].data
    assert pair.d.read_bytes() == hub.files[(REPO, D_NAME)].data
    source = json.loads((folder / "source.json").read_text())
    assert source["origin"] == "catalogue" and source["files"]["G"]["path"] == G_NAME
    assert not (assets.root / ".downloads").exists()  # the staging folder is gone
    assert list_pretrain_pairs(assets, 40000) == [pair] and pair.label == "Tiny Test (40k, catalogue)"
    assert list_pretrain_pairs(assets, 32000) == []
    # progress: both files, up to their full size, then the sha256 check
    assert {u.file_index for u in updates} == {0, 1} and updates[-1].stage == "verify"
    assert updates[-1].done == updates[-1].total == len(hub.files[(REPO, D_NAME)].data)
    assert updates[-1].fraction == pytest.approx(1.0)


def test_an_interrupted_download_resumes_with_a_range_request(assets: AssetDir, hub: FakeHub) -> None:
    _catalogue(assets, hub)  # with the sha256 of both files: the resumed file must hash right
    size = len(hub.files[(REPO, G_NAME)].data)
    hub.drop_once(REPO, G_NAME, after_bytes=11_000_000)
    pair = download_pretrain(assets, load_catalogue_for(assets).find_pretrain("tiny"), 40000)

    first, second = hub.gets(G_NAME)
    assert "range" not in first.headers
    start = int(second.headers["range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < start < size  # it asked for the rest only
    assert pair.g.read_bytes() == hub.files[(REPO, G_NAME)].data


@pytest.mark.parametrize("hub_knows_sha", [True, False], ids=["refused-before-download", "refused-after-download"])
def test_a_wrong_sha256_is_refused_and_nothing_lands(assets: AssetDir, hub: FakeHub, hub_knows_sha: bool) -> None:
    wrong = "0" * 64
    _catalogue(assets, hub, sha256=(None, wrong))
    if not hub_knows_sha:  # a non-LFS ETag: the file must be downloaded before it can be checked
        hub.files[(REPO, D_NAME)].etag = "not-a-sha256"
    with pytest.raises(ChecksumError) as caught:
        download_pretrain(assets, load_catalogue_for(assets).find_pretrain("tiny"), 40000)
    assert D_NAME in str(caught.value) and wrong in str(caught.value)
    assert _installed_files(assets) == []
    assert list_pretrain_pairs(assets) == []
    assert bool(hub.gets(D_NAME)) is not hub_knows_sha
    assert not any((assets.root / ".downloads").rglob("D_tiny.pth"))


def test_offline_says_which_file_from_where_and_where_to_put_it(
    assets: AssetDir, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rvc.pretrained import download

    _catalogue(assets, hub)
    entry = load_catalogue_for(assets).find_pretrain("tiny")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0.0)
    with pytest.raises(DownloadError) as caught:
        download_pretrain(assets, entry, 40000)
    message = str(caught.value)
    assert "could not be reached" in message and G_NAME in message and REPO in message
    # a pretrain needs both halves: the message says where each comes from and where it goes
    folder = assets.pretrained_dir / "tiny" / "40k"
    assert D_NAME in message and str(folder / "G.pth") in message and str(folder / "D.pth") in message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE is set, so nothing was downloaded"):
        download_pretrain(assets, entry, 40000)
    assert _installed_files(assets) == []


def test_a_file_missing_on_the_hub_is_named(assets: AssetDir, hub: FakeHub) -> None:
    write_catalogue(assets.pretrains_catalogue, REPO, G_NAME, "40k/D_gone.pth", (None, None))
    with pytest.raises(DownloadError, match=r"40k/D_gone\.pth is not in the Hugging Face repository tests/tiny"):
        download_pretrain(assets, load_catalogue_for(assets).find_pretrain("tiny"), 40000)
    assert not hub.gets(G_NAME)  # every file is looked up before anything is downloaded
    with pytest.raises(UserError, match="no downloadable 48k G/D pair: not published"):
        download_pretrain(assets, load_catalogue_for(assets).find_pretrain("tiny"), 48000)


def test_weights_download_into_their_assets_folders(assets: AssetDir, hub: FakeHub) -> None:
    catalogue = load_catalogue(bundled_catalogue_path())
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, buffer)
    source = EMBEDDERS["hubert_base"]
    hub.add(source.repo_id, "config.json", b'{"model_type": "hubert"}')
    hub.add(source.repo_id, "pytorch_model.bin", buffer.getvalue())
    paths = download_weights(assets, catalogue.find_weights("hubert_base"))
    assert sorted(p.name for p in paths) == ["config.json", "pytorch_model.bin"]
    assert all(p.parent == assets.embedder_dir("hubert_base") and p.is_file() for p in paths)
    # rmvpe's pinned sha256 does not match these stand-in bytes: refused before any download
    hub.add("lj1995/VoiceConversionWebUI", "rmvpe.pt", buffer.getvalue())
    with pytest.raises(ChecksumError, match=r"rmvpe\.pt in lj1995/VoiceConversionWebUI now has sha256"):
        download_weights(assets, catalogue.find_weights("rmvpe"))
    assert not assets.rmvpe_weights.exists()


# ------------------------------------------------------------------ custom pairs


def _full_size_generator(path: Path, sample_rate: int) -> Path:
    """Save a G with the real v2 preset's shapes in a few kB (every tensor a broadcast zero)."""
    with torch.device("meta"):
        shapes = SynthesizerTrnMs768NSFsid(ModelConfig.for_sample_rate(sample_rate)).state_dict()
    state = {k: torch.zeros(1, dtype=torch.float16).expand(v.shape) for k, v in shapes.items()}
    torch.save({"model": to_rvc_spelling(state), "iteration": 0, "optimizer": {}, "learning_rate": 1e-4}, path)
    return path


def test_a_custom_pair_of_the_wrong_sample_rate_is_refused(assets: AssetDir, tmp_path: Path) -> None:
    g, d = write_tiny_pair(tmp_path / "upload", 40000)
    with pytest.raises(PretrainMismatchError, match=r"the file is a 40k v2 model .* but the model is 32k"):
        add_custom_pair(assets, "mine", g, d, 32000, model=tiny_config(32000).model)
    with pytest.raises(PretrainMismatchError, match="this is a discriminator"):  # G and D swapped
        add_custom_pair(assets, "mine", d, g, 40000, model=tiny_config(40000).model)
    assert _installed_files(assets) == []

    # against the real v2 presets: a 40k generator is refused for 48k, accepted for 40k (and detected)
    big_g = _full_size_generator(tmp_path / "G_big_40k.pth", 40000)
    with torch.device("meta"):
        d_shapes = MultiPeriodDiscriminatorV2().state_dict()
    big_d = tmp_path / "D_big_40k.pth"
    torch.save({"model": to_rvc_spelling({k: torch.zeros(1).expand(v.shape) for k, v in d_shapes.items()})}, big_d)
    with pytest.raises(PretrainMismatchError, match="but the model is 48k"):
        add_custom_pair(assets, "big", big_g, big_d, 48000)
    assert _installed_files(assets) == []
    pair = add_custom_pair(assets, "big", big_g, big_d)  # sample rate detected from the G file
    assert (pair.sample_rate, pair.origin) == (40000, "custom")
    assert list_pretrain_pairs(assets, 40000) == [pair]
    with pytest.raises(UserError, match="already exists"):
        add_custom_pair(assets, "big", big_g, big_d, 40000)


class _Payload:
    """Unpickling this would create a file: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_a_malicious_pickle_is_refused_without_running(assets: AssetDir, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "G_evil_40k.pth"
    torch.save({"model": {"enc_p.emb_phone.weight": torch.zeros(1)}, "hook": _Payload(marker)}, evil)
    _, d = write_tiny_pair(tmp_path / "upload", 40000)
    with pytest.raises(UserError, match="holds Python objects other than tensors"):
        add_custom_pair(assets, "evil", evil, d, 40000)
    plain_pickle = tmp_path / "D_evil_40k.pth"
    plain_pickle.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(UserError):
        add_custom_pair(assets, "evil", evil, plain_pickle, 40000)
    assert not marker.exists()
    assert _installed_files(assets) == []


def test_hand_copied_rvc_files_are_listed(assets: AssetDir, tmp_path: Path) -> None:
    g, d = write_tiny_pair(tmp_path / "upload", 40000)
    assets.pretrained_dir.mkdir(parents=True)
    (assets.pretrained_dir / "f0G40k.pth").write_bytes(g.read_bytes())
    (assets.pretrained_dir / "f0D40k.pth").write_bytes(d.read_bytes())
    (assets.pretrained_dir / "f0G48k.pth").write_bytes(g.read_bytes())  # no partner: not a pair
    [pair] = list_pretrain_pairs(assets)
    assert (pair.name, pair.sample_rate, pair.origin, pair.d.name) == ("f0G40k", 40000, "folder", "f0D40k.pth")

    # the same listing as the Generate Configuration tab's: nested and untagged pairs too, never hidden folders
    nested = assets.pretrained_dir / "TITAN" / "40k"
    untagged = assets.pretrained_dir / "mine"
    hidden = assets.pretrained_dir / ".upload"
    for folder in (nested, untagged, hidden):
        folder.mkdir(parents=True)
        (folder / "G.pth").write_bytes(g.read_bytes())
        (folder / "D.pth").write_bytes(d.read_bytes())
    pairs = list_pretrain_pairs(assets, 40000)
    assert [(p.name, p.rate_from) for p in pairs] == [("f0G40k", "name"), ("mine", "weights"), ("TITAN", "name")]


# ------------------------------------------------------------------ the CLI stage


def _cli(workspace: Workspace, *argv: str) -> int:
    from rvc.cli import pretrained as stage
    from rvc.jobs.reporter import PrintReporter

    parser = argparse.ArgumentParser()
    stage.add_arguments(parser)
    return stage.run(parser.parse_args(list(argv)), workspace, PrintReporter(bars=False))


def test_cli_list_download_and_add(tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    _catalogue(workspace.assets, hub)
    assert _cli(workspace, "download", "Tiny Test") == 0  # one published rate: no --sample-rate needed
    out = capsys.readouterr().out
    assert f"--pretrained-g {workspace.assets.pretrained_dir / 'tiny' / '40k' / 'G.pth'}" in out

    g, d = write_tiny_pair(tmp_path / "upload", 40000)
    with pytest.raises(PretrainMismatchError):  # real presets: tiny weights do not fit the v2 model
        _cli(workspace, "add", "--g", str(g), "--d", str(d), "--name", "mine", "--sample-rate", "40000")

    assert _cli(workspace, "list", "--sample-rate", "40000") == 0
    listing = capsys.readouterr().out
    assert re.search(r"tiny\s+Tiny Test by tests: 40k installed", listing)
    assert "Tiny Test (40k, catalogue)" in listing and "contentvec" in listing


def test_the_download_stage_reports_each_file_and_each_retry_as_events(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rvc.cli import main
    from rvc.jobs.state import read_job
    from rvc.pretrained import download

    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    _catalogue(workspace.assets, hub)
    roots = ["--logs-dir", str(workspace.logs_dir), "--assets-dir", str(workspace.assets_dir)]
    events = workspace.assets.jobs.events("pretrained", "20240101-000000-000")  # where the web app's job writes
    assert main([*roots, "pretrained", "download", "tiny", "--json-progress", "--events-file", str(events)]) == 0
    state, status = read_job(events)
    folder = workspace.assets.pretrained_dir / "tiny" / "40k"
    assert status == "done" and state.end is not None
    assert state.end.message == f"downloaded Tiny Test (40k, catalogue) into {folder}"
    g = state.tasks["downloading G_tiny.pth (1/2)"]  # a bar per file and step, in bytes
    assert (g.unit, g.done, g.total) == ("B", len(hub.files[(REPO, G_NAME)].data), g.done)
    rest = ["checking G_tiny.pth (1/2)", "downloading D_tiny.pth (2/2)", "checking D_tiny.pth (2/2)"]
    assert list(state.tasks)[1:] == rest

    # Offline: each wait is said (the job does not look hung), then the end names both files and where each goes.
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0.01)
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    offline = events.with_name("pretrained-20240101-000001-000.jsonl")
    progress = ["--retries", "2", "--json-progress", "--events-file", str(offline)]
    assert main([*roots, "pretrained", "download", "tiny", *progress]) == 2
    state, status = read_job(offline)
    retries = [line.split(": the Hub")[0] for line in state.log if line.startswith("retrying")]
    assert retries == ["retrying (attempt 2 of 3) in 0.01 s", "retrying (attempt 3 of 3) in 0.02 s"]
    assert status == "error" and state.end is not None
    message = state.end.message
    assert "could not be reached in 3 attempts" in message
    assert all(text in message for text in (G_NAME, D_NAME, str(folder / "G.pth"), str(folder / "D.pth")))

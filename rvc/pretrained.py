"""Pretrained weights: the catalogue, downloads from the Hugging Face Hub, and custom G/D pairs.

The catalogue is data, ``assets/pretrains.json``: community pretrains and RVC's own f0G/f0D
pairs (name, author, Hub repository and path of the G and D file per sample rate, sha256 and
size where known) and the rmvpe weights. The content encoders are not repeated there: they
come from :data:`rvc.features.embedder.EMBEDDERS`.

Layout under the assets folder (what :func:`rvc.pretrained_pairs.list_pretrain_pairs` reads):

``pretrained_v2/<id>/<32k|40k|48k>/G.pth`` and ``D.pth``
    one installed pair: a catalogue download (``<id>`` is the catalogue id) or a custom pair
    added with :func:`add_custom_pair`; ``source.json`` beside them says where it came from.
``pretrained_v2/f0G40k.pth`` + ``f0D40k.pth`` (any ``...G...<rate>...`` / ``...D...`` names)
    files a user copied in by hand, RVC-style; listed when both halves are there.
``.downloads/``
    Hugging Face downloads in progress; a finished, checked file is moved into place atomically.

Downloads go through ``huggingface_hub`` against the endpoint in ``HF_ENDPOINT`` (read when the
download starts, so tests can point it at a local server). A dropped connection is resumed with
an HTTP Range request; a file whose sha256 differs from the catalogue's (or from the Hub's own
LFS checksum) is deleted and refused; every weights file must load with ``weights_only=True``
before it is installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rvc.errors import UserError
from rvc.fileio import atomic_write_json, sha256_file
from rvc.paths import AssetDir, sample_rate_tag
from rvc.pretrained_pairs import SOURCE_FILE, PretrainPair

if TYPE_CHECKING:
    from rvc.models.config import ModelConfig

SAMPLE_RATES = (32000, 40000, 48000)
G_FILE = "G.pth"
D_FILE = "D.pth"
DEFAULT_ENDPOINT = "https://huggingface.co"
CATALOGUE_VERSION = 1
RMVPE_FILE = "rmvpe.pt"  # the name AssetDir.rmvpe_weights expects

Kind = Literal["G", "D"]

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_PAIR_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_TAG = re.compile(r"(32|40|48)k")


class CatalogueError(UserError):
    """The catalogue file is unreadable or an entry lacks a field; the message names the file and field."""


class DownloadError(UserError):
    """A file could not be fetched (offline, not on the Hub); the message says what to fetch and where to put it."""


class ChecksumError(UserError):
    """A downloaded file is not the file the catalogue (or the Hub) promised; it was deleted."""


# ------------------------------------------------------------------ catalogue


@dataclass(frozen=True)
class RemoteFile:
    """One file in a Hugging Face model repository."""

    repo_id: str
    filename: str  # path inside the repository
    revision: str = "main"
    sha256: str | None = None  # known checksum of the file's bytes
    size: int | None = None  # known size in bytes

    @property
    def page(self) -> str:
        """Return the file's page on huggingface.co (for messages and the UI)."""
        return f"{DEFAULT_ENDPOINT}/{self.repo_id}/blob/{self.revision}/{self.filename}"

    def resolve_url(self, endpoint: str = DEFAULT_ENDPOINT) -> str:
        """Return the direct download address of the file on ``endpoint``."""
        return f"{endpoint}/{self.repo_id}/resolve/{self.revision}/{self.filename}"


@dataclass(frozen=True)
class PretrainRate:
    """A pretrain's G and D files at one sample rate; ``None`` where they could not be established."""

    sample_rate: int
    g: RemoteFile | None
    d: RemoteFile | None
    note: str = ""  # a caveat, or why the files are not available

    @property
    def available(self) -> bool:
        return self.g is not None and self.d is not None


@dataclass(frozen=True)
class Pretrain:
    """A pretrained G/D pair family (one author's pretrain, at one or more sample rates)."""

    id: str  # folder name under pretrained_v2/
    name: str
    author: str
    description: str
    page: str
    rates: tuple[PretrainRate, ...]

    def rate(self, sample_rate: int) -> PretrainRate | None:
        """Return the entry for ``sample_rate`` (Hz), or None when the pretrain has none."""
        return next((r for r in self.rates if r.sample_rate == sample_rate), None)

    @property
    def available_rates(self) -> tuple[int, ...]:
        return tuple(r.sample_rate for r in self.rates if r.available)


@dataclass(frozen=True)
class WeightAsset:
    """Weights the data stage uses (a content encoder, rmvpe), downloaded into their assets folder."""

    id: str
    name: str
    kind: Literal["embedder", "rmvpe"]
    description: str
    files: tuple[tuple[RemoteFile, str], ...]  # (remote file, file name in the target folder)

    def target_dir(self, assets: AssetDir) -> Path:
        """Return the folder the files are installed into."""
        return assets.rmvpe_dir if self.kind == "rmvpe" else assets.embedder_dir(self.id)

    def installed(self, assets: AssetDir) -> bool:
        folder = self.target_dir(assets)
        return all((folder / name).is_file() for _, name in self.files)


@dataclass(frozen=True)
class Catalogue:
    """The parsed catalogue: pretrains and the other downloadable weights."""

    path: Path
    pretrains: tuple[Pretrain, ...]
    weights: tuple[WeightAsset, ...]

    def find_pretrain(self, name: str) -> Pretrain:
        """Return the pretrain whose id or name is ``name`` (case-insensitive), else raise UserError."""
        key = name.strip().lower()
        for entry in self.pretrains:
            if key in (entry.id, entry.name.lower()):
                return entry
        known = ", ".join(p.id for p in self.pretrains)
        raise UserError(f"no pretrain {name!r} in {self.path}; known: {known}")

    def find_weights(self, name: str) -> WeightAsset:
        """Return the weights asset (embedder or rmvpe) whose id is ``name``, else raise UserError."""
        key = name.strip().lower()
        for asset in self.weights:
            if key in (asset.id.lower(), asset.name.lower()):
                return asset
        known = ", ".join(a.id for a in self.weights)
        raise UserError(f"no weights named {name!r}; known: {known}")


def bundled_catalogue_path() -> Path:
    """Return the catalogue shipped with RVC Studio (``assets/pretrains.json`` of the source tree)."""
    return Path(__file__).resolve().parents[1] / "assets" / "pretrains.json"


def catalogue_path(assets: AssetDir) -> Path:
    """Return the catalogue in use: the assets folder's own ``pretrains.json`` if it has one, else the bundled one."""
    own = assets.pretrains_catalogue
    return own if own.is_file() else bundled_catalogue_path()


def load_catalogue(path: Path) -> Catalogue:
    """Parse a catalogue file into typed entries, naming the file and field of any problem."""
    from rvc.features.embedder import EMBEDDERS

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogueError(f"cannot read the pretrain catalogue {path}: {error}") from None
    except ValueError as error:
        raise CatalogueError(f"{path} is not valid JSON ({error}); fix it or restore it from the repository") from None
    reader = _Reader(Path(path))
    root = reader.mapping(data, "the top level")
    version = root.get("version")
    if version != CATALOGUE_VERSION:
        raise CatalogueError(f"{path}: version is {version!r}; this RVC Studio reads version {CATALOGUE_VERSION}")
    pretrains = tuple(
        reader.pretrain(item, f"pretrains[{i}]") for i, item in enumerate(reader.sequence(root, "pretrains"))
    )
    ids = [p.id for p in pretrains]
    if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
        raise CatalogueError(f"{path}: pretrain ids must be unique; repeated: {', '.join(duplicates)}")
    weights = [reader.weights(item, f"weights[{i}]") for i, item in enumerate(reader.sequence(root, "weights"))]
    for name, source in EMBEDDERS.items():
        prefix = f"{source.subfolder}/" if source.subfolder else ""
        files = tuple(
            (RemoteFile(source.repo_id, prefix + f, source.revision, source.sha256.get(f)), f) for f in source.files
        )
        weights.append(WeightAsset(name, name, "embedder", source.description, files))
    return Catalogue(Path(path), pretrains, tuple(weights))


def load_catalogue_for(assets: AssetDir) -> Catalogue:
    """Load the catalogue the assets folder uses (see :func:`catalogue_path`)."""
    return load_catalogue(catalogue_path(assets))


@dataclass
class _Reader:
    """Typed access to the parsed JSON with messages that name the field."""

    path: Path

    def fail(self, where: str, problem: str) -> CatalogueError:
        return CatalogueError(f"{self.path}: {where}: {problem}")

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, found {type(value).__name__}")
        return value

    def sequence(self, parent: Mapping[str, Any], key: str) -> list[Any]:
        value = parent.get(key)
        if not isinstance(value, list):
            raise self.fail(key, "expected a list")
        return value

    def text(self, parent: Mapping[str, Any], key: str, where: str, pattern: re.Pattern[str] | None = None) -> str:
        value = parent.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", "missing (a non-empty string is required)")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(f"{where}.{key}", f"{value!r} does not match {pattern.pattern}")
        return value

    def remote(self, value: Any, where: str, repo_id: str, revision: str) -> RemoteFile:
        item = self.mapping(value, where)
        filename = self.text(item, "path", where)
        if filename.startswith("/") or ".." in filename.split("/"):
            raise self.fail(f"{where}.path", f"{filename!r} must be a relative path inside the repository")
        sha256 = item.get("sha256")
        if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            raise self.fail(f"{where}.sha256", "must be 64 lowercase hex digits or null")
        size = item.get("size")
        if size is not None and not (isinstance(size, int) and size > 0):
            raise self.fail(f"{where}.size", "must be a positive number of bytes or null")
        return RemoteFile(repo_id, filename, revision, sha256, size)

    def rate(self, tag: str, value: Any, where: str) -> PretrainRate:
        if not _TAG.fullmatch(tag):
            raise self.fail(where, f"sample rate key {tag!r} must be 32k, 40k or 48k")
        sample_rate = int(tag[:-1]) * 1000
        item = self.mapping(value, where)
        note = item.get("note", "")
        if not isinstance(note, str):
            raise self.fail(f"{where}.note", "must be a string")
        if "unavailable" in item:
            reason = self.text(item, "unavailable", where)
            return PretrainRate(sample_rate, None, None, reason)
        repo_id = self.text(item, "repo", where, _REPO_ID)
        revision = item.get("revision", "main")
        if not isinstance(revision, str) or not revision:
            raise self.fail(f"{where}.revision", "must be a branch, tag or commit")
        g = self.remote(item.get("g"), f"{where}.g", repo_id, revision)
        d = self.remote(item.get("d"), f"{where}.d", repo_id, revision)
        return PretrainRate(sample_rate, g, d, note)

    def pretrain(self, value: Any, where: str) -> Pretrain:
        item = self.mapping(value, where)
        rates_map = self.mapping(item.get("rates"), f"{where}.rates")
        if not rates_map:
            raise self.fail(f"{where}.rates", "lists no sample rate")
        rates = tuple(
            sorted(
                (self.rate(tag, rate, f"{where}.rates.{tag}") for tag, rate in rates_map.items()),
                key=lambda r: r.sample_rate,
            )
        )
        return Pretrain(
            id=self.text(item, "id", where, _ID),
            name=self.text(item, "name", where),
            author=self.text(item, "author", where),
            description=str(item.get("description", "")),
            page=self.text(item, "page", where),
            rates=rates,
        )

    def weights(self, value: Any, where: str) -> WeightAsset:
        item = self.mapping(value, where)
        kind = self.text(item, "kind", where)
        if kind != "rmvpe":
            raise self.fail(f"{where}.kind", f"{kind!r} is not known (rmvpe); embedders come from EMBEDDERS")
        repo_id = self.text(item, "repo", where, _REPO_ID)
        remote = self.remote(item, where, repo_id, str(item.get("revision", "main")))
        return WeightAsset(
            id=self.text(item, "id", where, _ID),
            name=self.text(item, "name", where),
            kind="rmvpe",
            description=str(item.get("description", "")),
            files=((remote, RMVPE_FILE),),
        )


# ------------------------------------------------------------------ installed pairs


def pair_dir(assets: AssetDir, pair_id: str, sample_rate: int) -> Path:
    """Return ``pretrained_v2/<id>/<rate>/``, where an installed pair lives."""
    return assets.pretrained_dir / pair_id / sample_rate_tag(sample_rate)


def installed_pair(assets: AssetDir, pretrain: Pretrain, sample_rate: int) -> PretrainPair | None:
    """Return the installed pair of a catalogue pretrain at ``sample_rate``, or None."""
    folder = pair_dir(assets, pretrain.id, sample_rate)
    g, d = folder / G_FILE, folder / D_FILE
    if g.is_file() and d.is_file():
        return PretrainPair(pretrain.name, sample_rate, g, d, "catalogue")
    return None


# ------------------------------------------------------------------ downloads


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands, for a progress bar."""

    filename: str  # the file being fetched, as named in its repository
    done: int  # bytes fetched (or checked, in the "verify" stage)
    total: int | None  # bytes expected, when known
    file_index: int  # 0-based index of this file in the request
    file_count: int
    stage: Literal["download", "verify"] = "download"

    @property
    def fraction(self) -> float | None:
        """Return the overall fraction done (all files), or None when the size is unknown."""
        if not self.total:
            return None
        within = min(self.done / self.total, 1.0)
        return (self.file_index + within) / self.file_count

    @property
    def text(self) -> str:
        """Return a short human description: ``"G-f040k.pth: 120/438 MB"``."""
        mb = 1024 * 1024
        sizes = f"{self.done / mb:.0f}/{self.total / mb:.0f} MB" if self.total else f"{self.done / mb:.0f} MB"
        verb = "checking" if self.stage == "verify" else "downloading"
        return f"{verb} {Path(self.filename).name} ({self.file_index + 1}/{self.file_count}): {sizes}"


ProgressCallback = Callable[[DownloadProgress], None]


def hub_endpoint() -> str:
    """Return the Hub address to download from: ``HF_ENDPOINT`` when set (read now), else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or "").strip().rstrip("/") or DEFAULT_ENDPOINT


def _hub_offline() -> bool:
    flag = (os.environ.get("HF_HUB_OFFLINE") or "").strip().upper()
    return flag in {"1", "ON", "YES", "TRUE"}


@dataclass
class _Fetch:
    """One file to fetch: where from, where it ends up, and what it must hash to."""

    remote: RemoteFile
    target: Path
    staging: Path
    index: int
    count: int
    endpoint: str
    expected_sha256: str | None = None
    expected_size: int | None = None
    staged: Path | None = field(default=None, repr=False)

    def manual_hint(self) -> str:
        """Return what to do by hand: "download X from the repository R (page) and put it at T"."""
        return (
            f"download {self.remote.filename} from the Hugging Face repository {self.remote.repo_id} "
            f"({self.remote.page}) and put it at {self.target}"
        )


def download_pretrain(
    assets: AssetDir,
    pretrain: Pretrain,
    sample_rate: int,
    *,
    progress: ProgressCallback | None = None,
    endpoint: str | None = None,
) -> PretrainPair:
    """Download a catalogue pretrain's G and D into ``pretrained_v2/<id>/<rate>/`` and return the pair.

    Both files are fetched and checked (sha256 where known, safe load) before either is moved
    into place, so a failed download never leaves a half pair behind.
    """
    rate = pretrain.rate(sample_rate)
    tag = sample_rate_tag(sample_rate)
    if rate is None or rate.g is None or rate.d is None:
        offered = ", ".join(sample_rate_tag(r) for r in pretrain.available_rates) or "none"
        why = f": {rate.note}" if rate is not None and rate.note else ""
        raise UserError(f"{pretrain.name} has no downloadable {tag} G/D pair{why} (available: {offered})")
    folder = pair_dir(assets, pretrain.id, sample_rate)
    staging = assets.root / ".downloads" / f"{pretrain.id}-{tag}"
    fetches = [
        _Fetch(remote, folder / name, staging, i, 2, endpoint or hub_endpoint())
        for i, (remote, name) in enumerate(((rate.g, G_FILE), (rate.d, D_FILE)))
    ]
    _fetch_all(fetches, progress)
    kinds: tuple[Kind, Kind] = ("G", "D")
    for fetch, kind in zip(fetches, kinds, strict=True):
        assert fetch.staged is not None
        _check_loads(fetch.staged, kind, fetch.remote)
    source = {
        "origin": "catalogue",
        "id": pretrain.id,
        "name": pretrain.name,
        "author": pretrain.author,
        "sample_rate": sample_rate,
        "files": {kind: _remote_json(f) for kind, f in zip(("G", "D"), fetches, strict=True)},
    }
    _install(fetches, staging, source_json=(folder / SOURCE_FILE, source))
    return PretrainPair(pretrain.name, sample_rate, folder / G_FILE, folder / D_FILE, "catalogue")


def download_weights(
    assets: AssetDir,
    asset: WeightAsset,
    *,
    progress: ProgressCallback | None = None,
    endpoint: str | None = None,
) -> list[Path]:
    """Download an embedder's or rmvpe's files into their assets folder; return the installed paths."""
    folder = asset.target_dir(assets)
    staging = assets.root / ".downloads" / f"weights-{asset.id}"
    count = len(asset.files)
    fetches = [
        _Fetch(remote, folder / name, staging, i, count, endpoint or hub_endpoint())
        for i, (remote, name) in enumerate(asset.files)
    ]
    _fetch_all(fetches, progress)
    for fetch in fetches:
        assert fetch.staged is not None
        if fetch.staged.suffix in (".pt", ".pth", ".bin"):
            _check_safe_load(fetch.staged, fetch.remote)
    # config.json last: an embedder folder counts as complete only when both files are there anyway
    fetches.sort(key=lambda f: f.target.name == "config.json")
    _install(fetches, staging, source_json=None)
    return [f.target for f in fetches]


def _fetch_all(fetches: list[_Fetch], progress: ProgressCallback | None) -> None:
    """Ask the Hub about every file first (fail fast), then download and check each one."""
    if _hub_offline():
        first = fetches[0]
        raise DownloadError(f"HF_HUB_OFFLINE is set, so nothing was downloaded. {_capital(first.manual_hint())}")
    for fetch in fetches:
        _ask_hub(fetch)
    for fetch in fetches:
        _download(fetch, progress)


def _ask_hub(fetch: _Fetch) -> None:
    """HEAD the file: reachable? present? and compare the Hub's LFS checksum with the catalogue's."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    remote = fetch.remote
    url = hf_hub_url(remote.repo_id, remote.filename, revision=remote.revision, endpoint=fetch.endpoint)
    try:
        meta = get_hf_file_metadata(url, timeout=15, endpoint=fetch.endpoint)
    except Exception as error:  # network errors come from httpx2, Hub errors from huggingface_hub
        raise _download_error(fetch, error) from None
    etag = (meta.etag or "").strip('"').lower()
    hub_sha = etag if _SHA256.fullmatch(etag) else None
    if remote.sha256 and hub_sha and hub_sha != remote.sha256:
        raise ChecksumError(
            f"{remote.filename} in {remote.repo_id} now has sha256 {hub_sha}, but the catalogue expects "
            f"{remote.sha256}: the file was changed upstream, so it was not downloaded. Check {remote.page}; "
            "if the new file is wanted, update its sha256 in the catalogue"
        )
    fetch.expected_sha256 = remote.sha256 or hub_sha
    fetch.expected_size = remote.size or meta.size


def _download(fetch: _Fetch, progress: ProgressCallback | None) -> None:
    """Fetch one file into the staging folder (resuming a dropped connection), then check its sha256."""
    from huggingface_hub import hf_hub_download

    remote = fetch.remote
    report = _reporter(fetch, progress)
    try:
        local = hf_hub_download(
            remote.repo_id,
            remote.filename,
            revision=remote.revision,
            local_dir=fetch.staging,
            endpoint=fetch.endpoint,
            tqdm_class=_progress_bar_class(report),
        )
    except Exception as error:  # network errors come from httpx2, Hub errors from huggingface_hub
        raise _download_error(fetch, error) from None
    staged = Path(str(local))
    size = staged.stat().st_size
    if fetch.expected_size is not None and size != fetch.expected_size:
        staged.unlink(missing_ok=True)
        raise ChecksumError(
            f"{remote.filename} from {remote.repo_id} arrived with {size} bytes, not {fetch.expected_size}; "
            f"it was deleted and nothing was installed. Try again, or {fetch.manual_hint()}"
        )
    if fetch.expected_sha256:
        digest = _sha256_with_progress(staged, lambda done: report(done, size, "verify"))
        if digest != fetch.expected_sha256:
            staged.unlink(missing_ok=True)
            raise ChecksumError(
                f"{remote.filename} from {remote.repo_id} has sha256 {digest}, not the expected "
                f"{fetch.expected_sha256}; it was deleted and nothing was installed. Try again; if it "
                f"persists the file changed upstream (see {remote.page})"
            )
    fetch.staged = staged


def _reporter(fetch: _Fetch, progress: ProgressCallback | None) -> Callable[..., None]:
    def report(done: int, total: int | None, stage: Literal["download", "verify"] = "download") -> None:
        if progress is not None:
            size = total or fetch.expected_size
            progress(DownloadProgress(fetch.remote.filename, done, size, fetch.index, fetch.count, stage))

    return report


def _progress_bar_class(report: Callable[[int, int | None], None]) -> Any:
    """Return a tqdm class for huggingface_hub that forwards byte counts to ``report`` and prints nothing."""
    from tqdm.auto import tqdm

    class _Bar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.bytes_done = int(kwargs.get("initial") or 0)
            self.bytes_total = kwargs.get("total")
            report(self.bytes_done, self.bytes_total)

        def update(self, n: float | None = 1) -> bool | None:
            self.bytes_done += int(n or 0)
            report(self.bytes_done, self.bytes_total)
            return super().update(n)

    return _Bar


def _sha256_with_progress(path: Path, report: Callable[[int], None], chunk: int = 8 << 20) -> str:
    import hashlib

    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
            done += len(block)
            report(done)
    return digest.hexdigest()


def _download_error(fetch: _Fetch, error: Exception) -> UserError:
    """Turn a huggingface_hub / network exception into a message that says what to do."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    remote = fetch.remote
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, GatedRepoError):
        return DownloadError(
            f"{remote.repo_id} is gated: accept its terms on {remote.page} and log in with `hf auth login`, "
            f"then try again, or {fetch.manual_hint()}"
        )
    if isinstance(error, RepositoryNotFoundError | RevisionNotFoundError | EntryNotFoundError):
        return DownloadError(
            f"{remote.filename} is not in the Hugging Face repository {remote.repo_id} (revision {remote.revision}) "
            f"at {fetch.endpoint}: it may have been moved or deleted. Find it on the author's page and update the "
            f"catalogue, or {fetch.manual_hint()} ({detail})"
        )
    if isinstance(error, OfflineModeIsEnabled):
        return DownloadError(
            f"offline mode is on (HF_HUB_OFFLINE), so nothing was downloaded. {_capital(fetch.manual_hint())}"
        )
    return DownloadError(
        f"could not download {remote.filename} from the Hugging Face repository {remote.repo_id}: the Hub at "
        f"{fetch.endpoint} could not be reached ({type(error).__name__}: {detail}). Check the internet connection "
        f"(or HF_ENDPOINT) and try again, or {fetch.manual_hint()}"
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _check_safe_load(path: Path, remote: RemoteFile) -> None:
    """Refuse a weights file that does not load with ``weights_only=True`` (deleting it)."""
    import pickle

    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        path.unlink(missing_ok=True)
        raise UserError(
            f"{remote.filename} from {remote.repo_id} does not load as plain tensors (weights_only=True), so it was "
            f"deleted and not installed: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None


def _check_loads(path: Path, kind: Kind, remote: RemoteFile) -> None:
    """Refuse a downloaded G/D that is not a safe state dict of the right half (deleting it)."""
    from rvc.models.weights import read_state_dict

    try:
        state = read_state_dict(path)
    except UserError as error:
        path.unlink(missing_ok=True)
        raise UserError(f"{remote.filename} from {remote.repo_id} was deleted and not installed: {error}") from None
    if not _looks_like(state, kind):
        path.unlink(missing_ok=True)
        other = "D" if kind == "G" else "G"
        raise UserError(
            f"{remote.filename} from {remote.repo_id} is listed as the {kind} file but holds a {other} "
            "(or no RVC) state dict; it was deleted. Fix the catalogue entry"
        )


def _looks_like(state: Mapping[str, Any], kind: Kind) -> bool:
    prefixes = ("enc_p.", "dec.", "module.enc_p.") if kind == "G" else ("discriminators.", "module.discriminators.")
    return any(key.startswith(prefixes) for key in state)


def _remote_json(fetch: _Fetch) -> dict[str, Any]:
    remote = fetch.remote
    return {
        "repo": remote.repo_id,
        "path": remote.filename,
        "revision": remote.revision,
        "sha256": fetch.expected_sha256,
    }


def _install(fetches: list[_Fetch], staging: Path, source_json: tuple[Path, dict[str, Any]] | None) -> None:
    """Move the checked files into place (same filesystem: atomic renames) and drop the staging folder."""
    for fetch in fetches:
        fetch.target.parent.mkdir(parents=True, exist_ok=True)
    if source_json is not None:
        atomic_write_json(*source_json)
    # G last: a pair is listed only when both files exist, so it appears complete or not at all
    for fetch in sorted(fetches, key=lambda f: f.target.name == G_FILE):
        assert fetch.staged is not None
        os.replace(fetch.staged, fetch.target)
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):
        staging.parent.rmdir()  # only when no other download is under way


# ------------------------------------------------------------------ custom pairs


def validate_pretrain_file(path: Path, kind: Kind, sample_rate: int, model: ModelConfig | None = None) -> None:
    """Check that ``path`` is a safe G or D state dict whose shapes fit the model at ``sample_rate``.

    Loads with ``weights_only=True`` (a pickle with other objects is refused unexecuted) and
    compares every tensor's shape with the v2 model built on the meta device (no memory, no
    weights). Raises UserError, or PretrainMismatchError naming the tensors and a likely cause
    (another sample rate, v1, no pitch, a G given as D). ``model`` replaces the v2 preset
    (tests use tiny models). The discriminator is the same at every sample rate, so a D file
    can only be checked for being a v2 discriminator.
    """
    from rvc.models.config import ModelConfig
    from rvc.models.weights import check_pretrain_file

    config = model or ModelConfig.for_sample_rate(sample_rate)
    if config.sample_rate != sample_rate:
        raise ValueError(f"model config is {config.sample_rate} Hz, asked to check {sample_rate} Hz")
    check_pretrain_file(path, kind == "G", config, source=f"{kind} file {path.name}")


def detect_sample_rate(g_path: Path, model: ModelConfig | None = None) -> int:
    """Return the sample rate whose v2 generator ``g_path`` fits; raise the 40k mismatch when none does.

    With ``model`` given, only that configuration's rate is tried.
    """
    from rvc.models.weights import PretrainMismatchError

    if model is not None:
        validate_pretrain_file(g_path, "G", model.sample_rate, model)
        return model.sample_rate
    first: PretrainMismatchError | None = None
    for rate in (40000, 32000, 48000):
        try:
            validate_pretrain_file(g_path, "G", rate)
            return rate
        except PretrainMismatchError as error:
            first = first or error
    assert first is not None
    raise first


def validate_pair_name(name: str) -> str:
    """Return ``name`` if it can name a pretrain folder, else raise UserError."""
    if not _PAIR_NAME.fullmatch(name or ""):
        raise UserError(
            f"invalid pretrain name {name!r}: use letters, digits, '-', '_' and '.' only "
            "(not starting with '.', at most 64 characters), e.g. 'my-pretrain_v2'"
        )
    return name


def _refuse_existing(assets: AssetDir, name: str, sample_rate: int, overwrite: bool) -> None:
    folder = pair_dir(assets, name, sample_rate)
    if (folder / G_FILE).exists() and not overwrite:
        raise UserError(
            f"a {sample_rate_tag(sample_rate)} pretrain named {name!r} already exists in {folder}; "
            "choose another name, or delete that folder first"
        )


def add_custom_pair(
    assets: AssetDir,
    name: str,
    g_path: Path,
    d_path: Path,
    sample_rate: int | None = None,
    model: ModelConfig | None = None,
    overwrite: bool = False,
) -> PretrainPair:
    """Validate a G and a D file and copy them into ``pretrained_v2/<name>/<rate>/``; return the pair.

    ``sample_rate`` None: detected from the G file. Nothing is copied unless both files pass
    :func:`validate_pretrain_file`. An existing pair of that name and rate is kept unless
    ``overwrite``.
    """
    validate_pair_name(name)
    g_path, d_path = Path(g_path), Path(d_path)
    for label, path in (("G", g_path), ("D", d_path)):
        if not path.is_file():
            raise UserError(f"{label} file {path} does not exist")
    if sample_rate is not None and sample_rate not in SAMPLE_RATES:
        raise UserError(f"sample rate {sample_rate} is not one of 32000, 40000, 48000")
    if sample_rate is not None:
        _refuse_existing(assets, name, sample_rate, overwrite)
        validate_pretrain_file(g_path, "G", sample_rate, model)
    else:
        sample_rate = detect_sample_rate(g_path, model)
        _refuse_existing(assets, name, sample_rate, overwrite)
    validate_pretrain_file(d_path, "D", sample_rate, model)
    folder = pair_dir(assets, name, sample_rate)
    folder.mkdir(parents=True, exist_ok=True)
    for source, target in ((d_path, folder / D_FILE), (g_path, folder / G_FILE)):  # G last, as in _install
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    atomic_write_json(
        folder / SOURCE_FILE,
        {
            "origin": "custom",
            "name": name,
            "sample_rate": sample_rate,
            "files": {
                "G": {"from": g_path.name, "sha256": sha256_file(folder / G_FILE)},
                "D": {"from": d_path.name, "sha256": sha256_file(folder / D_FILE)},
            },
        },
    )
    return PretrainPair(name, sample_rate, folder / G_FILE, folder / D_FILE, "custom")

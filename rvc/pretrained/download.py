"""Downloads from the Hugging Face Hub: catalogue pretrains and weights, checked before they land.

Downloads go through ``huggingface_hub`` against the endpoint in ``HF_ENDPOINT`` (read when the
download starts, so tests can point it at a local server). A Hub that cannot be reached is asked
again a few times, waiting longer each time, and each wait is said (``log``) so that an offline
download never looks hung; when it gives up, the message names every file of the request (a
pretrain needs its G and its D), where it is published and where to put it. A dropped connection is resumed with
an HTTP Range request; a file whose sha256 differs from the catalogue's (or from the Hub's own
LFS checksum) is deleted and refused; every weights file must load with ``weights_only=True``
before it is installed. Files are fetched into ``assets/.downloads/`` and moved into place
(atomic renames) only when every file of the request has passed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.experiment.names import sample_rate_tag
from rvc.fileio import atomic_write_json
from rvc.pretrained.catalogue import (
    D_FILE,
    DEFAULT_ENDPOINT,
    G_FILE,
    SHA256_HEX,
    Kind,
    Pretrain,
    RemoteFile,
    WeightAsset,
    pair_dir,
)
from rvc.pretrained.checks import check_pair_half, check_safe_load
from rvc.pretrained.hub_errors import ChecksumError, DownloadError, capital, download_error, first_line, transient
from rvc.pretrained.pairs import SOURCE_FILE, PretrainPair

RETRIES = 3  # asks of the Hub after the first when it cannot be reached (offline, a flaky connection)
RETRY_WAIT_S = 1.0  # the first wait before asking again; each next one doubles (1, 2, 4 s)


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
LogCallback = Callable[[str], None]  # a line for the user: "retrying (attempt 2 of 4) in 1 s ..."


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
    retries: int = RETRIES,
    log: LogCallback | None = None,
) -> PretrainPair:
    """Download a catalogue pretrain's G and D into ``pretrained_v2/<id>/<rate>/`` and return the pair.

    Both files are fetched and checked (sha256 where known, safe load) before either is moved
    into place, so a failed download never leaves a half pair behind. An unreachable Hub is asked
    ``retries`` more times, each wait said through ``log``.
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
    _fetch_all(fetches, progress, retries, log)
    kinds: tuple[Kind, Kind] = ("G", "D")
    for fetch, kind in zip(fetches, kinds, strict=True):
        assert fetch.staged is not None
        check_pair_half(fetch.staged, kind, fetch.remote)
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
    retries: int = RETRIES,
    log: LogCallback | None = None,
) -> list[Path]:
    """Download an embedder's or rmvpe's files into their assets folder; return the installed paths."""
    folder = asset.target_dir(assets)
    staging = assets.root / ".downloads" / f"weights-{asset.id}"
    count = len(asset.files)
    fetches = [
        _Fetch(remote, folder / name, staging, i, count, endpoint or hub_endpoint())
        for i, (remote, name) in enumerate(asset.files)
    ]
    _fetch_all(fetches, progress, retries, log)
    for fetch in fetches:
        assert fetch.staged is not None
        if fetch.staged.suffix in (".pt", ".pth", ".bin"):
            check_safe_load(fetch.staged, fetch.remote)
    # config.json last: an embedder folder counts as complete only when both files are there anyway
    fetches.sort(key=lambda f: f.target.name == "config.json")
    _install(fetches, staging, source_json=None)
    return [f.target for f in fetches]


def _fetch_all(fetches: list[_Fetch], progress: ProgressCallback | None, retries: int, log: LogCallback | None) -> None:
    """Ask the Hub about every file first (fail fast), then download and check each one."""
    hint = _request_hint(fetches)
    if _hub_offline():
        raise DownloadError(f"HF_HUB_OFFLINE is set, so nothing was downloaded. {capital(hint)}")
    for fetch in fetches:
        _ask_hub(fetch, hint, retries, log)
    for fetch in fetches:
        _download(fetch, progress, hint)


def _request_hint(fetches: list[_Fetch]) -> str:
    """Say what to do by hand: every file of the request (a pretrain needs both its G and its D)."""
    if len(fetches) == 1:
        return fetches[0].manual_hint()
    each = "; ".join(f"{f.remote.filename} from {f.remote.repo_id} ({f.remote.page}) to {f.target}" for f in fetches)
    both = "both files" if len(fetches) == 2 else f"all {len(fetches)} files"
    return f"download {both} from the Hugging Face Hub and put each in place: {each}"


def _ask_hub(fetch: _Fetch, hint: str, retries: int, log: LogCallback | None) -> None:
    """HEAD the file: reachable? present? and compare the Hub's LFS checksum with the catalogue's."""
    remote = fetch.remote
    meta = _metadata(fetch, hint, retries, log)
    etag = (meta.etag or "").strip('"').lower()
    hub_sha = etag if SHA256_HEX.fullmatch(etag) else None
    if remote.sha256 and hub_sha and hub_sha != remote.sha256:
        raise ChecksumError(
            f"{remote.filename} in {remote.repo_id} now has sha256 {hub_sha}, but the catalogue expects "
            f"{remote.sha256}: the file was changed upstream, so it was not downloaded. Check {remote.page}; "
            "if the new file is wanted, update its sha256 in the catalogue"
        )
    fetch.expected_sha256 = remote.sha256 or hub_sha
    fetch.expected_size = remote.size or meta.size


def _metadata(fetch: _Fetch, hint: str, retries: int, log: LogCallback | None) -> Any:
    try:
        return hub_metadata(fetch.remote, fetch.endpoint, retries, log)
    except Exception as error:  # network errors come from httpx2, Hub errors from huggingface_hub
        attempts = retries + 1 if transient(error) else 1
        raise download_error(fetch.remote, fetch.endpoint, error, hint, attempts) from None


def hub_metadata(remote: RemoteFile, endpoint: str, retries: int = RETRIES, log: LogCallback | None = None) -> Any:
    """Return the Hub's metadata of ``remote``, asking again (and saying so through ``log``) while it cannot be reached.

    Raises the last attempt's exception: a file not on the Hub, or gated, fails at once.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(remote.repo_id, remote.filename, revision=remote.revision, endpoint=endpoint)
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        try:
            return get_hf_file_metadata(url, timeout=15, endpoint=endpoint)
        except Exception as error:  # network errors come from httpx2, Hub errors from huggingface_hub
            if attempt == attempts or not transient(error):
                raise
            wait = RETRY_WAIT_S * 2 ** (attempt - 1)
            if log is not None:
                log(
                    f"retrying (attempt {attempt + 1} of {attempts}) in {wait:g} s: the Hub at {endpoint} "
                    f"could not be reached for {Path(remote.filename).name} ({first_line(error)})"
                )
            time.sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _download(fetch: _Fetch, progress: ProgressCallback | None, hint: str) -> None:
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
        raise download_error(fetch.remote, fetch.endpoint, error, hint) from None
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

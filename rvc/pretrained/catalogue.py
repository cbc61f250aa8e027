"""The pretrain catalogue (``assets/pretrains.json``) and where catalogue pairs are installed.

The catalogue is data: community pretrains and RVC's own f0G/f0D pairs (name, author, Hub
repository and path of the G and D file per sample rate, sha256 and size where known) and the
rmvpe weights. The content encoders are not repeated there: they come from
:data:`rvc.features.embedder_sources.EMBEDDERS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rvc.errors import UserError
from rvc.experiment import AssetDir
from rvc.experiment.names import sample_rate_tag
from rvc.pretrained.pairs import PretrainPair

SAMPLE_RATES = (32000, 40000, 48000)
DEFAULT_ENDPOINT = "https://huggingface.co"
G_FILE = "G.pth"
D_FILE = "D.pth"
CATALOGUE_VERSION = 1
RMVPE_FILE = "rmvpe.pt"  # the name AssetDir.rmvpe_weights expects

Kind = Literal["G", "D"]

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")  # a sha256 as the catalogue and the Hub write it
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_TAG = re.compile(r"(32|40|48)k")


class CatalogueError(UserError):
    """The catalogue file is unreadable or an entry lacks a field; the message names the file and field."""


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
    return Path(__file__).resolve().parents[2] / "assets" / "pretrains.json"


def catalogue_path(assets: AssetDir) -> Path:
    """Return the catalogue in use: the assets folder's own ``pretrains.json`` if it has one, else the bundled one."""
    own = assets.pretrains_catalogue
    return own if own.is_file() else bundled_catalogue_path()


def load_catalogue(path: Path) -> Catalogue:
    """Parse a catalogue file into typed entries, naming the file and field of any problem."""
    from rvc.features.embedder_sources import EMBEDDERS

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
        if sha256 is not None and not (isinstance(sha256, str) and SHA256_HEX.fullmatch(sha256)):
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


# ------------------------------------------------------------------ where catalogue pairs are installed


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

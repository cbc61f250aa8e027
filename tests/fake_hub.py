"""A local HTTP server that serves files the way the Hugging Face Hub does, for download tests.

huggingface_hub's ``hf_hub_download`` first sends ``HEAD {endpoint}/{repo}/resolve/{revision}/{path}``
and reads ``ETag`` (for LFS files the file's sha256), ``X-Repo-Commit`` and ``Content-Length``;
then it sends ``GET`` to the same address and, when the connection drops mid-file, sends it again
with ``Range: bytes=<received>-`` and expects ``206 Partial Content``. This server does exactly
that, records every request, and can drop a connection part-way through a file once.

For uploads it answers what ``create_repo`` and ``upload_folder`` send: ``POST /api/repos/create``
(409 when the repository exists, which ``exist_ok`` accepts), ``POST /api/models/{repo}/preupload/{rev}``
and ``POST /api/models/{repo}/commit/{rev}`` (an NDJSON header line, then one line per file), and the
``POST /api/validate-yaml`` of a README.md's header (which must be YAML between ``---`` lines). Its
preupload answers "regular" for every file, so the contents come inline in the commit and land in
``files``; the real Hub answers "lfs" for model weights, which huggingface_hub then sends to the
Hub's Xet storage, a protocol of its own that this server does not speak. With ``token`` set, the
upload endpoints want ``Authorization: Bearer <token>`` and answer 401 otherwise, as the Hub does.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    data: bytes
    etag: str  # what the ETag header carries; the sha256 for LFS files on the real Hub
    drop_after: int | None = None  # drop the next GET's connection after this many bytes


@dataclass(frozen=True)
class Request:
    method: str
    repo_id: str
    filename: str
    headers: dict[str, str]  # names in lower case


@dataclass(frozen=True)
class Commit:
    repo_id: str
    summary: str
    files: dict[str, bytes]  # path in the repository -> contents


@dataclass
class FakeHub:
    """Files by (repo, path), the repositories created and the commits received, and every request."""

    files: dict[tuple[str, str], HubFile] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    token: str | None = None  # set: uploads need it as a bearer token
    repos: dict[str, dict[str, object]] = field(default_factory=dict)  # repo id -> the create request's body
    commits: list[Commit] = field(default_factory=list)

    def add(self, repo_id: str, filename: str, data: bytes, etag: str | None = None) -> str:
        """Serve ``data`` as ``repo_id/filename``; return its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        self.files[(repo_id, filename)] = HubFile(data, etag or digest)
        return digest

    def drop_once(self, repo_id: str, filename: str, after_bytes: int) -> None:
        """Make the next GET of that file send ``after_bytes`` bytes and then close the connection."""
        self.files[(repo_id, filename)].drop_after = after_bytes

    def gets(self, filename: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.filename == filename]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet: tests read hub.requests
            pass

        def _lookup(self) -> tuple[str, str, HubFile | None]:
            parts = unquote(urlsplit(self.path).path).split("/")
            # /{owner}/{name}/resolve/{revision}/{path...}
            if len(parts) < 6 or parts[3] != "resolve":
                return "", "", None
            repo_id, filename = f"{parts[1]}/{parts[2]}", "/".join(parts[5:])
            hub.requests.append(
                Request(self.command, repo_id, filename, {k.lower(): v for k, v in self.headers.items()})
            )
            return repo_id, filename, hub.files.get((repo_id, filename))

        def _not_found(self) -> None:
            body = b'{"error": "Entry not found"}'
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        def _headers(self, status: int, item: HubFile, start: int) -> None:
            size = len(item.data)
            self.send_response(status)
            self.send_header("ETag", f'"{item.etag}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()

        def do_POST(self) -> None:
            _send_json(self, *_upload_answer(hub, self))

        def do_HEAD(self) -> None:
            _, _, item = self._lookup()
            if item is None:
                self._not_found()
                return
            self._headers(200, item, 0)

        def do_GET(self) -> None:
            _, _, item = self._lookup()
            if item is None:
                self._not_found()
                return
            start = 0
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes=") and ranged.endswith("-"):
                start = int(ranged[len("bytes=") : -1])
            self._headers(206 if start else 200, item, start)
            body = item.data[start:]
            if item.drop_after is not None and item.drop_after < len(body):
                cut, item.drop_after = item.drop_after, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                # a dropped connection: the client has Content-Length bytes promised and gets EOF
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    return Handler


Answer = tuple[int, object, "str | None"]  # status, JSON body, X-Error-Code


def _send_json(handler: BaseHTTPRequestHandler, status: int, body: object, error_code: str | None) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    if error_code:
        handler.send_header("X-Error-Code", error_code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _upload_answer(hub: FakeHub, request: BaseHTTPRequestHandler) -> Answer:
    """Answer a POST of create_repo or upload_folder as the Hub does (and record it)."""
    path = unquote(urlsplit(request.path).path)
    body = request.rfile.read(int(request.headers.get("Content-Length", 0)))
    hub.requests.append(Request("POST", "", path, {k.lower(): v for k, v in request.headers.items()}))
    if hub.token is not None and request.headers.get("Authorization") != f"Bearer {hub.token}":
        return 401, {"error": "Invalid credentials in Authorization header"}, None
    if path == "/api/repos/create":
        return _create(hub, json.loads(body))
    if path == "/api/validate-yaml":  # upload_folder asks before it uploads a README.md
        return _validate_card(json.loads(body)["content"])
    parts = path.split("/")  # /api/models/{owner}/{name}/{preupload|commit}/{revision}
    repo_id = "/".join(parts[3:5]) if len(parts) == 7 and parts[:3] == ["", "api", "models"] else ""
    if repo_id not in hub.repos:
        return 404, {"error": "Repository not found"}, "RepoNotFound"
    if parts[5] == "preupload":
        files = json.loads(body)["files"]
        return (
            200,
            {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]},
            None,
        )
    if parts[5] == "commit":
        return _commit(hub, repo_id, body)
    return 404, {"error": "Not found"}, None


def _validate_card(card: str) -> Answer:
    """Check that a model card's header is YAML between --- lines (the Hub checks its fields too)."""
    import yaml

    header = card.split("---\n")[1] if card.startswith("---\n") and card.count("---\n") >= 2 else None
    try:
        data = yaml.safe_load(header) if header is not None else None
    except yaml.YAMLError as error:
        return 400, {"errors": [{"message": f"invalid YAML: {error}"}]}, None
    if not isinstance(data, dict):
        return 400, {"errors": [{"message": "no YAML metadata header"}]}, None
    return 200, {"warnings": []}, None


def _create(hub: FakeHub, request: dict[str, object]) -> Answer:
    repo_id = f"{request.get('organization')}/{request['name']}"
    if repo_id in hub.repos:
        return 409, {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"}, None
    hub.repos[repo_id] = request
    return 200, {"url": f"{hub.url}/{repo_id}", "name": repo_id}, None


def _commit(hub: FakeHub, repo_id: str, body: bytes) -> Answer:
    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    header = next(line["value"] for line in lines if line["key"] == "header")
    if any(line["key"] == "lfsFile" for line in lines):  # never asked for: preupload said "regular"
        return 400, {"error": "this fake Hub takes regular files only"}, None
    files = {
        line["value"]["path"]: base64.b64decode(line["value"]["content"]) for line in lines if line["key"] == "file"
    }
    hub.commits.append(Commit(repo_id, header["summary"], files))
    for name, data in files.items():
        hub.add(repo_id, name, data)
    oid = hashlib.sha1(body).hexdigest()
    return 200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{oid}", "commitOid": oid}, None


@contextmanager
def serve_hub() -> Iterator[FakeHub]:
    """Start a FakeHub on a free local port for the duration of the ``with`` block."""
    hub = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll: shutdown() waits up to one poll interval (0.5 s by default), at the end of every test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """Return an address where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def tiny_pretrain_bytes(sample_rate: int = 40000, seed: int = 0, optimizer_mb: float = 0.0) -> tuple[bytes, bytes]:
    """Return a random tiny-model G and D saved in RVC's pretrain format ({"model", "iteration", ...}).

    ``optimizer_mb`` adds an optimizer state of about that size, as real pretrains carry (it makes
    a file large enough for huggingface_hub to resume mid-file: it writes in 10 MB chunks).
    """
    import torch

    from rvc.models.discriminator import MultiPeriodDiscriminatorV2
    from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid
    from rvc.models.weights import to_rvc_spelling
    from tests.fake_experiment import tiny_config

    torch.manual_seed(seed)
    config = tiny_config(sample_rate).model
    modules = (SynthesizerTrnMs768NSFsid(config), MultiPeriodDiscriminatorV2(divisor=config.discriminator_divisor))
    out = []
    for module in modules:
        buffer = io.BytesIO()
        optimizer = {"state": {0: {"exp_avg": torch.rand(int(optimizer_mb * 2**18))}}} if optimizer_mb else {}
        state = {
            "model": to_rvc_spelling(module.state_dict()),
            "iteration": 1,
            "optimizer": optimizer,
            "learning_rate": 1e-4,
        }
        torch.save(state, buffer)
        out.append(buffer.getvalue())
    return out[0], out[1]


def write_tiny_pair(folder: Path, sample_rate: int = 40000) -> tuple[Path, Path]:
    """Write a tiny G and D (RVC's format) into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    g_bytes, d_bytes = tiny_pretrain_bytes(sample_rate)
    g, d = folder / f"G_tiny_{sample_rate // 1000}k.pth", folder / f"D_tiny_{sample_rate // 1000}k.pth"
    g.write_bytes(g_bytes)
    d.write_bytes(d_bytes)
    return g, d


def write_catalogue(path: Path, repo_id: str, g_path: str, d_path: str, sha256: tuple[str | None, str | None]) -> Path:
    """Write a one-entry catalogue ("tiny", 40k) pointing at files a FakeHub serves."""
    import json

    entry = {
        "id": "tiny",
        "name": "Tiny Test",
        "author": "tests",
        "description": "random tiny-model weights",
        "page": f"https://huggingface.co/{repo_id}",
        "rates": {
            "40k": {
                "repo": repo_id,
                "g": {"path": g_path, "sha256": sha256[0], "size": None},
                "d": {"path": d_path, "sha256": sha256[1], "size": None},
            },
            "48k": {"unavailable": "not published"},
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "weights": [], "pretrains": [entry]}), encoding="utf-8")
    return path

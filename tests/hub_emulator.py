"""A Hugging Face Hub emulator on loopback, driven through the real `huggingface_hub` client.

Two threaded HTTP servers: the Hub on 127.0.0.1 and a "CDN" on 127.0.0.2 (a different origin,
as in production) that serves LFS objects after a 302 from `resolve`. Tests build repositories
with `HubEmulator.add_repo` / `HubRepo.commit`, point the client at `emulator.endpoint`
(the `hub` fixture in `tests/conftest.py` sets `HF_ENDPOINT`), and can then tamper with what
is served, move branches, fail requests, or read the request log.

Endpoints: model info (`/api/models/{id}[/revision/{rev}]`, siblings with `blobs=true`,
`securityRepoStatus` with `securityStatus=true`), the recursive tree (paged by `Link`),
`HEAD`/`GET /{id}/resolve/{rev}/{path}` with `X-Repo-Commit`, `ETag`, `X-Linked-Etag`,
`X-Linked-Size` and HTTP `Range`, and errors with `X-Error-Code` (`RepoNotFound`,
`RevisionNotFound`, `EntryNotFound`, `GatedRepo`). Unknown paths answer 404.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

#: Files at least this large, or with these suffixes, are stored in LFS (as on the Hub).
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".pkl")
LFS_MIN_SIZE = 10 * 1024 * 1024


def git_blob_sha1(data: bytes) -> str:
    """The git blob id of `data`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    """The git-lfs pointer text that git stores instead of `data`."""
    digest = hashlib.sha256(data).hexdigest()
    text = f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {len(data)}\n"
    return text.encode()


def is_lfs(path: str, data: bytes) -> bool:
    """Whether the Hub would keep this file in LFS."""
    return path.endswith(LFS_SUFFIXES) or len(data) >= LFS_MIN_SIZE


#: (path, id(content)) -> (content, entry); the content is kept so its id is not reused.
_ENTRY_CACHE: dict[tuple[str, int], tuple[bytes, dict[str, Any]]] = {}


@dataclass
class HubRepo:
    """One model repository: commits (path -> bytes), branches and tags, and card metadata."""

    repo_id: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    card_data: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    gated: str | bool = False
    private: bool = False
    created_at: str = "2024-01-02T03:04:05.000Z"
    last_modified: str = "2024-06-07T08:09:10.000Z"
    security_status: dict[str, Any] | None = None
    #: (commit, path) -> bytes served instead of the declared content (tampering).
    served: dict[tuple[str, str], bytes] = field(default_factory=dict)
    #: Files served by resolve but not declared in info or tree (an extra file).
    hidden: set[str] = field(default_factory=set)
    #: Files declared in info and tree that resolve answers with EntryNotFound (a missing file).
    unserved: set[str] = field(default_factory=set)
    #: Files left out of the model info's siblings only (the tree still lists them).
    hidden_from_info: set[str] = field(default_factory=set)

    def commit(self, files: dict[str, bytes], *, branch: str = "main") -> str:
        """Record a new commit holding `files` and move `branch` to it; return its sha."""
        seed = json.dumps(
            [
                self.repo_id,
                branch,
                len(self.commits),
                sorted((p, git_blob_sha1(d)) for p, d in files.items()),
            ]
        )
        sha = hashlib.sha1(seed.encode()).hexdigest()
        self.commits[sha] = dict(files)
        self.refs[branch] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        """The commit a branch, tag or full commit sha names, or None."""
        if revision in self.commits:
            return revision
        return self.refs.get(revision)

    def entry(self, path: str, data: bytes) -> dict[str, Any]:
        """The tree entry of one file (digests computed once per content)."""
        cached = _ENTRY_CACHE.get((path, id(data)))
        if cached is not None and cached[0] is data:
            return cached[1]
        entry = self._entry(path, data)
        _ENTRY_CACHE[(path, id(data))] = (data, entry)
        return entry

    @staticmethod
    def _entry(path: str, data: bytes) -> dict[str, Any]:
        if is_lfs(path, data):
            pointer = lfs_pointer(data)
            return {
                "type": "file",
                "oid": git_blob_sha1(pointer),
                "size": len(data),
                "path": path,
                "lfs": {
                    "oid": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": len(pointer),
                },
            }
        return {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}


class HubEmulator:
    """The Hub and its CDN on loopback; use as a context manager or call `start`/`stop`."""

    def __init__(self, *, page_size: int = 50) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[tuple[str, str]] = []
        #: Tokens that may read gated or private repos (sent as `Authorization: Bearer ...`).
        self.tokens: set[str] = set()
        #: Answer a request with a token not in `tokens` with 401, as the Hub does for a bad token.
        self.reject_unknown_tokens = False
        #: Answer this many requests (any path) with 429 before serving normally.
        self.rate_limit_next = 0
        #: Answer this many requests with 503 before serving normally.
        self.fail_next = 0
        #: Answer this many file downloads (GET on resolve) with 503 before serving normally.
        self.fail_downloads_next = 0
        #: Break this many file bodies halfway (full Content-Length, half the bytes, then close).
        self.cut_downloads_next = 0
        #: (path, Range header) of every ranged GET of a file body.
        self.range_requests: list[tuple[str, str]] = []
        #: `Authorization` headers the CDN received (a client must never send the token there).
        self.cdn_authorizations: list[str] = []
        #: Called with (method, path) before each Hub request; may mutate the repos (race tests).
        self.before_request: list[Any] = []
        self.page_size = page_size
        self._lock = threading.Lock()
        self._hub = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, cdn=False))
        self._cdn = ThreadingHTTPServer(("127.0.0.2", 0), _handler(self, cdn=True))
        self._threads: list[threading.Thread] = []

    @property
    def endpoint(self) -> str:
        """The Hub's base URL (what `HF_ENDPOINT` is set to)."""
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn_origin(self) -> str:
        """The CDN's base URL."""
        return f"http://127.0.0.2:{self._cdn.server_address[1]}"

    def add_repo(self, repo_id: str, files: dict[str, bytes] | None = None, **meta: Any) -> HubRepo:
        """Create a repository (with one commit on `main` when `files` is given)."""
        repo = HubRepo(repo_id=repo_id, **meta)
        if files is not None:
            repo.commit(files)
        self.repos[repo_id] = repo
        return repo

    def start(self) -> HubEmulator:
        """Serve both origins on background threads."""
        for server in (self._hub, self._cdn):
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and close the sockets."""
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> HubEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def downloads(self) -> list[str]:
        """Paths of file bodies served (GET on resolve or the CDN), in order."""
        return [path for method, path in self.requests if method == "GET" and "/resolve/" in path]

    def _cut_download(self) -> bool:
        with self._lock:
            if self.cut_downloads_next > 0:
                self.cut_downloads_next -= 1
                return True
            return False

    def _log(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def _throttle(self, *, download: bool = False) -> int | None:
        with self._lock:
            if download and self.fail_downloads_next > 0:
                self.fail_downloads_next -= 1
                return 503
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return 429
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503
        return None


_MODEL_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/]+))?/?$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_CDN = re.compile(r"^/lfs/(?P<repo>[^/]+/[^/]+)/(?P<commit>[0-9a-f]{40})/(?P<path>.+)$")


class _HubError(Exception):
    def __init__(self, status: int, code: str, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit


def _handler(hub: HubEmulator, *, cdn: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve(head=False)

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def _serve(self, *, head: bool) -> None:
            split = urlsplit(self.path)
            path = unquote(split.path)
            hub._log(self.command, ("cdn:" if cdn else "") + split.path)
            for hook in list(hub.before_request):
                hook(self.command, path)
            auth = self.headers.get("Authorization", "")
            if cdn and auth:
                hub.cdn_authorizations.append(auth)
            token = auth.removeprefix("Bearer ").strip()
            if not cdn and hub.reject_unknown_tokens and token and token not in hub.tokens:
                message = "Invalid credentials in Authorization header"
                body = json.dumps({"error": message}).encode()
                headers = {"X-Error-Message": message}
                self._send(401, body, headers, head=head, kind="application/json")
                return
            status = hub._throttle(download=self.command == "GET" and "/resolve/" in path)
            if status is not None:
                self._send(status, b"slow down", {"Retry-After": "0"}, head=head)
                return
            try:
                if cdn:
                    self._cdn(path, head)
                else:
                    self._hub(path, parse_qs(split.query), head)
            except _HubError as exc:
                headers = {"X-Error-Code": exc.code, "X-Error-Message": exc.message}
                if exc.commit:
                    headers["X-Repo-Commit"] = exc.commit
                body = json.dumps({"error": exc.message}).encode()
                self._send(exc.status, body, headers, head=head, kind="application/json")

        def _repo(self, repo_id: str) -> HubRepo:
            repo = hub.repos.get(repo_id)
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth else ""
            if repo is None or (repo.private and token not in hub.tokens):
                raise _HubError(
                    401 if not token else 404,
                    "RepoNotFound",
                    "Repository not found",
                )
            return repo

        def _gate(self, repo: HubRepo) -> None:
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth else ""
            if repo.gated and token not in hub.tokens:
                raise _HubError(
                    403 if token else 401,
                    "GatedRepo",
                    f"Access to model {repo.repo_id} is restricted. You must have access to it.",
                )

        def _commit(self, repo: HubRepo, revision: str) -> str:
            commit = repo.resolve(revision)
            if commit is None:
                raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return commit

        def _hub(self, path: str, query: dict[str, list[str]], head: bool) -> None:
            if match := _TREE.match(path):
                self._tree(match, query, head)
            elif match := _MODEL_INFO.match(path):
                self._info(match, query, head)
            elif match := _RESOLVE.match(path):
                self._resolve(match, head)
            else:
                self._send(404, b"Not Found", {}, head=head)

        def _info(self, match: re.Match[str], query: dict[str, list[str]], head: bool) -> None:
            repo = self._repo(match["repo"])
            commit = self._commit(repo, match["rev"] or "main")
            files = repo.commits[commit]
            blobs = query.get("blobs", ["false"])[0].lower() == "true"
            siblings = []
            for name, data in sorted(files.items()):
                if name in repo.hidden or name in repo.hidden_from_info:
                    continue
                sibling: dict[str, Any] = {"rfilename": name}
                if blobs:
                    entry = repo.entry(name, data)
                    sibling["size"] = len(data)
                    sibling["blobId"] = entry["oid"]
                    if "lfs" in entry:
                        sibling["lfs"] = {
                            "sha256": entry["lfs"]["oid"],
                            "size": len(data),
                            "pointerSize": entry["lfs"]["pointerSize"],
                        }
                siblings.append(sibling)
            doc: dict[str, Any] = {
                "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": commit,
                "private": repo.private,
                "gated": repo.gated,
                "disabled": False,
                "tags": list(repo.tags),
                "createdAt": repo.created_at,
                "lastModified": repo.last_modified,
                "cardData": dict(repo.card_data),
                "library_name": repo.card_data.get("library_name"),
                "pipeline_tag": repo.card_data.get("pipeline_tag"),
                "siblings": siblings,
            }
            if query.get("securityStatus", ["false"])[0].lower() == "true":
                doc["securityRepoStatus"] = repo.security_status or {
                    "scansDone": True,
                    "filesWithIssues": [],
                }
            self._json(doc, head)

        def _tree(self, match: re.Match[str], query: dict[str, list[str]], head: bool) -> None:
            repo = self._repo(match["repo"])
            self._gate(repo)
            commit = self._commit(repo, match["rev"])
            prefix = (match["path"] or "").strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            entries: list[dict[str, Any]] = []
            folders: set[str] = set()
            for name, data in sorted(repo.commits[commit].items()):
                if name in repo.hidden or (prefix and not name.startswith(prefix + "/")):
                    continue
                rest = name[len(prefix) + 1 :] if prefix else name
                if "/" in rest and not recursive:
                    folders.add((prefix + "/" if prefix else "") + rest.split("/", 1)[0])
                    continue
                parts = rest.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    folders.add((prefix + "/" if prefix else "") + "/".join(parts[:depth]))
                entries.append(repo.entry(name, data))
            entries += [
                {"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in folders
            ]
            entries.sort(key=lambda e: e["path"])
            start = int(query.get("cursor", ["0"])[0])
            page = entries[start : start + hub.page_size]
            headers = {}
            if start + hub.page_size < len(entries):
                base = (
                    f"{hub.endpoint}/api/models/{repo.repo_id}/tree/{quote(match['rev'], safe='')}"
                )
                if prefix:
                    base += "/" + quote(prefix)
                recursive_q = "&recursive=true" if recursive else ""
                link = f"{base}?cursor={start + hub.page_size}{recursive_q}"
                headers["Link"] = f'<{link}>; rel="next"'
            self._json(page, head, headers)

        def _resolve(self, match: re.Match[str], head: bool) -> None:
            repo = self._repo(match["repo"])
            self._gate(repo)
            commit = self._commit(repo, unquote(match["rev"]))
            name = match["path"]
            files = repo.commits[commit]
            if name not in files or name in repo.unserved:
                raise _HubError(404, "EntryNotFound", f"{name} does not exist", commit=commit)
            data = files[name]
            entry = repo.entry(name, data)
            headers = {"X-Repo-Commit": commit}
            if "lfs" in entry:
                headers["X-Linked-Etag"] = f'"{entry["lfs"]["oid"]}"'
                headers["X-Linked-Size"] = str(len(data))
                headers["ETag"] = f'"{entry["oid"]}"'
                headers["Location"] = f"{hub.cdn_origin}/lfs/{repo.repo_id}/{commit}/{quote(name)}"
                self._send(302, b"", headers, head=head)
                return
            headers["ETag"] = f'"{entry["oid"]}"'
            body = repo.served.get((commit, name), data)
            self._body(body, headers, head)

        def _cdn(self, path: str, head: bool) -> None:
            match = _CDN.match(path)
            if match is None:
                self._send(404, b"Not Found", {}, head=head)
                return
            repo = hub.repos.get(match["repo"])
            files = repo.commits.get(match["commit"], {}) if repo else {}
            if repo is None or match["path"] not in files:
                self._send(404, b"NoSuchKey", {}, head=head)
                return
            body = repo.served.get((match["commit"], match["path"]), files[match["path"]])
            entry = repo.entry(match["path"], files[match["path"]])
            etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
            self._body(body, {"ETag": f'"{etag}"'}, head)

        def _body(self, body: bytes, headers: dict[str, str], head: bool) -> None:
            headers = {**headers, "Accept-Ranges": "bytes"}
            wanted = self.headers.get("Range")
            if wanted and not head:
                hub.range_requests.append((urlsplit(self.path).path, wanted))
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted or "")
            if match is None and not head and len(body) > 1 and hub._cut_download():
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True  # the rest never comes
                return
            if match is not None and not head:
                start = int(match[1])
                end = int(match[2]) if match[2] else len(body) - 1
                end = min(end, len(body) - 1)
                if start >= len(body):
                    self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"}, head=head)
                    return
                headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
                self._send(
                    206, body[start : end + 1], headers, head=head, kind="application/octet-stream"
                )
                return
            self._send(200, body, headers, head=head, kind="application/octet-stream")

        def _json(self, doc: Any, head: bool, headers: dict[str, str] | None = None) -> None:
            self._send(
                200, json.dumps(doc).encode(), headers or {}, head=head, kind="application/json"
            )

        def _send(
            self,
            status: int,
            body: bytes,
            headers: dict[str, str],
            *,
            head: bool,
            kind: str = "text/plain",
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                for chunk in _chunks(body):
                    self.wfile.write(chunk)

    return Handler


def _chunks(body: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(body), size):
        yield bytes(view[start : start + size])

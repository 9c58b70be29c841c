"""The command line's side of the service: submit a scan, wait for it, read its result.

`verifier scan --server URL` uses this so that a CI job asks the organisation's one service
instead of scanning on its own runner, and prints what the local command prints. Standard
library only (no HTTP client package): the command stays quick to start. The client:

- sends the token (`VERIFIER_TOKEN`) only to the URL it was given: redirects are refused,
  never followed, and plain `http://` is accepted for loopback addresses only;
- reads every answer with a size cap, and turns problem documents (RFC 9457) into verifier's
  own errors with the server's one-line detail (4xx: usage, exit 2; otherwise exit 3);
- waits with back-off up to a deadline; a job that fails, or an answer that is not the
  documented shape, is an error (exit 3), never an allow.
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from verifier.errors import ServiceError, UsageError, VerifierError

#: Largest answer read from the server (a scan document of a very large repository fits).
MAX_ANSWER_BYTES = 64 << 20
#: How long one HTTP request may take before the command gives up on it.
REQUEST_TIMEOUT = 30.0
#: Polling interval: starts small, doubles, and stays at most this.
_MAX_POLL = 5.0
_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True)
class JobOutcome:
    """A finished scan job: its id and the scan document (`verifier scan --format json`)."""

    job_id: str
    result: Mapping[str, Any]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the token goes to the configured server and nowhere else."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def check_server_url(url: str) -> str:
    """`url` without a trailing slash, if it is an acceptable service address.

    Raises:
        UsageError: Not http(s), has credentials, a query or a fragment, or is plain http to
            a host that is not a loopback address (the token would cross the network in clear).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--server {url}: give an http(s)://host[:port] address")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UsageError(f"--server {url}: no credentials, query or fragment in the address")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UsageError(
            f"--server {url}: plain http sends the token in clear; use https "
            "(http is accepted for loopback addresses only)"
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServiceClient:
    """Calls the service's API v1 with one bearer token."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not token:
            raise UsageError("--server needs a token: set VERIFIER_TOKEN (verifier token create)")
        self.url = check_server_url(url)
        self._token = token
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._sleep = sleep
        self._clock = clock

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked: http(s) only
            self.url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with self._opener.open(request, timeout=REQUEST_TIMEOUT) as answer:
                raw = answer.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise _problem(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceError(f"cannot reach the service at {self.url}: {reason}") from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise ServiceError(f"the service's answer is larger than {MAX_ANSWER_BYTES} bytes")
        try:
            return json.loads(raw)
        except ValueError:
            raise ServiceError("the service's answer is not JSON") from None

    def submit_scan(self, target: str, *, policy: str | None, environment: str | None) -> str:
        """Ask for a scan; the job id (an existing scan's job when it was already done)."""
        answer = self._call(
            "POST",
            "/api/v1/scans",
            {"target": target, "policy": policy, "environment": environment},
        )
        job_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(job_id, str) or not job_id.isalnum():
            raise ServiceError("the service's answer to a scan request has no job id")
        return job_id

    def decision(self, subject: str, *, environment: str | None) -> Mapping[str, Any]:
        """The gate's answer for a pinned subject (`GET /api/v1/decision`), checked for shape.

        Raises:
            ServiceError: The answer is not a decision document.
        """
        query = {"target": subject, **({"environment": environment} if environment else {})}
        answer = self._call("GET", "/api/v1/decision?" + urllib.parse.urlencode(query))
        if not isinstance(answer, dict) or answer.get("decision") not in (
            "allow",
            "deny",
            "unknown",
        ):
            raise ServiceError("the service's answer is not a decision document")
        if not isinstance(answer.get("reasons"), list):
            raise ServiceError("the service's decision has no reasons list")
        return answer

    def recorded_scan(self, subject: str) -> Mapping[str, Any]:
        """The newest recorded scan document of a pinned subject (`GET /api/v1/models/...`).

        Raises:
            UsageError: The service has no record of `subject` (404) or refuses the token.
            ServiceError: The answer is not a model record with a scan document.
        """
        model_id = urllib.parse.quote(subject.removeprefix("hf://"), safe="/@")
        answer = self._call("GET", f"/api/v1/models/{model_id}")
        scan = answer.get("scan") if isinstance(answer, dict) else None
        if not isinstance(scan, dict) or not isinstance(scan.get("files"), list):
            raise ServiceError("the service's model record has no scan document with files")
        return scan

    def wait(self, job_id: str, *, timeout: float) -> JobOutcome:
        """Poll the job until it is complete.

        Raises:
            ServiceError: The job failed, the deadline passed, or an answer is out of contract.
        """
        deadline = self._clock() + timeout
        pause = 0.2
        while True:
            job = self._call("GET", f"/api/v1/scans/{job_id}")
            if not isinstance(job, dict):
                raise ServiceError("the service's job document is not an object")
            status = job.get("status")
            if status == "complete":
                result = job.get("result")
                if not isinstance(result, dict) or "decision" not in result:
                    raise ServiceError(f"scan job {job_id} is complete but has no result")
                return JobOutcome(job_id, result)
            if status == "failed":
                raise ServiceError(f"scan job {job_id} failed: {job.get('error') or 'no reason'}")
            if status not in ("queued", "running"):
                raise ServiceError(f"scan job {job_id} has an unknown status {status!r}")
            if self._clock() + pause > deadline:
                raise ServiceError(
                    f"scan job {job_id} did not finish within {timeout:g} s "
                    f"(still {status}; ask again with GET /api/v1/scans/{job_id})"
                )
            self._sleep(pause)
            pause = min(pause * 2, _MAX_POLL)


def _problem(exc: urllib.error.HTTPError) -> VerifierError:
    """The server's problem document as one of verifier's errors."""
    detail = ""
    try:
        document = json.loads(exc.read(64 << 10))
        if isinstance(document, dict) and isinstance(document.get("detail"), str):
            detail = document["detail"]
    except (ValueError, OSError):
        pass
    if 300 <= exc.code < 400:
        return ServiceError(f"the service answered with a redirect ({exc.code}); not followed")
    message = f"service: {detail or exc.reason} (HTTP {exc.code})"
    if exc.code in (401, 403):
        return UsageError(f"{message}; check VERIFIER_TOKEN and its role")
    if 400 <= exc.code < 500 and exc.code not in (408, 429):
        return UsageError(message)
    return ServiceError(message)

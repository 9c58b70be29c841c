"""Kubernetes admission: read an AdmissionReview of a KServe InferenceService, answer per model.

Only the parsing and the answer's shape live here; `gate` decides each model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from verifier.errors import UsageError
from verifier.service.decisions import GateAnswer
from verifier.service.targets import check_target, from_kserve, pinned_subject, unpinned_message

API_VERSION = "admission.k8s.io/v1"
#: Storage URIs read from one object at most; more is not a real InferenceService.
MAX_URIS = 32
#: Nesting read at most while looking for `storageUri` fields.
MAX_DEPTH = 16
#: Longest message returned to the API server (it shows it to whoever applied the object).
MAX_MESSAGE = 2_000


@dataclass(frozen=True)
class AdmissionRequest:
    """What the service needs of an AdmissionReview request."""

    uid: str
    operation: str
    kind: str
    name: str
    namespace: str
    #: `(field path, URI)` of every `storageUri` (and `storageUris[].uri`) in the object's spec.
    storage_uris: tuple[tuple[str, str], ...]


def _walk(node: Any, path: str, depth: int) -> Iterator[tuple[str, str]]:
    if depth > MAX_DEPTH:
        raise UsageError(f"the object nests deeper than {MAX_DEPTH} levels at {path}")
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if key == "storageUri" and isinstance(value, str):
                yield here, value
            elif key == "storageUris" and isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict) and isinstance(item.get("uri"), str):
                        yield f"{here}[{i}].uri", item["uri"]
            else:
                yield from _walk(value, here, depth + 1)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]", depth + 1)


def parse_review(document: Any) -> AdmissionRequest:
    """The request of an `admission.k8s.io/v1` AdmissionReview.

    Raises:
        UsageError: The document is not an AdmissionReview with a request and its uid, or its
            object holds more storage URIs or nesting than any InferenceService.
    """
    if not isinstance(document, dict) or document.get("kind") != "AdmissionReview":
        raise UsageError("the body is not an AdmissionReview")
    if document.get("apiVersion") != API_VERSION:
        raise UsageError(f"the AdmissionReview is not {API_VERSION}")
    request = document.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str):
        raise UsageError("the AdmissionReview has no request with a uid")
    obj = request.get("object")
    spec = obj.get("spec") if isinstance(obj, dict) else None
    uris = tuple(_walk(spec, "spec", 0)) if spec is not None else ()
    if len(uris) > MAX_URIS:
        raise UsageError(f"the object has more than {MAX_URIS} storage URIs")
    kind = request.get("kind")
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return AdmissionRequest(
        uid=request["uid"],
        operation=str(request.get("operation", "")),
        kind=str(kind.get("kind", "")) if isinstance(kind, dict) else "",
        name=str(request.get("name") or (metadata or {}).get("name") or ""),
        namespace=str(request.get("namespace") or ""),
        storage_uris=uris,
    )


@dataclass(frozen=True)
class UriVerdict:
    """One storage URI's outcome."""

    field: str
    uri: str
    admits: bool
    message: str
    warning: str | None = None


def judge_uris(
    request: AdmissionRequest, decide_subject: Callable[[str], GateAnswer]
) -> list[UriVerdict]:
    """The outcome of each storage URI: non-Hub and unpinned URIs deny, the rest ask the gate."""
    outcomes = []
    for field, uri in request.storage_uris:
        if not uri.startswith("hf://"):
            outcomes.append(
                UriVerdict(
                    field,
                    uri,
                    False,
                    f"{field}: {uri} is not a Hub model (hf://); "
                    "verifier admits only models it has scanned",
                )
            )
            continue
        target = from_kserve(uri)
        try:
            check_target(target)
        except UsageError as exc:
            outcomes.append(UriVerdict(field, uri, False, f"{field}: {exc.diagnostics()}"))
            continue
        subject = pinned_subject(target)
        if subject is None:
            outcomes.append(UriVerdict(field, uri, False, f"{field}: {unpinned_message(uri)}"))
            continue
        answer = decide_subject(subject)
        warning = None
        if answer.admits and answer.decision.value != "allow":
            warning = f"{field}: {answer.summary()}"
        outcomes.append(
            UriVerdict(field, uri, answer.admits, f"{field}: {answer.summary()}", warning)
        )
    return outcomes


def unchecked_response(request: AdmissionRequest, reason: str) -> dict[str, Any]:
    """Allowed without judging anything (such as a deletion), with the reason as its message."""
    response = {"uid": request.uid, "allowed": True, "status": {"code": 200, "message": reason}}
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def review_response(request: AdmissionRequest, outcomes: list[UriVerdict]) -> dict[str, Any]:
    """The AdmissionReview answer: allowed only when every storage URI is admitted."""
    allowed = all(o.admits for o in outcomes)
    warnings = [o.warning for o in outcomes if o.warning]
    if not outcomes:
        message = "no storageUri to check: nothing for verifier to admit or deny"
        warnings.append(message)
    elif allowed:
        message = "; ".join(o.message for o in outcomes)
    else:
        message = "denied by verifier: " + "; ".join(o.message for o in outcomes if not o.admits)
    response: dict[str, Any] = {
        "uid": request.uid,
        "allowed": allowed,
        "status": {"code": 200 if allowed else 403, "message": message[:MAX_MESSAGE]},
    }
    if warnings:
        response["warnings"] = [w[:MAX_MESSAGE] for w in warnings]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}

"""Errors as RFC 9457 problem documents, with the command line's one-line messages."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from verifier.blobs.interface import BlobStoreError
from verifier.errors import (
    ConflictError,
    NotApprovableError,
    NotFoundError,
    PolicyError,
    SourceError,
    StoreError,
    UsageError,
    VerifierError,
)
from verifier.printable import printable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """An HTTP error the service answers with on purpose (401, 403, 404, 413, ...)."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


#: The problem document's schema, as the OpenAPI document names it.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document: the command line's one-line message.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "const": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
    },
}
#: Every route (but the anonymous `/healthz`) may answer these: an unreadable body, token,
#: role, body size, validation, database.
COMMON_PROBLEMS = (400, 401, 403, 413, 422, 503)


def document_problems(schema: dict[str, Any], extra: Mapping[str, tuple[int, ...]]) -> None:
    """Document in an OpenAPI document the problem documents each operation answers with:
    the common ones and those `extra` names per path (replacing FastAPI's own 422 schema,
    which describes a body the service never sends)."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        if path == "/healthz":
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in (*COMMON_PROBLEMS, *extra.get(path, ())):
                given = responses.get(str(status), {}).get("description")
                responses[str(status)] = {
                    "description": given or HTTPStatus(status).phrase,
                    "content": content,
                }


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem document: `type` about:blank, the status's `title`, and the one-line `detail`."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": printable(detail)[:2_000],
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def status_of(exc: VerifierError) -> int:
    """The HTTP status for one of verifier's own errors."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, (ConflictError, NotApprovableError)):
        return 409
    if isinstance(exc, PolicyError):
        return 422
    if isinstance(exc, UsageError):
        return 422
    if isinstance(exc, StoreError):
        return 503
    if isinstance(exc, (SourceError, BlobStoreError)):
        return 502
    return 500


def _validation_detail(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "the request is not valid"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    return f"{where}: {first.get('msg', 'is not valid')}"


def install(app: FastAPI) -> None:
    """Answer every error of `app` with a problem document, and never with a stack trace."""

    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem(exc.status, exc.detail, headers=exc.headers)

    async def on_verifier(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, VerifierError)
        return problem(status_of(exc), exc.diagnostics())

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem(422, _validation_detail(exc))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    async def on_bug(_: Request, exc: Exception) -> JSONResponse:
        # The boundary: the log keeps the traceback, the client gets one line.
        log.error("request failed", exc_info=exc)
        return problem(500, f"internal error, the request did not complete ({type(exc).__name__})")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(VerifierError, on_verifier)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_bug)

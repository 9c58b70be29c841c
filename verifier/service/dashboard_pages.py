"""Dashboard pages for what expires and what leaves: waivers expiring soon, evidence downloads.

Registered on the dashboard's router by `verifier.service.dashboard` with its `render` and
`guarded` (session, role and error handling), so they keep its CSP, CSRF and escaping.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from verifier.errors import UsageError
from verifier.evidence import load_facts, render_evidence
from verifier.formats import EvidenceFormat
from verifier.service import dashboard_views as views
from verifier.service.core import Service
from verifier.service.model import Role
from verifier.service.targets import MAX_TARGET_LENGTH, require_pinned

#: What each evidence format downloads as: (media type, file extension).
EVIDENCE_TYPES = {
    EvidenceFormat.CYCLONEDX: ("application/vnd.cyclonedx+json", "cdx.json"),
    EvidenceFormat.SPDX: ("application/ld+json", "spdx.jsonld"),
    EvidenceFormat.VSA: ("application/json", "vsa.json"),
    EvidenceFormat.DOSSIER_HTML: ("text/html; charset=utf-8", "dossier.html"),
    EvidenceFormat.DOSSIER_PDF: ("application/pdf", "dossier.pdf"),
    EvidenceFormat.MARKDOWN: ("text/markdown; charset=utf-8", "md"),
}
#: The most days ahead the waivers page looks.
MAX_WAIVER_DAYS = 3650
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

Render = Callable[..., Response]
Guarded = Callable[..., Response]


def evidence_file_name(subject: str, fmt: EvidenceFormat) -> str:
    """`ns_name-<commit 12>.<ext>`: only letters, digits, `.`, `_` and `-`."""
    repo_id, _, commit = subject.removeprefix("hf://").partition("@")
    stem = _UNSAFE_NAME.sub("_", repo_id.replace("/", "_"))
    return f"{stem}-{commit[:12]}.{EVIDENCE_TYPES[fmt][1]}"


def _format(text: str) -> EvidenceFormat:
    try:
        return EvidenceFormat(text)
    except ValueError:
        known = ", ".join(f.value for f in EvidenceFormat)
        raise UsageError(f"{text!r} is not an evidence format ({known})") from None


def page_routes(
    router: APIRouter,
    service: Service,
    *,
    render: Render,
    guarded: Guarded,
    secure: Callable[[Response], Response],
) -> None:
    """Add the waivers and evidence pages to the dashboard's `router`."""

    @router.get("/waivers")
    def waivers(
        request: Request,
        days: Annotated[int | None, Query(ge=0, le=MAX_WAIVER_DAYS)] = None,
    ) -> Response:
        def page(session: Any, token: Any) -> Response:
            window = service.config.notify_waiver_days if days is None else days
            rows = views.waiver_rows(
                service.policies.each(), today=datetime.now(UTC).date(), soon_days=window
            )
            return render(
                "waivers.html",
                200,
                session,
                token=token,
                rows=rows,
                days=window,
                soon=[row for row in rows if row.state == "soon"],
            )

        return guarded(Role.VIEWER, request, page)

    @router.get("/evidence")
    def evidence(
        request: Request,
        subject: Annotated[str, Query(max_length=MAX_TARGET_LENGTH)] = "",
        format: Annotated[str, Query(max_length=32)] = "",
    ) -> Response:
        def page(session: Any, token: Any) -> Response:
            pinned = require_pinned(subject)
            fmt = _format(format)
            policy = service.policies.for_environment(None)
            facts = load_facts(service.store, pinned, publishers=policy.publishers)
            data = render_evidence(facts, fmt)  # a missing extra is a UsageError: 422
            name = evidence_file_name(pinned, fmt)
            return secure(
                Response(
                    data,
                    media_type=EVIDENCE_TYPES[fmt][0],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'},
                )
            )

        return guarded(Role.VIEWER, request, page)

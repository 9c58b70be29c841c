"""The dashboard through TestClient: login, sessions, CSRF, roles, escaping, pages and CSV."""

from __future__ import annotations

import csv
import io
import re

import httpx
from fastapi.testclient import TestClient

from tests.hub_emulator import HubEmulator
from tests.service.conftest import Api, add_token
from tests.sources.test_huggingface import model_files
from verifier.service.dashboard_views import safe_cell
from verifier.service.model import Role

HOSTILE = "<script>alert(1)</script>"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def log_in(client: TestClient, secret: str) -> httpx.Response:
    form = client.get("/dashboard/login")
    assert form.status_code == 200
    return client.post(
        "/dashboard/login",
        data={"csrf": csrf_of(form), "token": secret},
        follow_redirects=False,
    )


def _family(api: Api, hub: HubEmulator) -> dict[str, str]:
    """acme/base and a child declaring it, with a hostile model card; scanned."""
    hub.add_repo(
        "acme/base", model_files(fill=1), tags=[HOSTILE], card_data={"license_name": HOSTILE}
    )
    child = model_files(fill=2)
    child["README.md"] = b"---\nbase_model: acme/base\n---\n# child\n"
    hub.add_repo("kid/child", child, card_data={"base_model": "acme/base"})
    subjects = {}
    for name in ("acme/base", "kid/child"):
        job = api.scan(f"hf://{name}")
        subjects[name] = f"hf://{name}@{job['result']['source']['commit']}"
    return subjects


def test_every_page_needs_a_session(api: Api) -> None:
    for path in ("/dashboard/inventory", "/dashboard/inventory.csv", "/dashboard/bans"):
        response = api.client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/dashboard/login"
    refused = api.client.post("/dashboard/bans", data={"kind": "publisher"}, follow_redirects=False)
    assert refused.status_code == 303
    # A bearer token is not a session: the dashboard reads only its cookie.
    bearer = api.call("GET", "/dashboard/inventory", follow_redirects=False)
    assert bearer.status_code == 303


def test_login_sets_a_safe_cookie_and_logout_ends_the_session(api: Api) -> None:
    wrong = log_in(api.client, "vrf_not-a-token")
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    made = log_in(api.client, api.tokens[Role.VIEWER])
    assert made.status_code == 303, made.text
    cookie = made.headers["set-cookie"]
    assert cookie.startswith("verifier_session=")
    for flag in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain http here: see the https test below
    assert api.tokens[Role.VIEWER] not in cookie
    page = api.client.get("/dashboard/inventory")
    assert page.status_code == 200
    assert "viewer-token (viewer)" in page.text
    stale = api.client.post("/dashboard/logout", data={"csrf": "x" * 43})
    assert stale.status_code == 403
    out = api.client.post("/dashboard/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert out.status_code == 303
    api.client.cookies.clear()
    api.client.cookies.set("verifier_session", cookie.split(";")[0].split("=", 1)[1])
    after = api.client.get("/dashboard/inventory", follow_redirects=False)
    assert after.status_code == 303  # the old session id no longer opens anything


def test_the_cookie_is_secure_over_https(api: Api) -> None:
    client = TestClient(api.client.app, base_url="https://testserver")
    made = log_in(client, api.tokens[Role.VIEWER])
    assert made.status_code == 303
    assert "secure" in made.headers["set-cookie"].lower()


def test_login_needs_its_csrf_cookie(api: Api) -> None:
    response = api.client.post(
        "/dashboard/login", data={"csrf": "a" * 43, "token": api.tokens[Role.ADMIN]}
    )
    assert response.status_code == 403
    assert "verifier_session" not in response.headers.get("set-cookie", "")


def test_a_revoked_token_ends_its_sessions(api: Api) -> None:
    secret = add_token(api.service, "short-lived", Role.VIEWER)
    assert log_in(api.client, secret).status_code == 303
    assert api.client.get("/dashboard/inventory").status_code == 200
    api.service.records.revoke_token("short-lived", actor="test")
    gone = api.client.get("/dashboard/inventory", follow_redirects=False)
    assert gone.status_code == 303


def test_pages_escape_hub_strings_and_carry_security_headers(api: Api, hub: HubEmulator) -> None:
    subjects = _family(api, hub)
    log_in(api.client, api.tokens[Role.VIEWER])
    inventory = api.client.get("/dashboard/inventory")
    assert inventory.status_code == 200
    for subject in subjects.values():
        assert subject.removeprefix("hf://") in inventory.text
    headers = inventory.headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert '<html lang="en">' in inventory.text
    page = api.client.get("/dashboard/model", params={"subject": subjects["acme/base"]})
    assert page.status_code == 200, page.text
    assert HOSTILE not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "kid/child" in page.text  # a descendant, in the graph and the list
    assert "<svg" in page.text
    child = api.client.get("/dashboard/model", params={"subject": subjects["kid/child"]})
    assert "acme/base" in child.text and "depth 1" in child.text
    missing = api.client.get("/dashboard/model", params={"subject": "hf://no/such@" + "0" * 40})
    assert missing.status_code == 404
    assert "default-src 'self'" in missing.headers["content-security-policy"]


def test_inventory_filter_and_csv(api: Api, hub: HubEmulator) -> None:
    subjects = _family(api, hub)
    log_in(api.client, api.tokens[Role.VIEWER])
    only = api.client.get("/dashboard/inventory", params={"q": "KID"})
    assert "kid/child" in only.text and "acme/base@" not in only.text
    exported = api.client.get("/dashboard/inventory.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["subject"] for row in rows} == set(subjects.values())
    assert {row["decision"] for row in rows} == {"allow"}


def test_csv_cells_cannot_be_formulas() -> None:
    for text in ("=HYPERLINK(1)", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text
    assert safe_cell("acme/base") == "acme/base"


def test_bans_need_an_approver_and_a_csrf_token(api: Api, hub: HubEmulator) -> None:
    subjects = _family(api, hub)
    log_in(api.client, api.tokens[Role.SCANNER])
    page = api.client.get("/dashboard/bans")
    assert "needs the approver role" in page.text
    body = {"csrf": csrf_of(page), "kind": "model", "value": "acme/base", "reason": "r"}
    assert api.client.post("/dashboard/bans", data=body).status_code == 403
    api.client.cookies.clear()
    log_in(api.client, api.tokens[Role.APPROVER])
    page = api.client.get("/dashboard/bans")
    forged = api.client.post("/dashboard/bans", data={**body, "csrf": "f" * 43})
    assert forged.status_code == 403
    as_json = api.client.post("/dashboard/bans", json={**body, "csrf": csrf_of(page)})
    assert as_json.status_code == 403
    assert api.call("GET", "/api/v1/bans", role=Role.VIEWER).json()["bans"] == []
    preview = api.client.get(
        "/dashboard/blast-radius", params={"kind": "model", "value": "acme/base"}
    )
    assert "2 models reached" in preview.text
    made = api.client.post(
        "/dashboard/bans", data={**body, "csrf": csrf_of(page), "reason": HOSTILE}
    )
    assert made.status_code == 201, made.text
    assert HOSTILE not in made.text and "&lt;script&gt;" in made.text
    assert "allow → deny" in made.text
    answer = api.call("GET", f"/api/v1/decision?target={subjects['kid/child']}", role=Role.VIEWER)
    assert answer.json()["decision"] == "deny"
    model = api.client.get("/dashboard/model", params={"subject": subjects["kid/child"]})
    assert "ban (ban 1)" in model.text
    bad = api.client.post(
        "/dashboard/bans", data={**body, "csrf": csrf_of(page), "value": "acme/base@main"}
    )
    assert bad.status_code == 422
    nonsense = api.client.get("/dashboard/blast-radius", params={"kind": "planet", "value": "x"})
    assert nonsense.status_code == 422


def test_an_approver_lifts_a_ban_and_the_audit_log_shows_both(api: Api, hub: HubEmulator) -> None:
    subjects = _family(api, hub)
    log_in(api.client, api.tokens[Role.APPROVER])
    page = api.client.get("/dashboard/bans")
    body = {"csrf": csrf_of(page), "kind": "publisher", "value": "acme", "reason": "r"}
    assert api.client.post("/dashboard/bans", data=body).status_code == 201
    forged = api.client.post("/dashboard/bans/1/lift", data={"csrf": "x" * 43, "reason": "ok"})
    assert forged.status_code == 403
    lifted = api.client.post(
        "/dashboard/bans/1/lift", data={"csrf": csrf_of(page), "reason": HOSTILE}
    )
    assert lifted.status_code == 200, lifted.text
    assert "Ban 1 lifted" in lifted.text and "deny → allow" in lifted.text
    assert HOSTILE not in lifted.text
    again = api.client.post("/dashboard/bans/1/lift", data={"csrf": csrf_of(page), "reason": "x"})
    assert again.status_code == 422
    unknown = api.client.post(
        "/dashboard/bans/99/lift", data={"csrf": csrf_of(page), "reason": "x"}
    )
    assert unknown.status_code == 404
    answer = api.call("GET", f"/api/v1/decision?target={subjects['acme/base']}", role=Role.VIEWER)
    assert answer.json()["decision"] == "allow"
    audit = api.client.get("/dashboard/audit")
    assert audit.status_code == 200
    assert "ban.added" in audit.text and "ban.lifted" in audit.text
    assert "dashboard:approver-token" in audit.text


def test_logging_in_again_ends_the_previous_session(api: Api) -> None:
    first = log_in(api.client, api.tokens[Role.VIEWER])
    old = first.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    second = log_in(api.client, api.tokens[Role.ADMIN])
    assert second.status_code == 303
    api.client.cookies.clear()
    api.client.cookies.set("verifier_session", old)
    assert api.client.get("/dashboard/audit", follow_redirects=False).status_code == 303

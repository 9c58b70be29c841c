"""The dashboard in a real browser: Playwright drives Debian's Chromium against uvicorn on loopback.

Logs in, reads the inventory, opens a model page with its lineage graph, checks a blast radius
and makes a ban. Screenshots go to the test's tmp folder; with VERIFIER_UPDATE_SCREENSHOTS=1
they are copied to docs/images/ too. Without Chromium the test skips, unless
VERIFIER_REQUIRE_BROWSER=1 (as .ci/run sets) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.hub_emulator import HubEmulator
from tests.service.conftest import start
from tests.sources.test_huggingface import model_files
from verifier.service.app import create_app
from verifier.service.core import Service
from verifier.service.model import Role

CHROMIUM = "/usr/bin/chromium"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        reason = "Chromium is not installed (apt-get install chromium); .ci/run installs it"
        if os.environ.get("VERIFIER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"VERIFIER_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(sqlite_url: str, hub: HubEmulator) -> Iterator[tuple[str, Service, dict[Role, str]]]:
    """The app on a uvicorn thread on a loopback port, with a three-generation family scanned."""
    service, tokens = start(sqlite_url)
    port = _free_port()
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(500):  # bounded: at most about 50 seconds of start-up
        if server.started:
            started.set()
            break
        threading.Event().wait(0.1)
    assert started.is_set(), "uvicorn did not start"
    try:
        hub.add_repo("acme/base", model_files(fill=1), tags=["<script>alert(1)</script>"])
        for name, parent, fill in (("kid/tuned", "acme/base", 2), ("q/tuned-gguf", "kid/tuned", 3)):
            files = model_files(fill=fill)
            files["README.md"] = f"---\nbase_model: {parent}\n---\n# {name}\n".encode()
            hub.add_repo(name, files, card_data={"base_model": parent})
        hub.add_repo("other/model", model_files(fill=4))
        for name in ("acme/base", "kid/tuned", "q/tuned-gguf", "other/model"):
            service.submit_scan(f"hf://{name}", policy=None, environment=None, actor="test")
        service.runner.drain()
        yield f"http://127.0.0.1:{port}", service, tokens
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_person_logs_in_reads_a_model_and_bans_it(
    served: tuple[str, Service, dict[Role, str]], tmp_path: Path
) -> None:
    executable = _chromium()
    from playwright.sync_api import expect, sync_playwright

    base, service, tokens = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, chromium_sandbox=False
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/dashboard/inventory")
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            page.get_by_label("API token").fill(tokens[Role.APPROVER])
            page.screenshot(path=shots / "login.png")
            page.get_by_role("button", name="Log in").click()

            expect(page.get_by_role("heading", name="Inventory")).to_be_visible()
            rows = page.locator("tbody tr")
            expect(rows).to_have_count(4)
            page.screenshot(path=shots / "inventory.png", full_page=True)

            page.get_by_role("link", name="kid/tuned@").click()
            expect(page.get_by_role("heading", name="Lineage")).to_be_visible()
            graph = page.get_by_role("img", name="Lineage of kid/tuned")
            expect(graph).to_be_visible()
            expect(page.locator("#ancestors + ul")).to_contain_text("acme/base")
            expect(page.locator("#descendants + ul")).to_contain_text("q/tuned-gguf")
            page.screenshot(path=shots / "model.png", full_page=True)
            expect(page.get_by_role("heading", name="Evidence")).to_be_visible()
            with page.expect_download() as download:
                page.get_by_role("link", name="CycloneDX ML-BOM (JSON)").click()
            assert download.value.suggested_filename.startswith("kid_tuned-")
            assert download.value.suggested_filename.endswith(".cdx.json")
            page.locator("#ancestors + ul").get_by_role("link").first.click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("acme/base@")
            # A tag from the Hub is shown as text, never run.
            expect(page.locator("dl.facts")).to_contain_text("<script>alert(1)</script>")

            page.get_by_role("link", name="Blast radius", exact=True).click()
            page.get_by_label("Kind").select_option("model")
            page.get_by_label("Value").fill("acme/base")
            page.get_by_role("button", name="Show").click()
            expect(page.get_by_role("heading", name="3 models reached")).to_be_visible()
            page.screenshot(path=shots / "blast-radius.png", full_page=True)

            page.get_by_role("link", name="Bans").click()
            page.get_by_label("Kind").select_option("model")
            page.get_by_label("Value").fill("acme/base")
            page.get_by_label("Reason").fill("front for a sanctioned entity")
            page.keyboard.press("Tab")
            page.keyboard.press("Enter")  # the Ban button, from the keyboard
            expect(page.get_by_role("status")).to_contain_text("Ban 1 made: model acme/base")
            expect(page.locator("main")).to_contain_text("allow → deny")
            page.screenshot(path=shots / "ban.png", full_page=True)

            page.get_by_role("link", name="Waivers", exact=True).click()
            expect(page.get_by_role("heading", name="Waivers")).to_be_visible()
            expect(page.locator("main")).to_contain_text("has no waivers")

            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            page.goto(f"{base}/dashboard/inventory")
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            assert errors == [], errors  # no CSP violation, no script error
        finally:
            browser.close()

    denied = {
        entry["subject"]: entry["decision"]
        for entry in service.inventory(limit=10, offset=0)["models"]
    }
    assert sorted(denied.values()) == ["allow", "deny", "deny", "deny"]
    for name in ("login.png", "inventory.png", "model.png", "blast-radius.png", "ban.png"):
        assert (shots / name).stat().st_size > 1000
    if os.environ.get("VERIFIER_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(exist_ok=True)
        for name in ("login.png", "inventory.png", "model.png", "blast-radius.png", "ban.png"):
            shutil.copyfile(shots / name, DOCS_IMAGES / f"dashboard-{name}")

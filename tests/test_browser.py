"""A real browser against `streamlit run`: Debian's Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "SPANQA_HOME": str(tmp_path_factory.mktemp("home"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


SHOTS = Path(os.environ.get("SPANQA_SCREENSHOTS", tempfile.gettempdir()))
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="Debian's chromium is not installed (make test installs it)")


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # A fresh profile each run (Playwright takes it as user_data_dir, not as a flag).
        context = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path=CHROMIUM, headless=True, viewport={"width": 1280, "height": 900},
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"])
        yield context
        context.close()


@needs_chromium
def test_question_answer_highlight_and_source_visible(server, browser):
    page = browser.new_page()
    page.goto(server)
    box = page.get_by_placeholder("Ask a question about your documents")
    box.wait_for(timeout=240_000)
    box.fill("How many tokens do neighbouring passages overlap by?")
    box.press("Enter")
    answer = page.locator("mark.spanqa-answer").first
    answer.wait_for(timeout=240_000)
    assert answer.inner_text().strip() == "32"  # retrieval.md: "an overlap of 32 tokens"
    assert page.get_by_text("Source:").first.is_visible()
    # A follow-up: answered in the light of the chat, with how it was understood under the answer.
    box.fill("and how long can they be?")
    box.press("Enter")
    understood = page.get_by_text("Understood as").first
    understood.wait_for(timeout=240_000)
    assert understood.is_visible()
    page.screenshot(path=str(SHOTS / "spanqa-browser.png"), full_page=True)


@needs_chromium
def test_an_uploaded_pdf_answer_opens_on_its_page_with_the_span_boxed_and_marked(server, browser, tmp_path):
    from bench.pdf_pages import typeset_pdf

    fact = "The spare impeller is stored in the blue cabinet beside the boiler room door."
    filler = [f"Chapter {n} lists the {n * 3} valves of circuit {n} and the order in which they are opened."
              for n in range(1, 40)]
    handbook = tmp_path / "handbook.pdf"
    handbook.write_bytes(typeset_pdf("Pump handbook", [*filler[:20], fact, *filler[20:]], columns=2))
    page = browser.new_page()
    page.goto(server)
    box = page.get_by_placeholder("Ask a question about your documents")
    box.wait_for(timeout=240_000)
    page.get_by_text("Documents", exact=True).click()
    page.locator("input[type=file]").set_input_files(str(handbook))
    page.get_by_role("button", name="Ingest").click()
    page.get_by_text("1 added").first.wait_for(timeout=240_000)
    box.fill("Where is the spare impeller stored?")
    box.press("Enter")
    page.locator("mark.spanqa-answer").first.wait_for(timeout=240_000)
    page.get_by_role("button", name=re.compile(r"Open handbook\.pdf, page \d")).first.click()
    view = page.frame_locator("iframe[title='st.iframe'], div[role=dialog] iframe").first
    image = view.locator("figure img")
    image.wait_for(timeout=60_000)
    assert image.evaluate("img => img.complete && img.naturalWidth") == 918, "the page image, decoded"
    marked = " ".join(view.locator("mark#answer").inner_text().split())
    assert "blue cabinet" in marked
    page.screenshot(path=str(SHOTS / "spanqa-browser-pdf.png"), full_page=True)

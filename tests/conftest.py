"""Shared fixtures. Real bundled models load once per session; tests that need none stay fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def embedder():
    from retriever import Embedder

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

"""One place for spanqa's configuration: where models and collections live, and the tunable defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from retriever.embedding import default_embedder_path

__all__ = ["PROJECT_ROOT", "default_reader_path", "default_embedder_path", "default_collection_path",
           "default_router_path", "cache_dir", "Settings"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_reader_path() -> Path:
    """The reader spanqa trains and ships (`models/reader`), unless SPANQA_READER names another."""
    return Path(os.environ.get("SPANQA_READER", PROJECT_ROOT / "models" / "reader"))


def cache_dir() -> Path:
    """Where spanqa keeps what it builds on first use (the default collection, the default router)."""
    return Path(os.environ.get("SPANQA_HOME", Path.home() / ".cache" / "spanqa"))


def default_collection_path() -> Path:
    return Path(os.environ.get("SPANQA_COLLECTION", cache_dir() / "collections" / "default"))


def default_router_path() -> Path:
    return Path(os.environ.get("SPANQA_ROUTER", cache_dir() / "router"))


@dataclass
class Settings:
    """Tunable behaviour shared by the CLI, the LangChain tools and the chat UI."""

    top_k: int = 5
    retrieval_mode: str = "hybrid"
    answer_threshold: float = 0.3
    reader_precision: str = "fp32"
    max_question_chars: int = 2000

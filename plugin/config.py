"""One place for spanqa's configuration: where models and collections live, and the tunable defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from retriever.chunking import DEFAULT_MAX_PASSAGES
from retriever.collection import CollectionLimits
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
    """Tunable behaviour shared by the CLI, the LangChain tools and the chat UI.

    `Settings.from_env()` reads overrides from SPANQA_<FIELD> environment variables (e.g. SPANQA_MAX_FILE_MB=200),
    which is how the chat UI and the tools pick up changed limits; CLI flags override both.
    """

    top_k: int = 5
    retrieval_mode: str = "hybrid"
    answer_threshold: float = 0.3
    reader_precision: str = "fp32"
    # Resource bounds: each refusal names the limit it hit.
    max_question_chars: int = 2000
    max_file_mb: float = 50.0
    max_passages_per_document: int = DEFAULT_MAX_PASSAGES
    max_results: int = 1000

    def __post_init__(self) -> None:
        from plugin.reader import PRECISIONS
        from retriever.collection import SEARCH_MODES

        if self.retrieval_mode not in SEARCH_MODES:
            raise ValueError(f"retrieval_mode must be one of {SEARCH_MODES}, got {self.retrieval_mode!r}")
        if self.reader_precision not in PRECISIONS:
            raise ValueError(f"reader_precision must be one of {PRECISIONS}, got {self.reader_precision!r}")
        if not 0.0 <= self.answer_threshold <= 1.0:
            raise ValueError(f"answer_threshold must be within [0, 1], got {self.answer_threshold}")
        for name in ("max_question_chars", "max_file_mb", "max_passages_per_document", "max_results"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 1 <= self.top_k <= self.max_results:
            raise ValueError(f"top_k must be between 1 and max_results ({self.max_results}), got {self.top_k}")

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Defaults, then SPANQA_<FIELD> environment variables, then `overrides`."""
        values = {}
        for f in fields(cls):
            raw = os.environ.get(f"SPANQA_{f.name.upper()}")
            if raw is not None:
                kind = type(getattr(cls, f.name))
                try:
                    values[f.name] = kind(raw)
                except ValueError as exc:
                    raise ValueError(f"SPANQA_{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
        return cls(**{**values, **overrides})

    def collection_limits(self) -> CollectionLimits:
        return CollectionLimits(max_file_bytes=int(self.max_file_mb * 2**20),
                                max_passages_per_document=self.max_passages_per_document,
                                max_results=self.max_results)

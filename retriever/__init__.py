"""spanqa's retriever (`spanqa.retriever`): files → Documents → Passages → vectors and BM25 → ranked Hits.

Names resolve lazily, so importing a record type does not load FAISS or sentence-transformers.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Chunker": "chunking", "ChunkingSettings": "chunking",
    "Collection": "protocol", "IngestReport": "protocol",
    "LocalCollection": "collection", "PostgresCollection": "postgres", "RetrieverCollection": "langchain_source",
    "Embedder": "embedding",
    "LoadError": "loaders", "load_bytes": "loaders", "load_paths": "loaders",
    "Document": "records", "DocumentInfo": "records", "Feedback": "records", "Hit": "records", "PageSpan": "records",
    "Passage": "records", "SkippedFile": "records",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

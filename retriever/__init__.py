"""spanqa's retriever: files → Documents → Passages → vectors and BM25 → ranked Hits."""

from retriever.chunking import Chunker, ChunkingSettings
from retriever.collection import SEARCH_MODES, Collection, CollectionLimits, IngestReport
from retriever.embedding import Embedder
from retriever.errors import CollectionCorruptError, CollectionError, EmbeddingMismatchError
from retriever.loaders import LoadError, load_bytes, load_paths
from retriever.records import Document, Hit, PageSpan, Passage, SkippedFile

__all__ = [
    "Chunker", "ChunkingSettings", "Collection", "CollectionLimits", "IngestReport", "SEARCH_MODES", "Embedder",
    "CollectionError", "CollectionCorruptError", "EmbeddingMismatchError", "LoadError", "load_bytes",
    "load_paths", "Document", "Hit", "PageSpan", "Passage", "SkippedFile",
]

"""Any LangChain retriever as a read-only collection: spanqa's routed, extractive, cited answers over a vector
store the user already runs (Elasticsearch, OpenSearch, Qdrant, Milvus, PGVector… via `store.as_retriever()`).

The store does the retrieving; spanqa reads what it returns. Its documents become passages: `page_content` is the
text, and the citation comes from the metadata LangChain's loaders write: `source` (or `file_path`, `url`,
`title`), the page (`page_number`, 1-based, or `page`, which LangChain's PDF loaders count from 0), and the
character offset `start_index` that text splitters add with `add_start_index=True`. spanqa's embedder scores
each passage's similarity to the question, so the ranker and the abstention rule see the same evidence as with
a spanqa collection.

The store is never written: ingest and delete through your own pipeline. Settings (the answer calibration) and
feedback given through spanqa stay in this process's memory.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from spanqa.retriever.base import check_search_arguments
from spanqa.retriever.embedding import Embedder
from spanqa.retriever.loaders import LoadReport
from spanqa.retriever.protocol import IngestReport, ProgressCallback
from spanqa.retriever.records import Document, DocumentInfo, Feedback, Hit, Passage
from spanqa.retriever.sync import SyncReport

from spanqa.errors import CollectionError
from spanqa.settings import CollectionLimits, SearchMode, Settings

__all__ = ["RetrieverCollection", "passage_from_langchain"]

_REMEMBERED_PASSAGES = 10_000  # passages kept for `existing` and citations; older ones are forgotten
_SOURCE_KEYS = ("source", "file_path", "url", "title")


def _stable_id(*parts: str) -> int:
    """A positive 63-bit id that is the same for the same passage in every process."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def passage_from_langchain(document) -> Passage:
    """A LangChain `Document` as a spanqa passage, its citation taken from the metadata loaders write."""
    metadata = document.metadata or {}
    source = next((str(metadata[k]) for k in _SOURCE_KEYS if metadata.get(k)), "document")
    if isinstance(metadata.get("page_number"), int):
        page = metadata["page_number"]
    elif isinstance(metadata.get("page"), int):
        page = metadata["page"] + 1
    else:
        page = 1
    start = metadata.get("start_index") if isinstance(metadata.get("start_index"), int) else 0
    text = document.page_content
    key = str(document.id or metadata.get("id") or "")
    document_id = str(metadata.get("document_id") or _stable_id(source))
    return Passage(document_id=document_id, source=source, text=text, start=start, end=start + len(text),
                   page=page, index=0, id=_stable_id(key or source, str(start), text),
                   title=str(metadata.get("title") or Path(source).name))


class RetrieverCollection:
    """A LangChain `BaseRetriever` behind spanqa's `Collection` protocol (reads only; see the module docstring).

    Usage:
        assistant = Assistant(retriever=vector_store.as_retriever(search_kwargs={"k": 5}))

    The retriever decides how many documents it returns (`search_kwargs={"k": ...}`); spanqa keeps the first k.
    `len()` counts the distinct passages retrieved so far (the store's own size is not asked).
    """

    def __init__(self, retriever, embedder: Embedder | None = None, limits: CollectionLimits | None = None) -> None:
        self.retriever = retriever
        self.embedder = embedder or Embedder()
        self.limits = limits or CollectionLimits()
        self._lock = threading.Lock()
        self._passages: OrderedDict[int, Passage] = OrderedDict()
        self._seen = 0
        self._settings: dict[str, dict] = {}
        self._feedback: list[Feedback] = []

    @property
    def location(self) -> str:
        return f"langchain:{type(self.retriever).__name__}"

    def _read_only(self, *args, **kwargs):
        raise CollectionError(f"{self.location} is a LangChain retriever: spanqa reads it but does not write to "
                              "it. Add and delete documents through your vector store.")

    def ingest(self, paths: Iterable[str | Path], include: list[str] | None = None,
               exclude: list[str] | None = None, progress: ProgressCallback | None = None) -> IngestReport:
        return self._read_only()

    def ingest_bytes(self, files: list[tuple[str, bytes]], progress: ProgressCallback | None = None) -> IngestReport:
        return self._read_only()

    def add_documents(self, loaded: LoadReport, progress: ProgressCallback | None = None) -> IngestReport:
        return self._read_only()

    def delete(self, document: str) -> bool:
        return self._read_only()

    def sync(self, roots: Iterable[str | Path], include: list[str] | None = None, exclude: list[str] | None = None,
             allow_empty_root: bool = False, progress: ProgressCallback | None = None, ray: str | None = None,
             settings: Settings | None = None) -> SyncReport:
        return self._read_only()

    def documents(self) -> list[DocumentInfo]:
        return []

    def document(self, document_id: str) -> Document | None:
        return None

    def original(self, document_id: str) -> bytes | None:
        return None

    def search(self, query: str, k: int = Settings.top_k, mode: SearchMode = Settings.retrieval_mode,
               weights: dict[str, float] | None = None, candidates: int | None = None) -> list[Hit]:
        """The retriever's first `k` documents for `query`, as hits scored by rank and by spanqa's embedder.
        `mode` and `weights` belong to spanqa's own search; the store searches its own way."""
        return self.search_many([query], k, mode, weights, candidates)[0]

    def search_many(self, queries: list[str], k: int = Settings.top_k, mode: SearchMode = Settings.retrieval_mode,
                    weights: dict[str, float] | None = None, candidates: int | None = None) -> list[list[Hit]]:
        """`search` for several queries: the retriever's own `batch`, then one embedding call for everything."""
        check_search_arguments(queries, k, mode, self.limits)
        try:
            found = self.retriever.batch(list(queries))
        except Exception as exc:  # the store's own failure (down, refused): one spanqa error for every door
            raise CollectionError(f"{self.location} failed to retrieve: {exc}") from exc
        passages = [[passage_from_langchain(d) for d in documents[:k]] for documents in found]
        self._remember([p for group in passages for p in group])
        texts = [t for q, group in zip(queries, passages, strict=True) for t in (q, *(p.text for p in group))]
        vectors = self.embedder.encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        results, offset = [], 0
        for group in passages:
            question, own = vectors[offset], vectors[offset + 1 : offset + 1 + len(group)]
            offset += 1 + len(group)
            results.append([Hit(p, 1.0 / (60 + rank), float(np.clip(v @ question, -1.0, 1.0)), None, rank, None)
                            for rank, (p, v) in enumerate(zip(group, own, strict=True), start=1)])
        return results

    def _remember(self, passages: list[Passage]) -> None:
        with self._lock:
            for passage in passages:
                if passage.id not in self._passages:
                    self._seen += 1
                self._passages[passage.id] = passage
                self._passages.move_to_end(passage.id)
            while len(self._passages) > _REMEMBERED_PASSAGES:
                self._passages.popitem(last=False)

    def existing(self, passage_ids: Iterable[int]) -> set[int]:
        with self._lock:
            return {i for i in passage_ids if i in self._passages}

    def add_feedback(self, feedback: Feedback) -> int:
        with self._lock:
            self._feedback.append(feedback)
            return len(self._feedback)

    def feedback(self) -> list[Feedback]:
        with self._lock:
            return list(self._feedback)

    def get_setting(self, key: str) -> dict | None:
        return self._settings.get(key)

    def put_setting(self, key: str, value: dict) -> None:
        self._settings[key] = dict(value)

    def integrity_problems(self) -> list[str]:
        return []

    def close(self) -> None:
        """Nothing to close: the retriever belongs to the caller."""

    def __len__(self) -> int:
        return self._seen

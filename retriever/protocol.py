"""The one interface every collection backend satisfies, and what its writes report.

The engine, the reader, the tools, the servers and the UI talk to a `Collection` and never ask which backend is
behind it: the embedded one (`LocalCollection`: SQLite + FAISS + BM25 in a directory), PostgreSQL + pgvector
(`PostgresCollection`, shared by many processes), or a LangChain retriever (`RetrieverCollection`, read-only).
`tests/test_collection_conformance.py` runs the same suite against each writable backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from spanqa.retriever.embedding import Embedder
from spanqa.retriever.loaders import LoadReport
from spanqa.retriever.records import Document, DocumentInfo, Feedback, Hit, SkippedFile

from spanqa.settings import CollectionLimits, SearchMode, Settings

if TYPE_CHECKING:  # the sync module reports through this one's types
    from spanqa.retriever.sync import SyncReport

__all__ = ["Collection", "IngestReport", "ProgressCallback"]

ProgressCallback = Callable[[str, int, int], None]  # (message, done, total)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    passages: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
                f"{len(self.skipped)} skipped; {self.passages} passages embedded in {self.seconds:.1f}s")


@runtime_checkable
class Collection(Protocol):
    """Documents in, cited passages out. Writes are one transaction per document; reads see every committed
    write, including those of other processes sharing the collection."""

    embedder: Embedder
    limits: CollectionLimits

    @property
    def location(self) -> str:
        """Where the collection lives, fit to show a user (a directory, or a URL without its password)."""

    def ingest(self, paths: Iterable[str | Path], include: list[str] | None = None,
               exclude: list[str] | None = None, progress: ProgressCallback | None = None,
               ray: str | None = None, settings: Settings | None = None) -> IngestReport: ...

    def ingest_bytes(self, files: list[tuple[str, bytes]],
                     progress: ProgressCallback | None = None) -> IngestReport: ...

    def add_documents(self, loaded: LoadReport, progress: ProgressCallback | None = None) -> IngestReport: ...

    def delete(self, document: str) -> bool: ...

    def sync(self, roots: Iterable[str | Path], include: list[str] | None = None, exclude: list[str] | None = None,
             allow_empty_root: bool = False, progress: ProgressCallback | None = None, ray: str | None = None,
             settings: Settings | None = None) -> SyncReport: ...

    def documents(self) -> list[DocumentInfo]: ...

    def document(self, document_id: str) -> Document | None: ...

    def original(self, document_id: str) -> bytes | None: ...

    def search(self, query: str, k: int = ..., mode: SearchMode = ..., weights: dict[str, float] | None = None,
               candidates: int | None = None) -> list[Hit]: ...

    def search_many(self, queries: list[str], k: int = ..., mode: SearchMode = ...,
                    weights: dict[str, float] | None = None, candidates: int | None = None) -> list[list[Hit]]: ...

    def existing(self, passage_ids: Iterable[int]) -> set[int]: ...

    def add_feedback(self, feedback: Feedback) -> int: ...

    def feedback(self) -> list[Feedback]: ...

    def get_setting(self, key: str) -> dict | None: ...

    def put_setting(self, key: str, value: dict) -> None: ...

    def integrity_problems(self) -> list[str]: ...

    def close(self) -> None: ...

    def __len__(self) -> int: ...

"""The typed records that cross the retriever's boundary: Document → Passage → Hit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["Document", "DocumentInfo", "PageSpan", "Passage", "Hit", "Feedback", "SkippedFile", "content_hash",
           "document_id_for"]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def document_id_for(source: str) -> str:
    """A document's id follows its source, so re-ingesting a changed file replaces the old version."""
    return hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class PageSpan:
    """Page `number` (1-based) covers document characters [start, end)."""

    number: int
    start: int
    end: int


@dataclass
class Document:
    """The visible text of one file, with the character ranges of its pages (PDF) or one page (others), and the
    file's bytes as read (`original`: what a PDF page is rendered from; None once stored, or where not kept)."""

    source: str
    text: str
    pages: list[PageSpan] = field(default_factory=list)
    title: str = ""
    id: str = ""
    hash: str = ""
    original: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = document_id_for(self.source)
        if not self.hash:
            self.hash = content_hash(self.text)
        if not self.pages:
            self.pages = [PageSpan(1, 0, len(self.text))]
        if not self.title:
            self.title = self.source.rsplit("/", 1)[-1]

    def page_at(self, offset: int) -> int:
        """The page holding character `offset`."""
        for page in self.pages:
            if page.start <= offset < page.end:
                return page.number
        return self.pages[-1].number

    def __repr__(self) -> str:
        return f"Document(source={self.source!r}, chars={len(self.text)}, pages={len(self.pages)})"


@dataclass
class Passage:
    """A chunk of a document. `text == document.text[start:end]` always holds.

    `id` is the collection's stable integer id (also the FAISS id); it is -1 until the passage is stored.
    """

    document_id: str
    source: str
    text: str
    start: int
    end: int
    page: int = 1
    index: int = 0
    id: int = -1
    title: str = ""

    def __repr__(self) -> str:
        preview = self.text[:60].replace("\n", " ")
        return f"Passage(id={self.id}, source={self.source!r}, page={self.page}, text={preview!r}…)"


@dataclass
class Hit:
    """A ranked passage. Scores are None for a retriever that did not find the passage."""

    passage: Passage
    score: float
    dense_score: float | None = None
    bm25_score: float | None = None
    dense_rank: int | None = None
    bm25_rank: int | None = None


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not ingested, and why, in words a user can act on."""

    source: str
    reason: str


@dataclass
class DocumentInfo:
    id: str
    source: str
    title: str
    hash: str
    passages: int
    characters: int
    added: float


@dataclass
class Feedback:
    question: str
    answer: str
    source: str
    rating: int  # 1 = helpful, 0 = not helpful
    passage_id: int | None = None
    score: float | None = None
    # What was rated: an answer (documents, fallback), an abstention (abstained) or a reply (help, reply)
    route: str = "documents"

"""An answer checked at its source: the cited characters of a document, with what surrounds them.

Every answer and passage spanqa gives is a span of a document's text as ingested (`start`…`end`, character
offsets). `span_view` cuts that text around the span for a person to read it in place: the whole document for the
HTML view (`GET /v1/documents/{id}/view`, scrolled to the span), or `context` characters either side for a
terminal (`spanqa show`). `source_links` are the links every answer and passage carries in the response JSON:
the view, and for a PDF the page image (plugin/engine/page_image.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spanqa.plugin.engine.page_image import page_image_path
from spanqa.retriever.records import Document

from spanqa.errors import InputError

__all__ = ["SpanView", "source_links", "span_view", "view_path"]


@dataclass(frozen=True)
class SpanView:
    """A document's text around one span: `before` + `span` + `after` is the document's text from `shown_start`
    (the whole document when no context was asked for), and `page` the page the span starts on."""

    document_id: str
    title: str
    source: str
    page: int
    pages: int
    start: int
    end: int
    shown_start: int
    before: str
    span: str
    after: str

    def to_json(self) -> dict:
        return {"document_id": self.document_id, "title": self.title, "source": self.source, "page": self.page,
                "pages": self.pages, "start": self.start, "end": self.end, "shown_start": self.shown_start,
                "before": self.before, "span": self.span, "after": self.after,
                **source_links(self.document_id, self.source, self.page, self.start, self.end)}


def span_view(document: Document, start: int, end: int, context: int | None = None) -> SpanView:
    """`document`'s text around `start`…`end` (a refusal names offsets outside it); `context` characters either
    side (snapped to whole words), else the whole document."""
    size = len(document.text)
    if not 0 <= start <= end <= size:
        raise InputError(f"The span {start}:{end} is not within document {document.id} ({size:,} characters): "
                         "start and end must satisfy 0 <= start <= end <= its length")
    left, right = (0, size) if context is None else _around(document.text, start, end, context)
    page = next((p.number for p in document.pages if p.start <= start <= p.end), 1)
    text = document.text
    return SpanView(document.id, document.title, document.source, page, max(1, len(document.pages)), start, end,
                    left, text[left:start], text[start:end], text[end:right])


def _around(text: str, start: int, end: int, context: int) -> tuple[int, int]:
    left, right = max(0, start - context), min(len(text), end + context)
    if left > 0:
        space = text.find(" ", left, start)
        left = space + 1 if space != -1 else left
    if right < len(text):
        space = text.rfind(" ", end, right)
        right = space if space != -1 else right
    return left, right


def view_path(document_id: str, start: int, end: int) -> str:
    """The view of a span, relative to a server's root (the fragment scrolls the page to it)."""
    return f"/v1/documents/{document_id}/view?start={start}&end={end}#answer"


def source_links(document_id: str, source: str, page: int, start: int, end: int) -> dict[str, str | None]:
    """Where a span can be checked: its document's text with the span marked (`view`), and for a PDF the page
    rendered with the span boxed (`page_image`; None for other files)."""
    is_pdf = Path(source).suffix.lower() == ".pdf"
    return {"view": view_path(document_id, start, end),
            "page_image": page_image_path(document_id, page, start, end) if is_pdf else None}

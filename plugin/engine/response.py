"""The one JSON shape of what spanqa says, versioned, used by every door (`ask --json`, `search --json`,
`docs list --json`, the LangChain tools, the chat UI, the servers). docs/response.md documents it.

A change that removes or renames a key raises SCHEMA_VERSION; adding a key does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spanqa.plugin.engine.closest import Closest
from spanqa.plugin.engine.conversation import Resolution, standalone
from spanqa.plugin.engine.reader import Answer
from spanqa.plugin.engine.router import Intent
from spanqa.plugin.engine.source_view import source_links
from spanqa.retriever.records import Hit

__all__ = ["SCHEMA_VERSION", "Response", "citation", "response_json", "answer_json", "closest_json", "hit_json",
           "hits_json", "documents_json", "intent_json"]

SCHEMA_VERSION = 1


@dataclass
class Response:
    """What the assistant says, and everything it used to say it."""

    message: str
    intent: Intent
    route: str
    reply: str
    answers: list[Answer] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)
    abstained: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    reader: str = ""  # which reader read the passages: "general" or "technical" ("" when none was read)
    resolved: Resolution | None = None  # how the message was understood (None: alone, as written)
    closest: Closest | None = None  # when the answer was withheld: the passage most likely to hold it, quoted

    @property
    def resolution(self) -> Resolution:
        return self.resolved or standalone(self.message)

    @property
    def best(self) -> Answer | None:
        return None if self.abstained or not self.answers else self.answers[0]

    def to_json(self) -> dict[str, Any]:
        return response_json(self)


def citation(source: str, page: int) -> str:
    """How a place in a document is named to a person: "file name, page N"."""
    return f"{Path(source).name or source}, page {page}"


def intent_json(intent: Intent) -> dict[str, Any]:
    return {"label": intent.label, "confidence": round(intent.confidence, 4), "out_of_scope": intent.out_of_scope,
            "alternatives": [{"label": label, "confidence": round(c, 4)} for label, c in intent.alternatives]}


def answer_json(answer: Answer) -> dict[str, Any]:
    return {"text": answer.text, "score": round(answer.score, 4), "source": answer.source,
            "document_id": answer.document_id, "page": answer.page, "start": answer.document_start,
            "end": answer.document_end, "passage_id": answer.passage_id,
            "citation": citation(answer.source, answer.page),
            **source_links(answer.document_id, answer.source, answer.page, answer.document_start,
                           answer.document_end)}


def hit_json(hit: Hit) -> dict[str, Any]:
    p = hit.passage
    return {"text": p.text, "source": p.source, "document_id": p.document_id, "page": p.page, "start": p.start,
            "end": p.end, "passage_id": p.id, "score": round(hit.score, 6), "dense_score": hit.dense_score,
            "bm25_score": hit.bm25_score, "citation": citation(p.source, p.page),
            **source_links(p.document_id, p.source, p.page, p.start, p.end)}


def response_json(response: Response) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "message": response.message, "intent": intent_json(response.intent),
            "route": response.route, "reply": response.reply, "abstained": response.abstained,
            "answers": [answer_json(a) for a in response.answers],
            "passages": [hit_json(h) for h in response.passages],
            "reader": response.reader, "resolved": response.resolution.to_json(),
            "timings": {k: round(v, 3) for k, v in response.timings.items()},
            "closest": None if response.closest is None else closest_json(response.closest)}


def closest_json(closest: Closest) -> dict[str, Any]:
    """The quote a withheld answer shows: its text (and the same with the candidate in **bold**), where it is in
    its document, and the best candidate inside it (null when the reader proposed none)."""
    p = closest.passage
    return {"text": closest.text, "marked": closest.marked, "source": p.source, "document_id": p.document_id,
            "page": p.page, "start": closest.start, "end": closest.end, "passage_id": p.id,
            "citation": citation(p.source, p.page),
            **source_links(p.document_id, p.source, p.page, closest.start, closest.end),
            "candidate": None if closest.candidate is None else answer_json(closest.candidate)}


def hits_json(query: str, hits: list[Hit]) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "query": query, "passages": [hit_json(h) for h in hits]}


def documents_json(documents) -> dict[str, Any]:
    """`documents`: the collection's DocumentInfo records."""
    return {"schema": SCHEMA_VERSION, "documents": [
        {"document_id": d.id, "source": d.source, "title": d.title, "passages": d.passages,
         "characters": d.characters, "added": datetime.fromtimestamp(d.added, UTC).isoformat(timespec="seconds")}
        for d in documents]}

"""Ablation: retrieval recall@5 on the technical set, BM25 and hybrid, with and without code-identifier terms.

    python -m bench.techdocs.recall

A hit counts when one of the top 5 passages overlaps the gold answer span in its document.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import spanqa.retriever.indexes as indexes
from spanqa.retriever.collection import LocalCollection
from spanqa.retriever.loaders import LoadReport
from spanqa.retriever.records import Document

from bench.techdocs.build import build


def documents_and_questions() -> tuple[list[Document], list[tuple[str, str, int, int]]]:
    documents, questions = [], []
    for article in build()["data"]:
        paragraph = article["paragraphs"][0]
        source = f"{article['title']}.txt"
        documents.append(Document(source=source, text=paragraph["context"], title=article["title"]))
        for qa in paragraph["qas"]:
            for answer in qa["answers"][:1]:
                start = answer["answer_start"]
                questions.append((qa["question"], source, start, start + len(answer["text"])))
    return documents, questions


def recall_at_5(collection: LocalCollection, questions, mode: str) -> float:
    found = 0
    for question, source, start, end in questions:
        hits = collection.search(question, k=5, mode=mode)
        found += any(h.passage.source == source and h.passage.start < end and start < h.passage.end for h in hits)
    return found / len(questions)


def main() -> None:
    documents, questions = documents_and_questions()
    with_identifiers = indexes.identifier_terms
    for label, terms in (("words only", lambda text: []), ("with identifier terms", with_identifiers)):
        indexes.identifier_terms = terms
        collection = LocalCollection(Path(tempfile.mkdtemp()) / "collection")
        collection.add_documents(LoadReport(documents=documents))
        for mode in ("bm25", "hybrid"):
            print(f"{label:24s} {mode:6s} recall@5 {recall_at_5(collection, questions, mode):.3f} "
                  f"({len(questions)} answerable questions)", flush=True)
    indexes.identifier_terms = with_identifiers


if __name__ == "__main__":
    main()

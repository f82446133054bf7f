"""Ablations of retrieval recall@5 (BM25, dense, hybrid): code-identifier terms in BM25, the document title
embedded with each passage, and code blocks kept whole with the sentence that introduces them.

    python -m bench.techdocs.recall [--data FILE.json ...] [--limit N]

Default data: the technical development set. Each SQuAD context is one document titled with its article title,
as the benchmark builds them. A hit counts when one of the top 5 passages overlaps the gold answer span.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import spanqa.retriever.base as base
import spanqa.retriever.chunking as chunking
import spanqa.retriever.indexes as indexes
from spanqa.plugin.engine.squad import load_squad
from spanqa.retriever.collection import LocalCollection
from spanqa.retriever.loaders import LoadReport
from spanqa.retriever.records import Document

ABLATIONS = {  # name → (identifier terms in BM25, title embedded, code blocks whole)
    "before all three": (False, False, False),
    "identifier terms": (True, False, False),
    "identifier terms + embedded title": (True, True, False),
    "+ code blocks whole (spanqa)": (True, True, True),
}


def documents_and_questions(path: Path, limit: int | None) -> tuple[list[Document], list[tuple[str, str, int, int]]]:
    examples = [e for e in load_squad(path) if not e.is_impossible][:limit]
    documents: dict[str, Document] = {}
    questions = []
    for e in examples:
        source = f"{e.title} #{e.context_id}"
        documents.setdefault(e.context_id, Document(source=source, text=e.context, title=e.title))
        questions.append((e.question, source, e.answers[0].start, e.answers[0].end))
    return list(documents.values()), questions


def recall_at_5(collection: LocalCollection, questions, mode: str) -> float:
    found = 0
    for question, source, start, end in questions:
        hits = collection.search(question, k=5, mode=mode)
        found += any(h.passage.source == source and h.passage.start < end and start < h.passage.end for h in hits)
    return found / len(questions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", default=[Path("bench/out/techdocs.json")])
    parser.add_argument("--limit", type=int, help="first N answerable questions (and their contexts) per file")
    args = parser.parse_args()
    identifier_terms, embedding_text, code_blocks = indexes.identifier_terms, base.embedding_text, chunking.code_blocks
    for path in args.data:
        documents, questions = documents_and_questions(path, args.limit)
        for label, (identifiers, titled, whole_code) in ABLATIONS.items():
            indexes.identifier_terms = identifier_terms if identifiers else (lambda text: [])
            base.embedding_text = lambda passage, _, titled=titled: embedding_text(passage, titled)
            chunking.code_blocks = code_blocks if whole_code else (lambda text, start=0, end=None: [])
            collection = LocalCollection(Path(tempfile.mkdtemp()) / "collection")
            collection.add_documents(LoadReport(documents=documents))
            recalls = {mode: recall_at_5(collection, questions, mode) for mode in ("bm25", "dense", "hybrid")}
            collection.close()
            print(f"{path.name}: {label:44s} " + "  ".join(f"{m} {r:.3f}" for m, r in recalls.items())
                  + f"  ({len(questions)} answerable questions)", flush=True)
    indexes.identifier_terms, base.embedding_text, chunking.code_blocks = identifier_terms, embedding_text, code_blocks


if __name__ == "__main__":
    main()

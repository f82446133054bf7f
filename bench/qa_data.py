"""The benchmark's inputs, built once and handed to every system: a SQuAD-format file becomes one collection's
documents (one per context), the passages every system indexes, and the questions with their gold passages.

Unanswerable questions: SQuAD v2 `is_impossible` questions count as such, and so do the questions of the
contexts held out of the collection (`holdout`), so that any SQuAD v1 file can measure abstention: those
questions are real, well-formed questions that the collection cannot answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from spanqa.plugin.engine.squad import load_squad
from spanqa.retriever import Document
from spanqa.retriever.chunking import Chunker, ChunkingSettings
from spanqa.retriever.records import Passage

__all__ = ["BenchQuestion", "BenchSet", "build_bench_set"]


@dataclass(frozen=True)
class BenchQuestion:
    id: str
    text: str
    document_id: str
    answers: tuple[str, ...]  # empty: unanswerable
    answer_ranges: tuple[tuple[int, int], ...]  # character ranges of the answers in their document
    gold_passage: int | None  # index into BenchSet.passages; None if unanswerable or no passage holds an answer

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass
class BenchSet:
    name: str
    documents: list[Document]  # in the collection
    passages: list[Passage]  # of those documents, `id` = index in this list
    questions: list[BenchQuestion]
    held_out_documents: int = 0
    notes: list[str] = field(default_factory=list)

    def is_hit(self, question: BenchQuestion, document_id: str, start: int, end: int) -> bool:
        """A retrieved passage is a hit when it is in the question's document and holds a whole answer."""
        return document_id == question.document_id and any(start <= s and e <= end for s, e in question.answer_ranges)

    def describe(self) -> dict:
        answerable = sum(q.answerable for q in self.questions)
        return {"data": self.name, "documents": len(self.documents), "passages": len(self.passages),
                "questions": len(self.questions), "answerable": answerable,
                "unanswerable": len(self.questions) - answerable, "held_out_documents": self.held_out_documents,
                "with_gold_passage": sum(q.gold_passage is not None for q in self.questions), "notes": self.notes}


def build_bench_set(path: Path, tokenizer, limit: int | None = None, skip: int = 0, contexts: int | None = None,
                    holdout: float = 0.15, seed: int = 0, chunking: ChunkingSettings | None = None) -> BenchSet:
    """Read `path` and build the benchmark inputs.

    Args:
        tokenizer: the embedding model's tokenizer (spanqa's chunker measures passages in its tokens).
        limit: sample this many questions at random (seeded); None keeps all.
        skip: leave out the file's first `skip` questions (e.g. the ones that chose the reader checkpoint);
            their contexts stay in the collection.
        contexts: keep only the first `contexts` contexts (a small slice for --quick).
        holdout: fraction of contexts left out of the collection; their questions become unanswerable.
    """
    examples = load_squad(path)
    if not examples:
        raise ValueError(f"{path} holds no questions")
    order = list(dict.fromkeys(e.context_id for e in examples))
    if contexts is not None:
        kept = set(order[:contexts])
        order = order[:contexts]
        examples = [e for e in examples if e.context_id in kept]
    rng = random.Random(seed)
    held_out = set(rng.sample(order, round(holdout * len(order)))) if holdout > 0 else set()
    documents: dict[str, Document] = {}
    for e in examples:
        if e.context_id not in held_out and e.context_id not in documents:
            documents[e.context_id] = Document(source=f"{e.title or 'context'} #{e.context_id}", text=e.context,
                                               title=e.title or "")
    chunker = Chunker(tokenizer, chunking or ChunkingSettings())
    passages: list[Passage] = []
    for document in documents.values():
        for p in chunker.split(document):
            passages.append(replace(p, id=len(passages)))
    by_document: dict[str, list[Passage]] = {}
    for p in passages:
        by_document.setdefault(p.document_id, []).append(p)

    candidates = examples[skip:]
    if limit is not None and limit < len(candidates):
        candidates = rng.sample(candidates, limit)
    questions = []
    for e in candidates:
        in_collection = e.context_id in documents
        document_id = documents[e.context_id].id if in_collection else f"held-out {e.context_id}"
        answers = tuple(a.text for a in e.answers) if in_collection else ()
        ranges = tuple((a.start, a.end) for a in e.answers) if in_collection else ()
        gold = next((p.id for p in by_document.get(document_id, [])
                     if any(p.start <= s and t <= p.end for s, t in ranges)), None)
        questions.append(BenchQuestion(e.id, e.question, document_id, answers, ranges, gold))
    bench = BenchSet(path.name, list(documents.values()), passages, questions, len(held_out))
    crossing = sum(q.answerable and q.gold_passage is None for q in questions)
    if crossing:
        bench.notes.append(f"{crossing} answerable questions have no passage holding a whole answer (it crosses a "
                           "passage boundary): no retrieval system can hit them and they get no gold-passage read")
    return bench

"""The three systems the side-by-side benchmark compares, behind one small interface.

- `SpanqaSystem`: the product — a spanqa Collection (SQLite + FAISS + BM25, fused), the Assistant's answer path
  (reader score × passage relevance, one abstention threshold) and the intent router in front of it.
- `HaystackSystem`: Haystack 2.x with the same embedding model and reader weights — InMemoryDocumentStore,
  SentenceTransformers embedders, InMemoryEmbeddingRetriever + InMemoryBM25Retriever joined by reciprocal rank
  fusion, ExtractiveReader (abstains when its "no answer" ranks first). The components are called in the order
  a Pipeline would call them, so that each stage can be timed; Haystack's own defaults are kept otherwise.
- `BaselineSystem`: what a user writes in ten lines — sentence-transformers vectors in a FAISS flat index, top-5,
  spanqa's Reader, no routing, no fusion, the reader's own threshold.

Every system indexes the same passages (spanqa's chunker, built once by `bench.qa_data`); spanqa ingests the
documents through its own pipeline, which yields the same passages.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from spanqa.retriever.records import Passage

from bench.qa_data import BenchSet

__all__ = ["Prediction", "SYSTEMS", "TokenCounter", "make_system"]

Location = tuple[str, int, int]  # (document id, start, end) of a retrieved passage


@dataclass
class Prediction:
    """A system's answer to one question. `text` is the top span even when the system abstains."""

    text: str | None
    score: float | None
    abstained: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    candidates: list[str] = field(default_factory=list)  # every answer the system returns, best first
    passages_read: int | None = None  # of the retrieved ones, when the system reads adaptively
    technical_reader: bool | None = None  # whether spanqa's technical reader read them (None: one reader only)
    location: Location | None = None  # the top answer's (document id, start, end), where the system says
    passage: tuple[int, int] | None = None  # the (start, end) in its document of the passage it was quoted from


class TokenCounter:
    """Counts what a QA model really computes: a forward pre-hook records each batch's shape (padding included)."""

    def __init__(self, model=None) -> None:
        self.shapes: list[tuple[int, int]] = []
        if model is not None:
            model.register_forward_pre_hook(self._record, with_kwargs=True)

    def watch(self, reader) -> None:
        """Count a spanqa Reader's model too, from whenever it loads (the technical reader loads on the first
        question that needs it)."""
        load = reader.warm_up

        def warm_up() -> None:
            hook = reader.model is None
            load()
            if hook:
                reader.model.register_forward_pre_hook(self._record, with_kwargs=True)

        reader.warm_up = warm_up

    def _record(self, _module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.shapes.append((int(ids.shape[0]), int(ids.shape[1])))

    def take(self) -> list[tuple[int, int]]:
        shapes, self.shapes = self.shapes, []
        return shapes


def _best_span(reader, question: str, passage: Passage) -> str:
    """spanqa's Reader on one gold passage: its best span, never abstaining."""
    best = reader.read(question, [passage], top_k=1).best
    return best.text if best else ""


class SpanqaSystem:
    name = "spanqa"
    retrieval_modes = ("dense", "bm25", "hybrid")

    rank = True
    precision: str | None = None  # reader and embedder; None: the product's default
    read_first: int | None = None  # adaptive reading; None: the product's default

    def __init__(self, reader_path: str, top_k: int) -> None:
        from spanqa.plugin.engine.assistant import Assistant
        from spanqa.plugin.engine.reader import Reader
        from spanqa.retriever import Embedder, LocalCollection

        from spanqa.settings import Settings

        self.top_k = top_k
        self._tmp = tempfile.TemporaryDirectory(prefix="spanqa-bench-")
        settings = Settings.from_env(reader_precision=self.precision, embedder_precision=self.precision,
                                     read_first=self.read_first)
        self.reader = Reader(reader_path, precision=settings.reader_precision)
        self.reader.warm_up()
        # The technical reader shipped beside the general one (models/reader-technical), where there is one; as
        # in the product, it is loaded on the first question that needs it.
        technical = Path(reader_path).parent / "reader-technical"
        self.technical_reader = Reader(technical, precision=settings.reader_precision) if technical.is_dir() else None
        collection = LocalCollection(Path(self._tmp.name) / "collection",
                                     embedder=Embedder(precision=settings.embedder_precision))
        self.assistant = Assistant(collection, reader=self.reader, rank=self.rank, settings=settings,
                                   ranker=self.ranker(reader_path), technical_reader=self.technical_reader)
        self.assistant.router.classify("warm up")  # loads (or trains, once per machine) the default router
        self.tokens = TokenCounter(self.reader.model)
        if self.technical_reader is not None:
            self.tokens.watch(self.technical_reader)

    def ranker(self, reader_path: str):
        """The answer ranker to use; None: the shipped one."""
        return None

    def index(self, bench: BenchSet) -> int:
        from spanqa.retriever.loaders import LoadReport

        report = self.assistant.collection.add_documents(LoadReport(documents=list(bench.documents)))
        return report.passages

    def retrieve(self, question: str, k: int, mode: str) -> list[Location]:
        hits = self.assistant.collection.search(question, k=k, mode=mode)
        return [(h.passage.document_id, h.passage.start, h.passage.end) for h in hits]

    def read(self, question: str, passage: Passage) -> str:
        from spanqa.retriever import Hit

        return _best_span(self.assistant.reader_for([Hit(passage, 1.0)]), question, passage)

    def answer(self, question: str) -> Prediction:
        started = time.perf_counter()
        intent = self.assistant.router.classify(question)
        routed = time.perf_counter()
        response = self.assistant.answer(question, top_k=self.top_k, intent=intent)
        ended = time.perf_counter()
        answer = response.answers[0] if response.answers else None
        passage = next((h.passage for h in response.passages if answer and h.passage.id == answer.passage_id), None)
        return Prediction(answer.text if answer else None, answer.score if answer else None, response.abstained,
                          {"route": (routed - started) * 1000, "retrieve": response.timings["retrieve_ms"],
                           "read": response.timings["read_ms"], "end_to_end": (ended - started) * 1000},
                          [a.text for a in response.answers], int(response.timings["passages_read"]),
                          response.reader == "technical",
                          (answer.document_id, answer.document_start, answer.document_end) if answer else None,
                          (passage.start, passage.end) if passage else None)

    def answer_batch(self, questions: list[str]) -> float:
        """The product's batch path, `Assistant.answer_many`: one embedding call and one FAISS call for all
        questions, their passages read in shared batches (adaptively), ranked. Returns the seconds spent
        retrieving (as every answer_batch does)."""
        responses = self.assistant.answer_many(questions, top_k=self.top_k)
        return responses[0].timings["retrieve_ms"] / 1000 if responses else 0.0

    def intent_routed_to_documents(self, question: str) -> bool:
        """Whether the product would try the documents for this question (the documents or fallback route)."""
        route = self.assistant.route_for(self.assistant.router.classify(question))
        return route in ("documents", "fallback")


class SpanqaMarginSystem(SpanqaSystem):
    """spanqa without the answer ranker: the reader's margin order × passage relevance (spanqa 0.2 before it)."""

    name = "spanqa-margin"
    rank = False


class SpanqaFp32System(SpanqaSystem):
    """spanqa before adaptive reading and bf16 (spanqa 0.3): fp32 reader and embedder, every passage read."""

    name = "spanqa-fp32"
    precision = "fp32"
    read_first = 0


class SpanqaPreviousSystem(SpanqaSystem):
    """spanqa with earlier models: the reader at `reader_path` and the ranker.json beside its folder
    (`spanqa bench --previous DIR`), so that a new reader and ranker are compared with the old in one run."""

    name = "spanqa-previous"

    def ranker(self, reader_path: str):
        from spanqa.plugin.engine.ranking import AnswerRanker

        return AnswerRanker.load(Path(reader_path).parent / "ranker.json")


class HaystackSystem:
    name = "haystack"
    retrieval_modes = ("dense", "bm25", "hybrid")

    def __init__(self, reader_path: str, top_k: int) -> None:
        import warnings

        import torch

        # 2.x announces each component's move to its own package in 3.x; the benchmark pins 2.x on purpose.
        warnings.filterwarnings("ignore", category=FutureWarning, module="haystack")
        warnings.filterwarnings("ignore", message="The `tokenizer_kwargs` argument was renamed")
        from haystack.components.embedders import (
            SentenceTransformersDocumentEmbedder,
            SentenceTransformersTextEmbedder,
        )
        from haystack.components.joiners import DocumentJoiner
        from haystack.components.readers import ExtractiveReader
        from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
        from haystack.document_stores.in_memory import InMemoryDocumentStore

        from spanqa.settings import Settings

        self.top_k = top_k
        embedder = Settings.from_env().embedder_path
        self.store = InMemoryDocumentStore()
        self.document_embedder = SentenceTransformersDocumentEmbedder(model=embedder, progress_bar=False,
                                                                      local_files_only=True)
        self.text_embedder = SentenceTransformersTextEmbedder(model=embedder, progress_bar=False,
                                                              local_files_only=True)
        # The shipped weights are stored in fp16; spanqa computes in fp32 on CPU, so Haystack does too.
        self.reader = ExtractiveReader(model=reader_path, model_kwargs={"dtype": torch.float32})
        self.dense = InMemoryEmbeddingRetriever(self.store)
        self.bm25 = InMemoryBM25Retriever(self.store)
        self.joiner = DocumentJoiner(join_mode="reciprocal_rank_fusion")
        for component in (self.document_embedder, self.text_embedder, self.reader):
            component.warm_up()
        self.tokens = TokenCounter(self.reader.model)

    def index(self, bench: BenchSet) -> int:
        from haystack import Document

        documents = [Document(content=p.text, meta={"document_id": p.document_id, "start": p.start, "end": p.end})
                     for p in bench.passages]
        embedded = self.document_embedder.run(documents=documents)["documents"]
        return self.store.write_documents(embedded)

    def _retrieve(self, question: str, k: int, mode: str) -> list:
        pool = k if mode != "hybrid" else max(4 * k, 20)  # as many candidates per retriever as spanqa fuses
        lists = []
        if mode != "bm25":
            embedding = self.text_embedder.run(text=question)["embedding"]
            lists.append(self.dense.run(query_embedding=embedding, top_k=pool)["documents"])
        if mode != "dense":
            lists.append(self.bm25.run(query=question, top_k=pool)["documents"])
        if mode != "hybrid":
            return lists[0]
        return self.joiner.run(documents=lists, top_k=k)["documents"]

    def retrieve(self, question: str, k: int, mode: str) -> list[Location]:
        return [(d.meta["document_id"], d.meta["start"], d.meta["end"]) for d in self._retrieve(question, k, mode)]

    def read(self, question: str, passage: Passage) -> str:
        from haystack import Document

        answers = self.reader.run(query=question, documents=[Document(content=passage.text)], top_k=1,
                                  no_answer=False)["answers"]
        return answers[0].data if answers else ""

    def answer(self, question: str) -> Prediction:
        started = time.perf_counter()
        documents = self._retrieve(question, self.top_k, "hybrid")
        retrieved = time.perf_counter()
        answers = self.reader.run(query=question, documents=documents)["answers"]
        ended = time.perf_counter()
        spans = [a for a in answers if a.data is not None]
        abstained = not answers or answers[0].data is None
        return Prediction(spans[0].data if spans else None, spans[0].score if spans else None, abstained,
                          {"retrieve": (retrieved - started) * 1000, "read": (ended - retrieved) * 1000,
                           "end_to_end": (ended - started) * 1000})

    def answer_batch(self, questions: list[str]) -> float:
        """ExtractiveReader 2.x reads one query per run, so a batch is a loop."""
        retrieving = 0.0
        for q in questions:
            started = time.perf_counter()
            documents = self._retrieve(q, self.top_k, "hybrid")
            retrieving += time.perf_counter() - started
            self.reader.run(query=q, documents=documents)
        return retrieving


class BaselineSystem:
    name = "baseline"
    retrieval_modes = ("dense",)

    def __init__(self, reader_path: str, top_k: int) -> None:
        from sentence_transformers import SentenceTransformer
        from spanqa.plugin.engine.reader import Reader

        from spanqa.settings import Settings

        self.top_k = top_k
        self.threshold = Settings.answer_threshold  # the reader's calibrated score, as spanqa's default threshold
        self.model = SentenceTransformer(Settings.from_env().embedder_path, device="cpu")
        self.reader = Reader(reader_path)
        self.reader.warm_up()
        self.tokens = TokenCounter(self.reader.model)

    def index(self, bench: BenchSet) -> int:
        import faiss

        self.passages = bench.passages
        vectors = self.model.encode([p.text for p in bench.passages], normalize_embeddings=True)
        self.faiss = faiss.IndexFlatIP(vectors.shape[1])
        self.faiss.add(vectors)
        return self.faiss.ntotal

    def _search(self, questions: list[str], k: int) -> list[list[Passage]]:
        _, ids = self.faiss.search(self.model.encode(questions, normalize_embeddings=True), k)
        return [[self.passages[i] for i in row if i >= 0] for row in ids]

    def retrieve(self, question: str, k: int, mode: str) -> list[Location]:
        return [(p.document_id, p.start, p.end) for p in self._search([question], k)[0]]

    def read(self, question: str, passage: Passage) -> str:
        return _best_span(self.reader, question, passage)

    def answer(self, question: str) -> Prediction:
        started = time.perf_counter()
        passages = self._search([question], self.top_k)[0]
        retrieved = time.perf_counter()
        result = self.reader.read(question, passages, top_k=1)
        ended = time.perf_counter()
        best = result.best
        return Prediction(best.text if best else None, best.score if best else None, result.abstains(self.threshold),
                          {"retrieve": (retrieved - started) * 1000, "read": (ended - retrieved) * 1000,
                           "end_to_end": (ended - started) * 1000})

    def answer_batch(self, questions: list[str]) -> float:
        started = time.perf_counter()
        items = list(zip(questions, self._search(questions, self.top_k), strict=True))
        retrieved = time.perf_counter()
        self.reader.read_many(items, top_k=1)
        return retrieved - started


# spanqa-before is SpanqaSystem run from an earlier revision (bench.run --before, bench.revision).
SYSTEMS = {"spanqa": SpanqaSystem, "spanqa-before": SpanqaSystem, "spanqa-margin": SpanqaMarginSystem,
           "spanqa-fp32": SpanqaFp32System,
           "spanqa-previous": SpanqaPreviousSystem,
           "haystack": HaystackSystem,
           "baseline": BaselineSystem}


def make_system(name: str, reader_path: str, top_k: int):
    return SYSTEMS[name](reader_path, top_k)

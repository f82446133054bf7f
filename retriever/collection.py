"""A collection: one directory holding a document store, its search indexes and a manifest.

    collection/
      manifest.json        embedding model, dimension, probe vector, chunking settings
      collection.sqlite    documents, passages, vectors (the source of truth), feedback
      index/dense.faiss    FAISS index over passage vectors   (+ dense.json: the store generation it matches)
      index/bm25/          BM25 index over passage text        (+ bm25.json)

Writes commit one document at a time in SQLite, so a crash leaves each document wholly old or wholly new;
the index files are caches stamped with the store's generation and rebuilt from the store when stale.

Locking: `_write_lock` serialises writers (ingest, delete, reindex) for their whole run; `_lock` guards the
in-memory indexes and is held only for short lookups and swaps, so searches keep flowing during an ingest.
"""

from __future__ import annotations

import copy
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from spanqa.retriever.chunking import Chunker, ChunkingSettings
from spanqa.retriever.embedding import PROBE_TEXT, Embedder
from spanqa.retriever.fusion import reciprocal_rank_fusion
from spanqa.retriever.indexes import DenseIndex, IndexFileError, LexicalIndex
from spanqa.retriever.loaders import LoadError, LoadReport, load_bytes, load_paths, safe_source_name
from spanqa.retriever.records import Document, Hit, Passage, SkippedFile
from spanqa.retriever.store import DocumentInfo, Feedback, Store

from spanqa.errors import CollectionCorruptError, CollectionError, EmbeddingMismatchError
from spanqa.settings import SEARCH_MODES, CollectionLimits, SearchMode, Settings

__all__ = ["Collection", "IngestReport", "MANIFEST_FORMAT"]

MANIFEST_FORMAT = 1
# Passages embedded per encode call across short documents (vectors are committed per document all the same).
EMBED_GROUP_PASSAGES = 256
# What an interrupted creation can leave behind in a collection directory before its manifest exists.
_CREATION_LEFTOVERS = frozenset({"manifest.tmp", "collection.sqlite", "collection.sqlite-wal", "collection.sqlite-shm",
                                 "collection.sqlite-journal", "index"})


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


def _embedding_groups(pending: list[tuple[Document, list[Passage], bool]], passages: int = EMBED_GROUP_PASSAGES):
    """Consecutive documents with about `passages` passages between them: short documents are embedded together
    in full batches instead of one small batch each."""
    group: list[tuple[Document, list[Passage], bool]] = []
    count = 0
    for item in pending:
        group.append(item)
        count += len(item[1])
        if count >= passages:
            yield group
            group, count = [], 0
    if group:
        yield group


class Collection:
    """Ingest files, search passages. Opens an existing collection directory or creates a new one.

    Usage:
        collection = Collection("my-collection")
        collection.ingest(["docs/"])
        hits = collection.search("how do I reset it?", k=5)

    Args:
        path: the collection directory.
        embedder: the embedding model; must match the one the collection was built with.
        chunking: passage size and overlap, used when the collection is created (then read from the manifest).
        create: create the collection if the directory is absent or empty.
        limits: file size, passages per document and results per query (larger ones are refused with a reason).
    """

    def __init__(self, path: str | Path, embedder: Embedder | None = None,
                 chunking: ChunkingSettings | None = None, create: bool = True,
                 limits: CollectionLimits | None = None) -> None:
        self.path = Path(path)
        self.embedder = embedder or Embedder()
        self.limits = limits or CollectionLimits()
        if self.path.exists() and not self.path.is_dir():
            raise CollectionError(f"{self.path} is a file, not a collection directory")
        self._lock = threading.RLock()
        self._write_lock = threading.RLock()
        manifest_path = self.path / "manifest.json"
        if manifest_path.is_file():
            self.manifest = self._check_manifest(manifest_path)
            if not (self.path / "collection.sqlite").is_file():
                raise CollectionCorruptError(
                    f"{self.path} has a manifest but its database collection.sqlite is missing; restore it from "
                    "a backup, or delete the directory and ingest the documents again")
            chunking = ChunkingSettings(**{k: v for k, v in self.manifest["chunking"].items()
                                           if k in ChunkingSettings.__dataclass_fields__})
        elif self.path.exists() and not {p.name for p in self.path.iterdir()} <= _CREATION_LEFTOVERS:
            raise CollectionError(f"{self.path} is not a spanqa collection (no manifest.json) and is not empty")
        elif not create:
            raise CollectionError(f"No collection at {self.path}; create one with `spanqa ingest PATH "
                                  f"--collection {self.path}`")
        else:
            chunking = chunking or ChunkingSettings()
            self.manifest = self._create(manifest_path, chunking)
        self.chunking = chunking
        self.store = Store(self.path / "collection.sqlite")
        self.index_dir = self.path / "index"
        self.index_dir.mkdir(exist_ok=True)
        self.dense = DenseIndex(int(self.manifest["dimension"]))
        self.lexical = LexicalIndex()
        self._chunker: Chunker | None = None
        try:
            self._open_indexes()
        except BaseException:
            self.store.close()
            raise

    # --- opening -------------------------------------------------------------------------------------

    def _create(self, manifest_path: Path, chunking: ChunkingSettings) -> dict:
        """Create the collection. The manifest is written last, so it only ever promises a database that exists;
        whatever a crash left before it (see _CREATION_LEFTOVERS) held no documents and is started over."""
        if self.path.exists():
            for leftover in self.path.iterdir():
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
        self.path.mkdir(parents=True, exist_ok=True)
        Store(self.path / "collection.sqlite").close()
        manifest = {
            "format": MANIFEST_FORMAT,
            "embedding_model": self.embedder.name,
            "dimension": self.embedder.dimension,
            "probe": [round(float(x), 6) for x in self.embedder.encode(PROBE_TEXT)[0]],
            "chunking": asdict(chunking),
            "created": time.time(),
        }
        tmp = manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.replace(manifest_path)
        return manifest

    def _check_manifest(self, manifest_path: Path) -> dict:
        try:
            manifest = json.loads(manifest_path.read_text())
            recorded, dimension = manifest["embedding_model"], int(manifest["dimension"])
        except (OSError, ValueError, KeyError) as exc:
            raise CollectionCorruptError(f"{manifest_path} is unreadable ({exc})") from exc
        fix = (f"open it with the embedder it was built with (--embedder {recorded}), or rebuild it for this "
               f"model with `spanqa reindex --collection {self.path} --embedder {self.embedder.location}`")
        if recorded != self.embedder.name or dimension != self.embedder.dimension:
            raise EmbeddingMismatchError(
                f"Collection {self.path} was built with embedding model {recorded!r} ({dimension}-d), but "
                f"{self.embedder.name!r} ({self.embedder.dimension}-d) was given: {fix}")
        probe = np.asarray(manifest.get("probe", []), dtype=np.float32)
        if probe.shape == (dimension,) and float(probe @ self.embedder.encode(PROBE_TEXT)[0]) < 0.99:
            raise EmbeddingMismatchError(
                f"Collection {self.path} was built with a different {recorded!r} (its vectors disagree): {fix}")
        return manifest

    def _open_indexes(self) -> None:
        generation = self.store.generation
        self._generation = generation
        try:
            dense_ok = self.dense.load(self.index_dir, generation)
            lexical_ok = self.lexical.load(self.index_dir, generation)
        except IndexFileError as exc:
            raise CollectionCorruptError(
                f"{exc}. Rebuild the indexes from the database with `spanqa reindex --collection {self.path}`"
            ) from exc
        if not dense_ok or not lexical_ok:
            # Stale after a crash between the database commit and the index save: rebuild, embed nothing.
            self._rebuild_indexes()

    def _rebuild_indexes(self, dense: bool = True) -> None:
        """Rebuild BM25 (always: bm25s has no incremental update) and, if asked, the dense index from the
        database, swap them in, and save them stamped with the current generation."""
        if dense:
            rebuilt = DenseIndex(self.dense.dimension, self.dense.hnsw_threshold)
            rebuilt.build(self.store.iter_vectors())
            with self._lock:
                self.dense = rebuilt
        lexical = LexicalIndex()
        lexical.build(self.store.iter_texts())
        with self._lock:
            self.lexical = lexical
        self._save_indexes()

    def _save_indexes(self) -> None:
        generation = self.store.generation
        with self._lock:
            self.dense.save(self.index_dir, generation)
            self.lexical.save(self.index_dir, generation)
            self._generation = generation

    def _refresh_if_changed_elsewhere(self) -> None:
        """Pick up writes made by another process or Collection object (e.g. `spanqa ingest` while the chat UI
        runs): the database generation moved on, so reload the index files, which that writer saved."""
        if self.store.generation == self._generation:
            return
        if not self._write_lock.acquire(blocking=False):
            return  # this object is writing right now: its own indexes are the newest
        try:
            if self.store.generation != self._generation:
                self._open_indexes()
        finally:
            self._write_lock.release()

    def reindex(self) -> None:
        """Rebuild both indexes from the database (after a corrupt or missing index file)."""
        with self._write_lock:
            self._rebuild_indexes()

    @classmethod
    def repair(cls, path: str | Path, embedder: Embedder | None = None) -> Collection:
        """Open a collection whose index files are unreadable by rebuilding them from the database."""
        path = Path(path)
        for name in ("dense.json", "bm25.json"):
            (path / "index" / name).unlink(missing_ok=True)
        return cls(path, embedder=embedder, create=False)

    def close(self) -> None:
        self.store.close()

    # --- writing -------------------------------------------------------------------------------------

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            # A copy of the tokenizer: the shared one is in use by searches on other threads, and its truncation
            # settings are shared state (see retriever.embedding). The chunker itself only runs under the write lock.
            tokenizer = copy.deepcopy(self.embedder.tokenizer)
            self._chunker = Chunker(tokenizer, self.chunking, self.limits.max_passages_per_document)
        return self._chunker

    def ingest(self, paths: Iterable[str | Path], include: list[str] | None = None,
               exclude: list[str] | None = None, progress: ProgressCallback | None = None) -> IngestReport:
        """Ingest files and folders; unchanged files are skipped without embedding."""
        report = load_paths(list(paths), include, exclude, self.limits.max_file_bytes)
        return self.add_documents(report, progress)

    def ingest_bytes(self, files: list[tuple[str, bytes]], progress: ProgressCallback | None = None) -> IngestReport:
        """Ingest uploads: (file name, content) pairs. Names are labels only; nothing is written to disk."""
        loaded = LoadReport()
        for name, data in files:
            source = safe_source_name(name)
            try:
                loaded.documents.append(load_bytes(source, data, self.limits.max_file_bytes))
            except LoadError as exc:
                loaded.skipped.append(SkippedFile(source, f"{source} {exc}"))
        return self.add_documents(loaded, progress)

    def add_documents(self, loaded: LoadReport, progress: ProgressCallback | None = None) -> IngestReport:
        started = time.time()
        report = IngestReport(skipped=list(loaded.skipped))
        with self._write_lock:
            pending: list[tuple[Document, list[Passage], bool]] = []
            for document in loaded.documents:
                previous = self.store.document_hash(document.id)
                if previous == document.hash:
                    report.unchanged.append(document.source)
                    continue
                try:
                    passages = self.chunker.split(document)
                except ValueError as exc:
                    report.skipped.append(SkippedFile(document.source, str(exc)))
                    continue
                pending.append((document, passages, previous is not None))
            total, done = len(pending), 0
            for group in _embedding_groups(pending):
                if progress:
                    first = Path(group[0][0].source).name
                    what = first if len(group) == 1 else f"{first} and {len(group) - 1} more"
                    progress(f"Embedding {what} ({sum(len(p) for _, p, _ in group)} passages)", done, total)
                vectors = self.embedder.encode([p.text for _, passages, _ in group for p in passages])
                offset = 0
                for document, passages, replaced in group:
                    own = vectors[offset : offset + len(passages)]
                    offset += len(passages)
                    with self._lock:  # one transaction per document: a crash leaves it old or new, never half
                        old_ids = self.store.previous_passage_ids(document.id)
                        self.store.put_document(document, passages, own)
                        self.dense.remove(old_ids)
                        self.dense.add(np.array([p.id for p in passages], dtype=np.int64), own)
                    (report.updated if replaced else report.added).append(document.source)
                    report.passages += len(passages)
                    done += 1
            if pending:
                self._after_write()
            if progress:
                progress("Done", total, total)
        report.seconds = time.time() - started
        return report

    def _after_write(self) -> None:
        # The flat index was updated in place; an HNSW index that lost vectors is rebuilt.
        self._rebuild_indexes(dense=self.dense.needs_rebuild)

    def delete(self, document: str) -> bool:
        """Delete a document by id or by source; False if there is no such document."""
        with self._write_lock:
            match = [d for d in self.store.documents() if document in (d.id, d.source)]
            if not match:
                return False
            with self._lock:
                removed = self.store.delete_document(match[0].id)
                self.dense.remove(removed)
            self._after_write()
            return True

    def add_feedback(self, feedback: Feedback) -> int:
        return self.store.add_feedback(feedback)

    # --- reading -------------------------------------------------------------------------------------

    def feedback(self) -> list[Feedback]:
        return self.store.feedback()

    def get_setting(self, key: str) -> dict | None:
        """A JSON setting stored with the collection (e.g. the engine's answer calibration), or None."""
        raw = self.store.get_meta(f"setting:{key}")
        return json.loads(raw) if raw is not None else None

    def put_setting(self, key: str, value: dict) -> None:
        """Store a JSON setting with the collection: every process that opens it sees it on its next read."""
        self.store.set_meta(f"setting:{key}", json.dumps(value))

    def documents(self) -> list[DocumentInfo]:
        return self.store.documents()

    def document(self, document_id: str) -> Document | None:
        return self.store.document(document_id)

    def __len__(self) -> int:
        self._refresh_if_changed_elsewhere()
        return len(self.dense)

    def search(self, query: str, k: int = Settings.top_k, mode: SearchMode = Settings.retrieval_mode,
               weights: dict[str, float] | None = None, candidates: int | None = None) -> list[Hit]:
        """The `k` best passages for `query`.

        Args:
            mode: "dense" (embeddings), "bm25" (words) or "hybrid" (both, fused by reciprocal rank).
            weights: per-retriever RRF weights for hybrid, e.g. {"dense": 1.0, "bm25": 0.5}.
            candidates: how many each retriever contributes before fusion (default max(4k, 20)).
        """
        if mode not in SEARCH_MODES:
            raise ValueError(f"mode must be one of {SEARCH_MODES}, got {mode!r}")
        if not 1 <= k <= self.limits.max_results:
            raise ValueError(f"k must be between 1 and {self.limits.max_results:,} (the max_results limit), got {k}")
        if not query.strip():
            raise ValueError("The query is empty")
        self._refresh_if_changed_elsewhere()
        pool = candidates if candidates is not None else max(4 * k, 20)
        vector = self.embedder.encode(query)[0] if mode != "bm25" else None
        with self._lock:
            ranked: dict[str, list[tuple[int, float]]] = {}
            if mode != "bm25":
                ranked["dense"] = self.dense.search(vector, pool if mode == "hybrid" else k)
            if mode != "dense":
                ranked["bm25"] = self.lexical.search(query, pool if mode == "hybrid" else k)
        fused = reciprocal_rank_fusion(ranked, weights)[:k]
        passages = self.store.passages([f.id for f in fused])
        missing_dense = [f.id for f in fused if "dense" not in f.scores] if vector is not None else []
        stored = self.store.vectors(missing_dense) if missing_dense else {}
        hits = []
        for item in fused:
            passage = passages.get(item.id)
            if passage is None:  # deleted between the index lookup and now
                continue
            dense_score = item.scores.get("dense")
            if dense_score is None and item.id in stored:
                # Found by BM25 alone: its cosine is still evidence for the reader and for abstention.
                dense_score = float(stored[item.id] @ vector)
            hits.append(Hit(passage, item.score, dense_score, item.scores.get("bm25"),
                            item.ranks.get("dense"), item.ranks.get("bm25")))
        return hits

    def existing(self, passage_ids: Iterable[int]) -> set[int]:
        """Which of these passages still exist (their document may have been deleted since they were found)."""
        return set(self.store.passages(list(passage_ids)))

    def integrity_problems(self) -> list[str]:
        """Check that the database, the dense index and the BM25 index hold the same passages."""
        problems = self.store.integrity_problems()
        with self._lock:
            stored = set(self.store.all_passage_ids())
            dense_ids = self.dense.ids()
            bm25_ids = set(self.lexical.passage_ids)
        if dense_ids != stored:
            problems.append(f"dense index differs from the database by {len(dense_ids ^ stored)} passages")
        if bm25_ids != stored:
            problems.append(f"BM25 index differs from the database by {len(bm25_ids ^ stored)} passages")
        return problems

"""A collection: one directory holding a document store, its search indexes and a manifest.

    collection/
      manifest.json        embedding model, dimension, probe vector, chunking settings
      collection.sqlite    documents, passages, vectors (the source of truth), originals, feedback
      index/dense.faiss    FAISS index over passage vectors   (+ dense.json: the store generation it matches)
      index/bm25/          BM25 index over passage text        (+ bm25.json)

Writes commit one document at a time in SQLite, so a crash leaves each document wholly old or wholly new;
the index files are caches stamped with the store's generation and rebuilt from the store when stale.

Locking: `_write_lock` serialises writers (ingest, delete, reindex) for their whole run; `_lock` guards the
in-memory indexes and is held only for short lookups and swaps, so searches keep flowing during an ingest.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from spanqa.retriever.base import CollectionBase, Ranked, check_manifest, new_manifest
from spanqa.retriever.chunking import ChunkingSettings
from spanqa.retriever.embedding import Embedder
from spanqa.retriever.indexes import DenseIndex, IndexFileError, LexicalIndex, saved_generation
from spanqa.retriever.records import Document, DocumentInfo, Feedback, Passage
from spanqa.retriever.store import Store

from spanqa.errors import CollectionCorruptError, CollectionError
from spanqa.settings import CollectionLimits

__all__ = ["LocalCollection"]

# What an interrupted creation can leave behind in a collection directory before its manifest exists.
_CREATION_LEFTOVERS = frozenset({"manifest.tmp", "sync.lock", "collection.sqlite", "collection.sqlite-wal",
                                 "collection.sqlite-shm", "collection.sqlite-journal", "index"})


class LocalCollection(CollectionBase):
    """The embedded backend: ingest files, search passages, all in one directory (opened, or created).

    Usage:
        collection = LocalCollection("my-collection")
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
        super().__init__(embedder, limits)
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise CollectionError(f"{self.path} is a file, not a collection directory")
        self._lock = threading.RLock()
        manifest_path = self.path / "manifest.json"
        if manifest_path.is_file():
            self.manifest, chunking = self._check_manifest(manifest_path)
            if not (self.path / "collection.sqlite").is_file():
                raise CollectionCorruptError(
                    f"{self.path} has a manifest but its database collection.sqlite is missing; restore it from "
                    "a backup, or delete the directory and ingest the documents again")
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
        try:
            self._open_indexes()
        except BaseException:
            self.store.close()
            raise

    # --- opening -------------------------------------------------------------------------------------

    def _create(self, manifest_path: Path, chunking: ChunkingSettings) -> dict:
        """Create the collection. The manifest is written last, so it only ever promises a database that exists;
        whatever a crash left before it (see _CREATION_LEFTOVERS) held no documents and is started over."""
        try:
            if self.path.exists():
                for leftover in self.path.iterdir():
                    if leftover.is_dir():
                        shutil.rmtree(leftover)
                    else:
                        leftover.unlink()
            self.path.mkdir(parents=True, exist_ok=True)
            Store(self.path / "collection.sqlite").close()
            manifest = new_manifest(self.embedder, chunking)
            tmp = manifest_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(manifest, indent=1))
            tmp.replace(manifest_path)
        except OSError as exc:  # a read-only or full disk, a folder without permission: every door says so alike
            raise CollectionError(f"Cannot create a collection at {self.path}: {exc.strerror or exc}") from exc
        return manifest

    def _check_manifest(self, manifest_path: Path) -> tuple[dict, ChunkingSettings]:
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise CollectionCorruptError(f"{manifest_path} is unreadable ({exc})") from exc
        hint = (f"rebuild it for this model with `spanqa reindex --collection {self.path} "
                f"--embedder {self.embedder.location}`")
        return manifest, check_manifest(manifest, self.embedder, str(self.path), hint)

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
        database, swap them in, and save them stamped with the generation they were read at (read first: a write
        that lands during the rebuild makes the stamp older than the content, which only costs a rebuild)."""
        generation = self.store.generation
        if dense:
            rebuilt = DenseIndex(self.dense.dimension, self.dense.hnsw_threshold)
            rebuilt.build(self.store.iter_vectors())
            with self._lock:
                self.dense = rebuilt
        lexical = LexicalIndex()
        lexical.build(self.store.iter_texts())
        with self._lock:
            self.lexical = lexical
        self._save_indexes(generation)

    def _save_indexes(self, generation: int) -> None:
        """Save both indexes stamped `generation`, one process at a time (a reader that found them stale rebuilds
        and saves them too, maybe while a writer does), and never over indexes saved at a later generation."""
        import fcntl

        with self._lock, open(self.index_dir / "save.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                saved = saved_generation(self.index_dir)
                if saved is None or saved < generation:
                    self.dense.save(self.index_dir, generation)
                    self.lexical.save(self.index_dir, generation)
                self._generation = generation
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _check_present(self) -> None:
        """Refuse to go on with a collection whose directory was deleted or moved while it was open: its database
        file would still answer (an open SQLite file outlives its name), with documents the user removed."""
        if not (self.path / "manifest.json").is_file():
            raise CollectionError(f"The collection at {self.path} is gone (its directory was deleted or moved); "
                                  "open another collection, or ingest the documents again")

    def write_guard(self):
        self._check_present()
        return super().write_guard()

    @contextmanager
    def sync_guard(self) -> Iterator[None]:
        """An exclusive lock on the collection's sync.lock for a whole sync: the operating system drops it with the
        process that held it, so a killed sync never blocks the next one."""
        import fcntl

        self._check_present()
        with open(self.path / "sync.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CollectionError(f"Another sync of {self.path} is running; run this one when it has "
                                      "finished") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _refresh_if_changed_elsewhere(self) -> None:
        """Pick up writes made by another process or Collection object (e.g. `spanqa ingest` while the chat UI
        runs): the database generation moved on, so reload the index files, which that writer saved."""
        self._check_present()
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
    def repair(cls, path: str | Path, embedder: Embedder | None = None) -> LocalCollection:
        """Open a collection whose index files are unreadable by rebuilding them from the database."""
        path = Path(path)
        for name in ("dense.json", "bm25.json"):
            (path / "index" / name).unlink(missing_ok=True)
        return cls(path, embedder=embedder, create=False)

    def close(self) -> None:
        self.store.close()

    @property
    def location(self) -> str:
        return str(self.path)

    # --- storage primitives (see CollectionBase) -----------------------------------------------------

    def _stored_hash(self, document_id: str) -> str | None:
        return self.store.document_hash(document_id)

    def commit_document(self, document: Document, passages: list[Passage], vectors: np.ndarray) -> None:
        with self._lock:
            old_ids = self.store.previous_passage_ids(document.id)
            self.store.put_document(document, passages, vectors, self.original_to_keep(document))
            self.dense.remove(old_ids)
            self.dense.add(np.array([p.id for p in passages], dtype=np.int64), vectors)

    def _remove(self, document_id: str) -> None:
        with self._lock:
            self.dense.remove(self.store.delete_document(document_id))

    def finish_writes(self) -> None:
        # The flat index was updated in place; an HNSW index that lost vectors is rebuilt.
        self._rebuild_indexes(dense=self.dense.needs_rebuild)

    def ranked(self, query: str, vector: np.ndarray | None, mode: str, pool: int) -> Ranked:
        return self.ranked_many([query], None if vector is None else vector[None, :], mode, pool)[0]

    def ranked_many(self, queries: list[str], vectors: np.ndarray | None, mode: str, pool: int) -> list[Ranked]:
        self._refresh_if_changed_elsewhere()
        ranked: list[Ranked] = [{} for _ in queries]
        with self._lock:
            if mode != "bm25":
                for r, dense in zip(ranked, self.dense.search_many(vectors, pool), strict=True):
                    r["dense"] = dense
            if mode != "dense":
                for r, query in zip(ranked, queries, strict=True):
                    r["bm25"] = self.lexical.search(query, pool)
        return ranked

    def _passages(self, ids: list[int]) -> dict[int, Passage]:
        return self.store.passages(ids)

    def _passage_ids(self, document_id: str) -> list[int]:
        return self.store.previous_passage_ids(document_id)

    def _vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        return self.store.vectors(ids)

    def _get_meta(self, key: str) -> str | None:
        return self.store.get_meta(key)

    def _set_meta(self, key: str, value: str) -> None:
        self.store.set_meta(key, value)

    # --- the rest of the Collection protocol ------------------------------------------------------------

    def add_feedback(self, feedback: Feedback) -> int:
        return self.store.add_feedback(feedback)

    def feedback(self) -> list[Feedback]:
        return self.store.feedback()

    def documents(self) -> list[DocumentInfo]:
        self._check_present()
        return self.store.documents()

    def document(self, document_id: str) -> Document | None:
        self._check_present()
        return self.store.document(document_id)

    def original(self, document_id: str) -> bytes | None:
        self._check_present()
        return self.store.original(document_id)

    def __len__(self) -> int:
        self._refresh_if_changed_elsewhere()
        return len(self.dense)

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

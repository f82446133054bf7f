"""The collection's source of truth: documents, passages and their vectors in one SQLite database.

Vectors live here as well as in FAISS so that the search indexes are caches: after a crash, or when an index
file is stale, they are rebuilt from this database without embedding anything again. Every write is one
transaction and bumps `generation`, which the index files are stamped with.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from spanqa.retriever.records import Document, DocumentInfo, Feedback, PageSpan, Passage

from spanqa.errors import CollectionCorruptError, CollectionError

__all__ = ["Store", "DocumentInfo", "Feedback"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    hash TEXT NOT NULL,
    text TEXT NOT NULL,
    pages TEXT NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    page INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_by_document ON passages(document_id);
CREATE TABLE IF NOT EXISTS originals (
    document_id TEXT PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    content BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    source TEXT NOT NULL,
    passage_id INTEGER,
    score REAL,
    rating INTEGER NOT NULL,
    route TEXT NOT NULL DEFAULT 'documents'
);
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0');
"""


class Store:
    """SQLite access for one collection. Thread-safe: one connection, serialised by a lock."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise CollectionError(f"No collection database at {self.path}: the collection does not exist there (add "
                                  "documents with `spanqa ingest PATH --collection DIR` to create one)")
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
        self._conn.execute("PRAGMA synchronous=FULL")  # a committed ingest survives power loss
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Collections made before a column existed get it, with its default (feedback.route: spanqa 0.2)."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(feedback)")}
        if "route" not in columns:
            self._conn.execute("ALTER TABLE feedback ADD COLUMN route TEXT NOT NULL DEFAULT 'documents'")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise self._error(exc) from exc
                raise

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from exc

    def _error(self, exc: sqlite3.DatabaseError) -> CollectionError:
        """SQLite's failure as a spanqa error that every door shows: busy is retryable, anything else is damage."""
        if "locked" in str(exc) or "busy" in str(exc):
            return CollectionError(f"The collection database {self.path} is busy ({exc}); try again in a moment.")
        return CollectionCorruptError(f"The collection database {self.path} is damaged ({exc}). Re-ingest the "
                                      "documents into a new collection, or restore it from a backup.")

    # --- reads ---------------------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return int(self._query("SELECT value FROM meta WHERE key='generation'")[0][0])

    def document_hash(self, document_id: str) -> str | None:
        rows = self._query("SELECT hash FROM documents WHERE id=?", (document_id,))
        return rows[0][0] if rows else None

    def documents(self) -> list[DocumentInfo]:
        rows = self._query(
            "SELECT d.id, d.source, d.title, d.hash, COUNT(p.id), LENGTH(d.text), d.added "
            "FROM documents d LEFT JOIN passages p ON p.document_id = d.id GROUP BY d.id ORDER BY d.added"
        )
        return [DocumentInfo(*row) for row in rows]

    def document(self, document_id: str) -> Document | None:
        rows = self._query("SELECT id, source, title, hash, text, pages FROM documents WHERE id=?", (document_id,))
        if not rows:
            return None
        doc_id, source, title, hash_, text, pages = rows[0]
        spans = [PageSpan(*p) for p in json.loads(pages)]
        return Document(source=source, text=text, pages=spans, title=title, id=doc_id, hash=hash_)

    def original(self, document_id: str) -> bytes | None:
        rows = self._query("SELECT content FROM originals WHERE document_id=?", (document_id,))
        return bytes(rows[0][0]) if rows else None

    def passages(self, ids: list[int]) -> dict[int, Passage]:
        """Passages by id; ids that no longer exist are simply absent."""
        found: dict[int, Passage] = {}
        for b in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[b : b + 500]]
            marks = ",".join("?" * len(chunk))
            for row in self._query(
                "SELECT p.id, p.document_id, d.source, p.text, p.start, p.end, p.page, p.idx, d.title "
                f"FROM passages p JOIN documents d ON d.id = p.document_id WHERE p.id IN ({marks})", tuple(chunk)
            ):
                pid, doc_id, source, text, start, end, page, idx, title = row
                found[pid] = Passage(doc_id, source, text, start, end, page, idx, pid, title)
        return found

    def all_passage_ids(self) -> list[int]:
        return [r[0] for r in self._query("SELECT id FROM passages ORDER BY id")]

    def iter_vectors(self, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in id order, a batch at a time, for rebuilding the dense index."""
        last = -1
        while True:
            rows = self._query("SELECT id, vector FROM passages WHERE id > ? ORDER BY id LIMIT ?", (last, batch))
            if not rows:
                return
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            yield ids, vectors
            last = int(ids[-1])

    def iter_texts(self, batch: int = 4096) -> Iterator[tuple[list[int], list[str]]]:
        last = -1
        while True:
            rows = self._query("SELECT id, text FROM passages WHERE id > ? ORDER BY id LIMIT ?", (last, batch))
            if not rows:
                return
            yield [r[0] for r in rows], [r[1] for r in rows]
            last = rows[-1][0]

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for b in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[b : b + 500]]
            marks = ",".join("?" * len(chunk))
            for pid, blob in self._query(f"SELECT id, vector FROM passages WHERE id IN ({marks})", tuple(chunk)):
                out[pid] = np.frombuffer(blob, dtype=np.float32)
        return out

    # --- writes --------------------------------------------------------------------------------------

    def put_document(self, document: Document, passages: list[Passage], vectors: np.ndarray,
                     original: bytes | None) -> list[int]:
        """Insert or replace a document, its passages and its original bytes (None: none kept) in one transaction;
        returns the new passage ids and sets them on `passages`. What the document held before goes in the same
        transaction."""
        if len(passages) != len(vectors):
            raise CollectionError("one vector per passage is required (a bug: please report it)")
        pages = json.dumps([[p.number, p.start, p.end] for p in document.pages])
        with self._transaction() as conn:
            conn.execute("DELETE FROM documents WHERE id=?", (document.id,))
            conn.execute(
                "INSERT INTO documents(id, source, title, hash, text, pages, added) VALUES (?,?,?,?,?,?,?)",
                (document.id, document.source, document.title, document.hash, document.text, pages, time.time()),
            )
            if original is not None:
                conn.execute("INSERT INTO originals(document_id, content) VALUES (?, ?)", (document.id, original))
            ids = []
            for passage, vector in zip(passages, vectors, strict=True):
                cursor = conn.execute(
                    "INSERT INTO passages(document_id, idx, start, end, page, text, vector) VALUES (?,?,?,?,?,?,?)",
                    (document.id, passage.index, passage.start, passage.end, passage.page, passage.text,
                     np.asarray(vector, dtype=np.float32).tobytes()),
                )
                passage.id = int(cursor.lastrowid)
                ids.append(passage.id)
        return ids

    def delete_document(self, document_id: str) -> list[int]:
        """Delete a document; returns the ids of its passages (now gone)."""
        with self._transaction() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM passages WHERE document_id=?", (document_id,))]
            conn.execute("DELETE FROM documents WHERE id=?", (document_id,))
        return ids

    def previous_passage_ids(self, document_id: str) -> list[int]:
        return [r[0] for r in self._query("SELECT id FROM passages WHERE document_id=?", (document_id,))]

    def add_feedback(self, feedback: Feedback) -> int:
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO feedback(created, question, answer, source, passage_id, score, rating, route) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (time.time(), feedback.question, feedback.answer, feedback.source, feedback.passage_id,
                 feedback.score, int(feedback.rating), feedback.route),
            )
            return int(cursor.lastrowid)

    def feedback(self) -> list[Feedback]:
        rows = self._query("SELECT question, answer, source, rating, passage_id, score, route FROM feedback "
                           "ORDER BY id")
        return [Feedback(*row) for row in rows]

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def integrity_problems(self) -> list[str]:
        problems = []
        if self._query("PRAGMA integrity_check")[0][0] != "ok":
            problems.append("SQLite integrity_check failed")
        orphans = self._query("SELECT COUNT(*) FROM passages p LEFT JOIN documents d ON d.id=p.document_id "
                              "WHERE d.id IS NULL")[0][0]
        if orphans:
            problems.append(f"{orphans} passages belong to no document")
        return problems

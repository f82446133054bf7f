"""The PostgreSQL backend: a collection in PostgreSQL + pgvector, shared by every process that opens it.

    postgresql://user:password@host:5432/database?collection=manuals

Each collection is one schema, `spanqa_<name>`, so several collections (and other applications) share a
database without touching each other's tables.

The URL is parsed in postgres_location.py; the tables and their migrations are in postgres_schema.py.

Search is the same hybrid as the embedded backend: pgvector's HNSW for the dense ranking, PostgreSQL's full-text
ranking (`ts_rank` over an OR of the question's stemmed words) for the lexical one, fused by reciprocal rank in
`CollectionBase`. Nothing is cached in the process, so a document added or deleted by one replica is answered
from, or no longer cited by, every other on its next question.

Writes: one transaction per document, under a per-collection advisory lock, so a writer that dies leaves each
document wholly old or wholly new, and concurrent writers from several replicas queue instead of interleaving.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from spanqa.retriever.base import CollectionBase, Ranked, check_manifest, new_manifest
from spanqa.retriever.chunking import ChunkingSettings
from spanqa.retriever.embedding import Embedder
from spanqa.retriever.postgres_location import PostgresLocation, is_postgres_location
from spanqa.retriever.postgres_schema import (
    CREATE,
    SCHEMA_VERSION,
    TEXT_SEARCH_CONFIG,
    check_version,
    migrate,
    read_documents,
)
from spanqa.retriever.records import Document, DocumentInfo, Feedback, PageSpan, Passage

from spanqa.errors import CollectionError, InputError
from spanqa.settings import CollectionLimits, PostgresSettings

__all__ = ["PostgresCollection", "PostgresLocation", "SCHEMA_VERSION", "is_postgres_location", "migrate",
           "replace_collection"]

class PostgresCollection(CollectionBase):
    """A collection stored in PostgreSQL with pgvector (see the module docstring).

    Usage:
        collection = PostgresCollection("postgresql://spanqa@db.internal/spanqa?collection=manuals")
        collection.ingest(["docs/"])

    Args:
        url: the server and the collection (`?collection=name`, default "default").
        embedder: must match the one the collection was built with (recorded in its manifest).
        chunking: passage size and overlap, used when the collection is created.
        create: create the collection (schema, tables, indexes) if it does not exist.
        limits: file size, passages per document and results per query.
        settings: pool size, timeouts and HNSW parameters (default: the defaults; a door passes its Settings.postgres).
    """

    def __init__(self, url: str, embedder: Embedder | None = None, chunking: ChunkingSettings | None = None,
                 create: bool = True, limits: CollectionLimits | None = None,
                 settings: PostgresSettings | None = None) -> None:
        try:
            import pgvector.psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as exc:
            raise CollectionError("PostgreSQL collections need the postgres extra: pip install 'spanqa[postgres]' "
                                  f"({exc})") from exc
        super().__init__(embedder, limits)
        self.where = PostgresLocation(url)
        self.settings = settings or PostgresSettings()
        self._connect_kwargs = {
            "connect_timeout": max(1, round(self.settings.pg_connect_timeout_s)),
            "options": f"-c statement_timeout={self.settings.pg_statement_timeout_ms}",
        }
        with self._bootstrap_connection() as conn:
            self.manifest = self._open_or_create(conn, chunking or ChunkingSettings(), create)
        self.chunking = check_manifest(self.manifest, self.embedder, self.location,
                                       f"re-embed it with `spanqa reindex --collection '{url}' --embedder "
                                       f"{self.embedder.location}`")
        self._pool_lock = threading.Lock()
        self._pool = self._open_pool()

    # --- connecting ----------------------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self.where.shown

    @contextmanager
    def _bootstrap_connection(self) -> Iterator:
        import psycopg

        try:
            conn = psycopg.connect(self.where.conninfo, autocommit=False, **self._connect_kwargs)
        except psycopg.Error as exc:
            raise self._unreachable(exc) from exc
        try:
            yield conn
        except psycopg.Error as exc:
            raise CollectionError(f"PostgreSQL at {self.location} refused to set up the collection: "
                                  f"{str(exc).strip()}") from exc
        finally:
            conn.close()

    def _unreachable(self, exc: Exception) -> CollectionError:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return CollectionError(f"PostgreSQL at {self.location} is not reachable ({reason}). Start the server, "
                               "or check the host, port, user and password in the collection URL.")

    def _open_pool(self):
        from pgvector.psycopg import register_vector
        from psycopg_pool import ConnectionPool, PoolTimeout

        pool = ConnectionPool(self.where.conninfo, min_size=1, max_size=self.settings.pg_pool_size,
                              kwargs=self._connect_kwargs, configure=register_vector,
                              check=ConnectionPool.check_connection, open=False,
                              timeout=self.settings.pg_connect_timeout_s, name=self.where.schema)
        try:
            pool.open(wait=True, timeout=self.settings.pg_connect_timeout_s)
        except PoolTimeout as exc:
            pool.close()
            raise self._unreachable(exc) from exc
        return pool

    def _ready_pool(self):
        with self._pool_lock:
            if self._pool is None:
                self._pool = self._open_pool()  # connects now, or fails within pg_connect_timeout_s
            return self._pool

    def _discard_pool(self, pool) -> None:
        """Drop a pool that could not connect. It would retry on its own, but with a back-off that grows to
        minutes, so the first requests after the server is back would still fail; the next request opens a
        fresh pool, which connects at once."""
        with self._pool_lock:
            if self._pool is pool:
                self._pool = None
        pool.close(timeout=0)

    @contextmanager
    def _connection(self, write: bool = False) -> Iterator:
        """A pooled connection inside one transaction; PostgreSQL's failures become CollectionErrors that say
        what to do. `write` takes the collection's advisory lock for the transaction."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._ready_pool()
        try:
            with pool.connection() as conn, conn.transaction():
                if write:
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.where.schema,))
                yield conn
        except PoolTimeout as exc:
            self._discard_pool(pool)
            raise self._unreachable(exc) from exc
        except psycopg.errors.QueryCanceled as exc:
            raise CollectionError(f"PostgreSQL at {self.location} cancelled a statement after "
                                  f"{self.settings.pg_statement_timeout_ms} ms (pg_statement_timeout_ms); "
                                  "the server is overloaded or the limit is too low.") from exc
        except psycopg.OperationalError as exc:
            raise self._unreachable(exc) from exc
        except psycopg.Error as exc:
            raise CollectionError(f"PostgreSQL at {self.location} failed: {str(exc).strip()}") from exc

    def sql(self, text: str, **literals):
        from psycopg import sql

        return sql.SQL(text).format(s=sql.Identifier(self.where.schema),
                                    **{k: sql.Literal(v) for k, v in literals.items()})

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # --- schema ----------------------------------------------------------------------------------------

    def _open_or_create(self, conn, chunking: ChunkingSettings, create: bool) -> dict:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.where.schema,))
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.where.schema,)).fetchone()
            if not exists:
                if not create:
                    raise CollectionError(f"No collection {self.where.name!r} at {self.location}; create it with "
                                          f"`spanqa ingest PATH --collection '{self.where.url}'`")
                return self._create(conn, chunking)
            meta = dict(conn.execute(self.sql("SELECT key, value FROM {s}.meta WHERE key IN "
                                               "('schema_version', 'manifest')")).fetchall())
        check_version(int(meta.get("schema_version", 0)), self.where)
        return json.loads(meta["manifest"])

    def _create(self, conn, chunking: ChunkingSettings) -> dict:
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except Exception as exc:
            raise CollectionError(f"The pgvector extension is not available in {self.location} ({exc}). Install "
                                  "pgvector on the server, or have a superuser run CREATE EXTENSION vector.") from exc
        manifest = new_manifest(self.embedder, chunking)
        for statement in CREATE:
            conn.execute(self.sql(statement.replace("{dimension}", str(int(self.embedder.dimension))),
                                   config=TEXT_SEARCH_CONFIG, m=self.settings.pg_hnsw_m,
                                   ef_construction=self.settings.pg_hnsw_ef_construction))
        conn.execute(self.sql("INSERT INTO {s}.meta(key, value) VALUES ('schema_version', %s), ('manifest', %s), "
                               "('passages', '0')"), (str(SCHEMA_VERSION), json.dumps(manifest)))
        return manifest

    def drop(self) -> None:
        """Delete the whole collection (its schema) from the database."""
        with self._connection(write=True) as conn:
            conn.execute(self.sql("DROP SCHEMA {s} CASCADE"))
        self.close()

    # --- storage primitives (see CollectionBase) -----------------------------------------------------

    def _stored_hash(self, document_id: str) -> str | None:
        with self._connection() as conn:
            row = conn.execute(self.sql("SELECT hash FROM {s}.documents WHERE id = %s"), (document_id,)).fetchone()
        return row[0] if row else None

    def commit_document(self, document: Document, passages: list[Passage], vectors: np.ndarray) -> None:
        """Replace `document` in one transaction, its passages written by one binary COPY. A document already
        stored with the same content hash is left as it is: a retried write (a Ray task run again after its
        worker died) or a concurrent writer of the same file adds nothing twice."""
        if len(passages) != len(vectors):
            raise InputError("one vector per passage is required")
        pages = json.dumps([[p.number, p.start, p.end] for p in document.pages])
        with self._connection(write=True) as conn:
            stored = conn.execute(self.sql("SELECT hash FROM {s}.documents WHERE id = %s"),
                                  (document.id,)).fetchone()
            if stored is not None and stored[0] == document.hash:
                ids = self._stored_passage_ids(conn, document.id)
            else:
                removed = self._delete_rows(conn, document.id)
                conn.execute(self.sql("INSERT INTO {s}.documents(id, source, title, hash, text, pages, added) "
                                       "VALUES (%s, %s, %s, %s, %s, %s, %s)"),
                             (document.id, document.source, document.title, document.hash, document.text, pages,
                              time.time()))
                if (original := self.original_to_keep(document)) is not None:
                    conn.execute(self.sql("INSERT INTO {s}.originals(document_id, content) VALUES (%s, %s)"),
                                 (document.id, original))
                ids = self._copy_passages(conn, document.id, passages, vectors)
                self._count_passages(conn, len(passages) - removed)
        for passage, passage_id in zip(passages, ids, strict=True):
            passage.id = int(passage_id)

    def _copy_passages(self, conn, document_id: str, passages: list[Passage], vectors: np.ndarray) -> list[int]:
        """Write passages with one binary COPY (ids drawn from the table's sequence first, since COPY returns
        none): measured by `python -m bench ingest-scale` as the write path's rate."""
        if not passages:
            return []
        ids = [row[0] for row in conn.execute(self.sql(
            "SELECT nextval(pg_get_serial_sequence({table}, 'id')) FROM generate_series(1, %s)",
            table=f"{self.where.schema}.passages"), (len(passages),)).fetchall()]
        with conn.cursor() as cursor, cursor.copy(self.sql(
                'COPY {s}.passages (id, document_id, idx, start, "end", page, text, embedding) '
                "FROM STDIN WITH (FORMAT BINARY)")) as copy:
            copy.set_types(["bigint", "text", "integer", "integer", "integer", "integer", "text", "vector"])
            for passage_id, passage, vector in zip(ids, passages, vectors, strict=True):
                copy.write_row((passage_id, document_id, passage.index, passage.start, passage.end, passage.page,
                                passage.text, np.asarray(vector, dtype=np.float32)))
        return ids

    def _stored_passage_ids(self, conn, document_id: str) -> list[int]:
        rows = conn.execute(self.sql("SELECT id FROM {s}.passages WHERE document_id = %s ORDER BY idx"),
                            (document_id,)).fetchall()
        return [int(r[0]) for r in rows]

    def _delete_rows(self, conn, document_id: str) -> int:
        """Delete a document (its passages cascade); returns how many passages went with it."""
        removed = conn.execute(self.sql("SELECT count(*) FROM {s}.passages WHERE document_id = %s"),
                               (document_id,)).fetchone()[0]
        conn.execute(self.sql("DELETE FROM {s}.documents WHERE id = %s"), (document_id,))
        return int(removed)

    def _count_passages(self, conn, delta: int) -> None:
        # The count lives in meta, updated in the writer's transaction: len() must not scan a million rows.
        if delta:
            conn.execute(self.sql("UPDATE {s}.meta SET value = (value::bigint + %s)::text WHERE key = 'passages'"),
                         (delta,))

    @contextmanager
    def sync_guard(self) -> Iterator[None]:
        """A session advisory lock, on a connection of its own, for a whole sync: PostgreSQL drops it with the
        session, so a killed sync never blocks the next one (the write lock is per transaction)."""
        import psycopg

        try:
            conn = psycopg.connect(self.where.conninfo, autocommit=True, **self._connect_kwargs)
        except psycopg.OperationalError as exc:
            raise self._unreachable(exc) from exc
        key = f"{self.where.schema}:sync"
        with conn:
            if not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()[0]:
                raise CollectionError(f"Another sync of {self.location} is running; run this one when it has "
                                      "finished")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    def _remove(self, document_id: str) -> None:
        with self._connection(write=True) as conn:
            self._count_passages(conn, -self._delete_rows(conn, document_id))

    def ranked(self, query: str, vector: np.ndarray | None, mode: str, pool: int) -> Ranked:
        ranked: Ranked = {}
        with self._connection() as conn:
            if mode != "bm25":
                # HNSW returns at most ef_search rows: widen the beam to the pool (pgvector's ceiling is 1000).
                ef_search = min(1000, max(self.settings.pg_hnsw_ef_search, pool))
                conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                rows = conn.execute(self.sql("SELECT id, 1 - (embedding <=> %s) FROM {s}.passages "
                                              "ORDER BY embedding <=> %s LIMIT %s"),
                                    (vector, vector, pool)).fetchall()
                ranked["dense"] = [(int(i), float(score)) for i, score in rows]
            if mode != "dense":
                # plainto_tsquery stems and drops stop words; turning its ANDs into ORs ranks passages that share
                # some of the question's words, as BM25 does, instead of only those that share all of them. Equal
                # ranks are common; they are ordered by document and position, not by id, so the order in which
                # documents were written (one process, or Ray's workers) never changes the results.
                rows = conn.execute(self.sql(
                    "WITH q AS (SELECT replace(plainto_tsquery({config}, %s)::text, ' & ', ' | ')::tsquery AS q) "
                    "SELECT p.id, ts_rank(p.lexemes, q.q, 1) AS r FROM {s}.passages p, q "
                    "WHERE p.lexemes @@ q.q ORDER BY r DESC, p.document_id, p.idx LIMIT %s",
                    config=TEXT_SEARCH_CONFIG),
                    (query, pool)).fetchall()
                ranked["bm25"] = [(int(i), float(score)) for i, score in rows]
        return ranked

    def _passages(self, ids: list[int]) -> dict[int, Passage]:
        if not ids:
            return {}
        with self._connection() as conn:
            rows = conn.execute(self.sql(
                'SELECT p.id, p.document_id, d.source, p.text, p.start, p."end", p.page, p.idx, d.title '
                "FROM {s}.passages p JOIN {s}.documents d ON d.id = p.document_id WHERE p.id = ANY(%s)"),
                ([int(i) for i in ids],)).fetchall()
        return {row[0]: Passage(row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[0], row[8])
                for row in rows}

    def _passage_ids(self, document_id: str) -> list[int]:
        with self._connection() as conn:
            return self._stored_passage_ids(conn, document_id)

    def _vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        with self._connection() as conn:
            rows = conn.execute(self.sql("SELECT id, embedding FROM {s}.passages WHERE id = ANY(%s)"),
                                ([int(i) for i in ids],)).fetchall()
        return {int(i): np.asarray(v, dtype=np.float32) for i, v in rows}

    def _get_meta(self, key: str) -> str | None:
        with self._connection() as conn:
            row = conn.execute(self.sql("SELECT value FROM {s}.meta WHERE key = %s"), (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        with self._connection(write=True) as conn:
            conn.execute(self.sql("INSERT INTO {s}.meta(key, value) VALUES (%s, %s) "
                                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value"), (key, value))

    # --- the rest of the Collection protocol ------------------------------------------------------------

    def add_feedback(self, feedback: Feedback) -> int:
        with self._connection() as conn:
            row = conn.execute(self.sql(
                "INSERT INTO {s}.feedback(created, question, answer, source, passage_id, score, rating, route) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"),
                (time.time(), feedback.question, feedback.answer, feedback.source, feedback.passage_id,
                 feedback.score, int(feedback.rating), feedback.route)).fetchone()
        return int(row[0])

    def feedback(self) -> list[Feedback]:
        with self._connection() as conn:
            rows = conn.execute(self.sql("SELECT question, answer, source, rating, passage_id, score, route "
                                          "FROM {s}.feedback ORDER BY id")).fetchall()
        return [Feedback(*row) for row in rows]

    def documents(self) -> list[DocumentInfo]:
        with self._connection() as conn:
            rows = conn.execute(self.sql(
                "SELECT d.id, d.source, d.title, d.hash, count(p.id), length(d.text), d.added FROM {s}.documents d "
                "LEFT JOIN {s}.passages p ON p.document_id = d.id GROUP BY d.id ORDER BY d.added")).fetchall()
        return [DocumentInfo(*row) for row in rows]

    def document(self, document_id: str) -> Document | None:
        with self._connection() as conn:
            row = conn.execute(self.sql("SELECT id, source, title, hash, text, pages FROM {s}.documents "
                                         "WHERE id = %s"), (document_id,)).fetchone()
        if row is None:
            return None
        doc_id, source, title, hash_, text, pages = row
        return Document(source=source, text=text, pages=[PageSpan(*p) for p in pages], title=title, id=doc_id,
                        hash=hash_)

    def original(self, document_id: str) -> bytes | None:
        with self._connection() as conn:
            row = conn.execute(self.sql("SELECT content FROM {s}.originals WHERE document_id = %s"),
                               (document_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def __len__(self) -> int:
        return int(self._get_meta("passages") or 0)

    def integrity_problems(self) -> list[str]:
        problems = []
        with self._connection() as conn:
            counted = conn.execute(self.sql("SELECT count(*) FROM {s}.passages")).fetchone()[0]
            invalid = conn.execute(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND NOT i.indisvalid",
                (self.where.schema,)).fetchall()
        recorded = len(self)
        if counted != recorded:
            problems.append(f"the passage count in meta ({recorded}) differs from the table ({counted})")
        problems += [f"index {name} is invalid; run REINDEX INDEX {self.where.schema}.{name}" for (name,) in invalid]
        return problems


def replace_collection(url: str, embedder: Embedder, settings: PostgresSettings | None = None):
    """Re-embed every document of a collection for `embedder` into a staging collection, then swap it in under
    the collection's name in one transaction: readers see the old collection until the new one is complete."""
    import psycopg
    from psycopg import sql
    from spanqa.retriever.loaders import LoadReport

    where = PostgresLocation(url)
    documents = read_documents(where, settings)
    staging = PostgresCollection(where.with_name(f"{where.name[:37]}_reindexing"), embedder=embedder,
                                 settings=settings)
    try:
        report = staging.add_documents(LoadReport(documents=documents))
        with staging._connection(write=True) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (where.schema,))
            conn.execute(sql.SQL("DROP SCHEMA {old} CASCADE").format(old=sql.Identifier(where.schema)))
            conn.execute(sql.SQL("ALTER SCHEMA {new} RENAME TO {old}").format(
                new=sql.Identifier(staging.where.schema), old=sql.Identifier(where.schema)))
    except (psycopg.Error, CollectionError):
        staging.drop()
        raise
    staging.close()
    return report



"""A PostgreSQL collection's schema: the tables a new collection is created with, its version, and the migrations
`spanqa migrate` applies in one transaction to a collection an older spanqa made.

    meta        schema_version, manifest (embedder, dimension, probe, chunking), passage count, settings
    documents   id, source, title, hash, text, pages
    passages    offsets, page, text, embedding vector(d) [HNSW, cosine], lexemes tsvector [GIN]
    originals   each document's file as it was read (bytea; dropped with its document)
    feedback    thumbs-up/down with what was rated
"""

from __future__ import annotations

from spanqa.retriever.postgres_location import PostgresLocation
from spanqa.retriever.records import Document, PageSpan

from spanqa.errors import CollectionError
from spanqa.settings import PostgresSettings

__all__ = ["CREATE", "MIGRATIONS", "SCHEMA_VERSION", "TEXT_SEARCH_CONFIG", "check_version", "migrate",
           "read_documents"]

SCHEMA_VERSION = 2
_ORIGINALS = """CREATE TABLE {s}.originals (document_id text PRIMARY KEY REFERENCES {s}.documents(id) ON DELETE CASCADE,
    content bytea NOT NULL)"""
# Statements that take a collection from version v-1 to v ({s} is the collection's schema). Version 1 is the
# first creation script; `spanqa migrate` applies what a collection lacks, and CREATE makes the latest at once.
MIGRATIONS: dict[int, list[str]] = {2: [_ORIGINALS]}
TEXT_SEARCH_CONFIG = "english"

CREATE = [
    "CREATE SCHEMA {s}",
    "CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE {s}.documents (id text PRIMARY KEY, source text NOT NULL, title text NOT NULL,
        hash text NOT NULL, text text NOT NULL, pages jsonb NOT NULL, added double precision NOT NULL)""",
    """CREATE TABLE {s}.passages (id bigserial PRIMARY KEY,
        document_id text NOT NULL REFERENCES {s}.documents(id) ON DELETE CASCADE,
        idx integer NOT NULL, start integer NOT NULL, "end" integer NOT NULL, page integer NOT NULL,
        text text NOT NULL, embedding vector({dimension}) NOT NULL,
        lexemes tsvector GENERATED ALWAYS AS (to_tsvector({config}, text)) STORED)""",
    "CREATE INDEX passages_document ON {s}.passages (document_id)",
    """CREATE INDEX passages_embedding ON {s}.passages USING hnsw (embedding vector_cosine_ops)
        WITH (m = {m}, ef_construction = {ef_construction})""",
    "CREATE INDEX passages_lexemes ON {s}.passages USING gin (lexemes)",
    """CREATE TABLE {s}.feedback (id bigserial PRIMARY KEY, created double precision NOT NULL,
        question text NOT NULL, answer text NOT NULL, source text NOT NULL, passage_id bigint, score real,
        rating integer NOT NULL, route text NOT NULL DEFAULT 'documents')""",
    _ORIGINALS,
]


def check_version(found: int, where: PostgresLocation) -> None:
    if found < SCHEMA_VERSION:
        raise CollectionError(f"Collection {where.name!r} at {where.shown} has schema version {found}; this spanqa "
                              f"needs version {SCHEMA_VERSION}. Upgrade it in place with `spanqa migrate "
                              f"--collection '{where.url}'`.")
    if found > SCHEMA_VERSION:
        raise CollectionError(f"Collection {where.name!r} at {where.shown} has schema version {found}, newer than "
                              f"this spanqa understands ({SCHEMA_VERSION}); upgrade spanqa.")


def migrate(url: str, settings: PostgresSettings | None = None) -> tuple[int, int]:
    """Bring a collection's schema up to SCHEMA_VERSION in one transaction; returns (from, to) versions."""
    import psycopg
    from psycopg import sql

    where = PostgresLocation(url)
    settings = settings or PostgresSettings()
    try:
        conn = psycopg.connect(where.conninfo, connect_timeout=max(1, round(settings.pg_connect_timeout_s)))
    except psycopg.Error as exc:
        raise CollectionError(f"PostgreSQL at {where.shown} is not reachable ({exc}).") from exc
    schema = sql.Identifier(where.schema)
    try:
        with conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (where.schema,))
            row = conn.execute(sql.SQL("SELECT value FROM {s}.meta WHERE key = 'schema_version'").format(s=schema))
            found = int(row.fetchone()[0])
            if found > SCHEMA_VERSION:
                check_version(found, where)
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    conn.execute(sql.SQL(statement).format(s=schema))
            conn.execute(sql.SQL("UPDATE {s}.meta SET value = %s WHERE key = 'schema_version'").format(s=schema),
                         (str(SCHEMA_VERSION),))
    except psycopg.errors.UndefinedTable as exc:
        raise CollectionError(f"No collection {where.name!r} at {where.shown}") from exc
    finally:
        conn.close()
    return found, SCHEMA_VERSION


def read_documents(where: PostgresLocation, settings: PostgresSettings | None) -> list[Document]:
    """Every document of a collection with its original, read without the embedder check (for re-embedding it)."""
    import psycopg
    from psycopg import sql

    settings = settings or PostgresSettings()
    try:
        with psycopg.connect(where.conninfo, connect_timeout=max(1, round(settings.pg_connect_timeout_s))) as conn:
            rows = conn.execute(sql.SQL("SELECT d.id, d.source, d.title, d.hash, d.text, d.pages, o.content FROM "
                                        "{s}.documents d LEFT JOIN {s}.originals o ON o.document_id = d.id "
                                        "ORDER BY d.added").format(s=sql.Identifier(where.schema))).fetchall()
    except psycopg.errors.UndefinedTable as exc:
        raise CollectionError(f"No collection {where.name!r} at {where.shown}") from exc
    except psycopg.Error as exc:
        raise CollectionError(f"PostgreSQL at {where.shown} failed: {exc}") from exc
    return [Document(source=s, text=t, pages=[PageSpan(*p) for p in pages], title=title, id=i, hash=h,
                     original=None if o is None else bytes(o)) for i, s, title, h, t, pages, o in rows]

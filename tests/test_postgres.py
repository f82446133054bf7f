"""What only the PostgreSQL backend has: a server that can be down, a schema with versions, replicas in other
processes, and LangChain's own PGVector store as a passage source — all against a real PostgreSQL + pgvector.

(Everything a collection must do is in test_collection_conformance.py, which runs against PostgreSQL too.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers import CORPUS, SpanqaEmbeddings, make_pdf, wait_until_ready
from spanqa.retriever.postgres_location import PostgresLocation
from spanqa.retriever.records import document_id_for

from spanqa.errors import CollectionError, InputError
from spanqa.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
SPANQA = str(Path(sys.executable).parent / "spanqa")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_down_is_a_clear_error_not_a_hang(embedder):
    from spanqa.retriever import PostgresCollection

    started = time.monotonic()
    with pytest.raises(CollectionError, match=r"not reachable.*Start the server") as error:
        PostgresCollection(f"postgresql://spanqa:s3cret@127.0.0.1:{_free_port()}/spanqa?collection=x",
                           embedder=embedder)
    assert time.monotonic() - started < 10
    assert "s3cret" not in str(error.value) and "spanqa:***@" in str(error.value)


def test_a_server_that_goes_down_and_comes_back(postgres_server, embedder):
    # A server of its own, to take down; postgres_server only for its skip where this CPU cannot run pgvector.
    from local_postgres import running_postgres
    from spanqa.retriever import PostgresCollection

    from spanqa.settings import PostgresSettings

    with running_postgres() as server:
        collection = PostgresCollection(server.url() + "?collection=flaky", embedder=embedder,
                                        settings=PostgresSettings(pg_connect_timeout_s=2))
        collection.ingest_bytes([("tower.txt", CORPUS["tower.txt"].encode())])
        server.stop(mode="immediate")
        started = time.monotonic()
        with pytest.raises(CollectionError, match="not reachable"):
            collection.search("How tall is the tower?", k=1)
        assert time.monotonic() - started < 15
        server.start()
        assert collection.search("How tall is the tower?", k=1)[0].passage.source == "tower.txt"
        collection.close()


def test_bad_collection_names_are_refused_before_connecting():
    from spanqa.retriever.postgres import PostgresLocation

    for url in ("postgresql://h/db?collection=Drop Table", "postgresql://h/db?collection=", "mysql://h/db"):
        with pytest.raises(InputError):
            PostgresLocation(url)
    where = PostgresLocation("postgresql://u:pw@h:5/db?sslmode=require&collection=manuals")
    assert where.schema == "spanqa_manuals" and "collection" not in where.conninfo and "sslmode" in where.conninfo
    assert where.shown == "postgresql://u:***@h:5/db?sslmode=require&collection=manuals"


def test_a_version_1_collection_is_refused_until_spanqa_migrate_then_keeps_originals(postgres_url, embedder,
                                                                                     monkeypatch):
    import psycopg
    from spanqa.retriever import PostgresCollection
    from spanqa.retriever import postgres_schema as schema

    collection = PostgresCollection(postgres_url, embedder=embedder)
    collection.ingest_bytes([("tower.txt", CORPUS["tower.txt"].encode())])
    schema_name = collection.where.schema
    collection.close()
    with psycopg.connect(PostgresLocation(postgres_url).conninfo) as conn:  # as spanqa 0.3 left it: no originals
        conn.execute(f"DROP TABLE {schema_name}.originals")
        conn.execute(f"UPDATE {schema_name}.meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(CollectionError, match=r"schema version 1.*needs version 2.*spanqa migrate"):
        PostgresCollection(postgres_url, embedder=embedder, create=False)
    from spanqa.plugin.doors.cli import main

    assert main(["migrate", "--collection", postgres_url]) == 0
    collection = PostgresCollection(postgres_url, embedder=embedder, create=False)
    assert collection.integrity_problems() == [] and len(collection.documents()) == 1
    pdf = make_pdf(["The Eiffel Tower is 330 metres tall."])
    collection.ingest_bytes([("tower.pdf", pdf)])
    assert collection.original(document_id_for("tower.pdf")) == pdf
    collection.close()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 1)
    with pytest.raises(CollectionError, match="newer than this spanqa"):
        PostgresCollection(postgres_url, embedder=embedder, create=False)


def test_reindex_re_embeds_into_a_new_schema_and_swaps_it_in(postgres_url, embedder):
    from spanqa.plugin.engine.collections import reindex_collection
    from spanqa.retriever import PostgresCollection

    collection = PostgresCollection(postgres_url, embedder=embedder)
    collection.ingest_bytes([(name, text.encode()) for name, text in CORPUS.items()])
    collection.close()
    message = reindex_collection(postgres_url, Settings(), embedder=embedder.location)
    assert f"{len(CORPUS)} added" in message
    reopened = PostgresCollection(postgres_url, embedder=embedder, create=False)
    assert len(reopened.documents()) == len(CORPUS) and reopened.integrity_problems() == []
    assert reopened.search("How tall is the Eiffel Tower?", k=1)[0].passage.source == "tower.txt"
    reopened.close()


def _serve(url: str, home: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "SPANQA_HOME": str(home)}
    process = subprocess.Popen([SPANQA, "serve", "--collection", url, "--port", str(port)], env=env,
                               stderr=subprocess.PIPE, text=True)
    return process, f"http://127.0.0.1:{port}"


@pytest.mark.slow
def test_two_replicas_share_one_collection(postgres_url, tmp_path, embedder):
    """Ingest through one `spanqa serve`, answer from another; delete through the first, never cited again."""
    from spanqa.retriever import PostgresCollection

    PostgresCollection(postgres_url, embedder=embedder).close()  # created empty, as an operator would
    replicas = [_serve(postgres_url, tmp_path / f"home{i}") for i in range(2)]
    try:
        for process, base in replicas:
            wait_until_ready(process, base)
        (_, writer), (_, reader) = replicas
        question = {"question": "When was the Eiffel Tower completed?"}
        before = httpx.post(f"{reader}/v1/ask", json=question, timeout=60).json()
        assert before["abstained"]
        files = [("files", ("tower.txt", CORPUS["tower.txt"].encode(), "text/plain"))]
        uploaded = httpx.post(f"{writer}/v1/documents", files=files, timeout=120).json()
        assert uploaded["added"] == ["tower.txt"]
        answer = httpx.post(f"{reader}/v1/ask", json=question, timeout=60).json()
        assert not answer["abstained"] and "1889" in answer["answers"][0]["text"]
        assert answer["answers"][0]["source"] == "tower.txt"
        document_id = httpx.get(f"{reader}/v1/documents", timeout=30).json()["documents"][0]["document_id"]
        assert httpx.delete(f"{writer}/v1/documents/{document_id}", timeout=60).status_code == 204
        after = httpx.post(f"{reader}/v1/ask", json=question, timeout=60).json()
        assert after["abstained"] and all(a["source"] != "tower.txt" for a in after["answers"])
        assert all(p["source"] != "tower.txt" for p in after["passages"])
    finally:
        for process, _ in replicas:
            process.terminate()
            process.wait(timeout=30)


def _langchain_documents():
    from langchain_core.documents import Document

    return [Document(page_content=text, metadata={"source": f"manuals/{name}", "page": 2, "start_index": 0})
            for name, text in CORPUS.items()]


def _check_answers_from(store, embedder, reader) -> None:
    from spanqa.plugin.engine.assistant import Assistant

    assistant = Assistant(retriever=store.as_retriever(search_kwargs={"k": 3}), reader=reader)
    response = assistant.answer("When was the Eiffel Tower completed?")
    assert not response.abstained and "1889" in response.answers[0].text
    best = response.answers[0]
    assert best.source == "manuals/tower.txt" and best.page == 3  # LangChain's 0-based page 2 is page 3
    assert CORPUS["tower.txt"][best.start:best.end] == best.text
    unrelated = assistant.answer("What is the capital of Mongolia?")
    assert unrelated.abstained
    with pytest.raises(CollectionError, match="does not write"):
        assistant.collection.ingest_bytes([("x.txt", b"x")])


@pytest.fixture(scope="module")
def reader():
    from spanqa.plugin.engine.reader import Reader

    return Reader()


def test_langchain_pgvector_store_as_the_passage_source(postgres_server, embedder, reader):
    from langchain_postgres import PGVector

    url = postgres_server.url("spanqa").replace("postgresql://", "postgresql+psycopg://")
    store = PGVector(embeddings=SpanqaEmbeddings(embedder), collection_name="manuals", connection=url,
                     use_jsonb=True)
    store.add_documents(_langchain_documents())
    _check_answers_from(store, embedder, reader)


def test_langchain_in_memory_store_as_the_passage_source(embedder, reader):
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(SpanqaEmbeddings(embedder))
    store.add_documents(_langchain_documents())
    _check_answers_from(store, embedder, reader)

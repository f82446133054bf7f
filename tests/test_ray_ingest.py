"""Ingestion on a real two-node Ray cluster (a head and a second node of 1 CPU each, started on this machine and
stopped afterwards): the same result as one process, into an embedded collection and into PostgreSQL; a worker
killed mid-run; re-runs that add nothing; and the errors for an unreachable cluster and a missing extra."""

from __future__ import annotations

import builtins
import json
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
from spanqa.retriever.collection import LocalCollection
from spanqa.retriever.postgres import PostgresCollection

from spanqa.errors import CollectionError, InputError
from spanqa.settings import PACKAGE_ROOT, Settings

QUERIES = ["How do I ingest files into a collection?", "What does the answer threshold do?",
           "Which port does the server listen on?", "How are follow-up questions resolved?",
           "What happens when the reader abstains?"]
CORPUS_FILES = ["answers.md", "conversations.md", "response.md", "speed.md"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A few of spanqa's own documents, and three files no worker can ingest (each skipped with its reason)."""
    root = tmp_path_factory.mktemp("corpus")
    for name in CORPUS_FILES:
        shutil.copy(PACKAGE_ROOT / "docs" / name, root / name)
    (root / "blob.txt").write_bytes(b"\x00\x01\x02" * 100)
    (root / "empty.md").write_text("   \n")
    (root / "table.pdf").write_bytes(b"not a pdf at all")
    return root


@pytest.fixture(scope="module")
def cluster():
    import importlib.util

    from local_ray import two_node_ray

    if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads its token when first imported
        pytest.skip("Ray is not installed (pip install 'spanqa[ray]')")
    with two_node_ray(cpus=1, nodes=2) as address:
        yield address


@pytest.fixture(scope="module")
def single_process(corpus, embedder, tmp_path_factory):
    """The reference: the same files ingested in this process, as spanqa always has."""
    collection = LocalCollection(tmp_path_factory.mktemp("single") / "c", embedder=embedder)
    report = collection.ingest([corpus])
    yield collection, report
    collection.close()


def _passages(collection) -> dict[tuple[str, int], tuple]:
    """(document id, index) → (start, end, page, text) of every stored passage, and its vector."""
    out = {}
    for info in collection.documents():
        for passage_id in collection._passage_ids(info.id):
            passage = collection._passages([passage_id])[passage_id]
            out[info.id, passage.index] = (passage.start, passage.end, passage.page, passage.text,
                                           collection._vectors([passage_id])[passage_id])
    return out


def assert_same_collection(got, expected, searched_like=None) -> None:
    """Same documents, passages, offsets and pages; vectors equal to cosine >= 0.9999; the same best passage and
    the same top-10 as `searched_like` (default `expected`: a collection of the same backend), but for one passage
    at the edge: passages whose BM25 scores tie are ranked by their ids, which each collection assigns in the order
    its documents were committed (on Ray, the order the workers finish), and a swapped tie moves the fused order."""
    searched_like = searched_like or expected
    documents = {(d.id, d.source, d.title, d.hash, d.passages) for d in got.documents()}
    assert documents == {(d.id, d.source, d.title, d.hash, d.passages) for d in expected.documents()}
    ours, theirs = _passages(got), _passages(expected)
    assert ours.keys() == theirs.keys()
    for key, (start, end, page, text, vector) in ours.items():
        assert (start, end, page, text) == theirs[key][:4]
        assert float(vector @ theirs[key][4]) >= 0.9999
    for query in QUERIES:
        ours = [(h.passage.document_id, h.passage.index) for h in got.search(query, k=10)]
        theirs = [(h.passage.document_id, h.passage.index) for h in searched_like.search(query, k=10)]
        assert ours[0] == theirs[0] and len(set(ours) ^ set(theirs)) <= 2, (query, ours, theirs)


def test_the_cli_ingests_on_the_cluster_as_one_process_does(cluster, corpus, single_process, tmp_path, capsys,
                                                            embedder):
    from spanqa.plugin.doors.cli import main

    reference, reference_report = single_process
    location = tmp_path / "on-ray"
    assert main(["ingest", str(corpus), "--collection", str(location), "--ray", cluster, "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert sorted(report["added"]) == sorted(reference_report.added)
    assert report["passages"] == reference_report.passages
    # The files no worker could read are skipped with the reasons one process gives, and said at the end.
    assert sorted((s["source"], s["reason"]) for s in report["skipped"]) == sorted((s.source, s.reason) for s in reference_report.skipped)
    assert all(f"skipped {s.source}" in err for s in reference_report.skipped)
    collection = LocalCollection(location, embedder=embedder)
    assert_same_collection(collection, reference)
    assert collection.integrity_problems() == []
    # The same ingest again adds nothing and embeds nothing.
    again = collection.ingest([corpus], ray=cluster, settings=Settings())
    assert (again.added, again.updated, again.passages) == ([], [], 0)
    assert sorted(again.unchanged) == sorted(reference_report.added)
    collection.close()


@pytest.fixture
def single_process_postgres(corpus, embedder, postgres_url):
    """The reference for what depends on the backend (PostgreSQL's lexical ranking is its own): the same files
    ingested into PostgreSQL in this process."""
    from spanqa.retriever.postgres import PostgresLocation

    collection = PostgresCollection(PostgresLocation(postgres_url).with_name("single_" + postgres_url[-8:]),
                                    embedder=embedder)
    collection.ingest([corpus])
    yield collection
    collection.drop()


def test_workers_write_postgres_and_a_worker_killed_mid_run_leaves_no_half_or_duplicate_document(
        cluster, corpus, single_process, single_process_postgres, postgres_url, embedder):
    """The workers write PostgreSQL themselves. kill -9 of the embedding actor after the first document is written:
    Ray restarts it and retries, and the run completes; or it fails with a clear message and the same ingest again
    completes. Either way the collection is what one process makes: every document whole and once."""
    from local_ray import ray_processes

    reference, reference_report = single_process
    collection = PostgresCollection(postgres_url, embedder=embedder)
    settings = Settings(ray_batch_documents=1, ray_workers=1)  # one document per batch: the kill lands mid-run
    outcome: dict = {}

    def ingest() -> None:
        try:
            outcome["report"] = collection.ingest([corpus], ray=cluster, settings=settings)
        except CollectionError as exc:
            outcome["error"] = exc

    runner = threading.Thread(target=ingest)
    runner.start()
    deadline = time.monotonic() + 240
    killed = []
    while runner.is_alive() and time.monotonic() < deadline and not killed:
        if collection.documents():
            for pid in ray_processes("EmbedWorker"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)
    runner.join(300)
    assert killed, "the run ended before a worker could be killed"
    if "error" in outcome:
        assert "run the same ingest again" in str(outcome["error"])
        outcome["report"] = collection.ingest([corpus], ray=cluster, settings=settings)
    assert collection.integrity_problems() == []
    assert len(collection) == reference_report.passages
    assert_same_collection(collection, reference, searched_like=single_process_postgres)
    collection.close()


def test_an_unreachable_cluster_is_a_clear_error_within_the_time_limit(tmp_path, embedder):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    collection = LocalCollection(tmp_path / "c", embedder=embedder)
    (tmp_path / "a.md").write_text("The default port is 8765.")
    started = time.monotonic()
    with pytest.raises(CollectionError, match=f"Ray cluster at 127.0.0.1:{port} is not reachable within 2 s"):
        collection.ingest([tmp_path / "a.md"], ray=f"127.0.0.1:{port}", settings=Settings(ray_connect_timeout_s=2))
    assert time.monotonic() - started < 10
    with pytest.raises(InputError, match="give host:port"):
        collection.ingest([tmp_path / "a.md"], ray="ray://nowhere", settings=Settings())
    assert len(collection) == 0  # nothing written by a run that never started
    collection.close()


def test_without_ray_installed_the_error_names_the_extra(monkeypatch, tmp_path, capsys):
    from spanqa.plugin.doors.cli import main

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    (tmp_path / "a.md").write_text("The default port is 8765.")
    assert main(["ingest", str(tmp_path / "a.md"), "--collection", str(tmp_path / "c"), "--ray"]) == 2
    assert "pip install 'spanqa[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_vectors_agree_with_one_process_whatever_the_batch(embedder):
    """The premise of the equality above: a passage's vector does not depend on what it was batched with."""
    texts = ["spanqa answers questions.", "A much longer passage " * 20, "short"]
    together = embedder.encode(texts)
    alone = np.vstack([embedder.encode([t]) for t in texts])
    assert np.min(np.sum(together * alone, axis=1)) >= 0.9999


def test_a_sync_embeds_on_the_cluster_what_changed(cluster, corpus, tmp_path, embedder, capsys):
    from spanqa.plugin.doors.cli import main

    folder = tmp_path / "docs"
    shutil.copytree(corpus, folder)
    location = tmp_path / "synced-on-ray"
    assert main(["sync", str(folder), "--collection", str(location), "--ray", cluster, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["added"] == len(CORPUS_FILES) and first["skipped"] == 3
    (folder / "speed.md").unlink()
    (folder / "answers.md").write_text("# Answers\n\nAn answer is a verbatim span of a passage, with its source.")
    assert main(["sync", str(folder), "--collection", str(location), "--ray", cluster, "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert (second["updated"], second["removed"], second["added"]) == (1, 1, 0)
    collection = LocalCollection(location, embedder=embedder)
    assert {d.source.rsplit("/", 1)[-1] for d in collection.documents()} == set(CORPUS_FILES) - {"speed.md"}
    assert collection.integrity_problems() == []
    collection.close()

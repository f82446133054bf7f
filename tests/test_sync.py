"""`spanqa sync` and `--watch` with real files, a real watcher and real processes: the command's report, a saved
file searchable without anyone running anything, a file that changes while it is read, and SIGKILL in the middle
of a sync. What a sync does to each backend is in the conformance suite (test_collection_conformance.py)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from crash_worker import document_text
from helpers import CORPUS, write_corpus
from spanqa.plugin.doors import administration
from spanqa.plugin.doors.administration import SyncJob
from spanqa.plugin.doors.cli import main

from spanqa.settings import Settings

pytestmark = pytest.mark.integration


def test_the_sync_command_reports_what_it_did_as_json(tmp_path, capsys):
    docs = write_corpus(tmp_path / "docs", CORPUS)
    collection = str(tmp_path / "collection")
    assert main(["sync", str(docs), "--collection", collection, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["added"], first["removed"], first["collection"]) == (len(CORPUS), 0, collection)
    (docs / "bread.txt").unlink()
    (docs / "tower.txt").rename(docs / "eiffel.txt")
    assert main(["sync", str(docs), "--collection", collection, "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert {k: second[k] for k in ("added", "updated", "removed", "renamed", "unchanged", "skipped")} == {
        "added": 0, "updated": 0, "removed": 1, "renamed": 1, "unchanged": len(CORPUS) - 2, "skipped": 0}
    assert second["files"]["renamed"][0]["to"].endswith("eiffel.txt") and second["passages"] == 0


def test_a_vanished_folder_is_refused_by_the_command_with_its_reason(tmp_path, capsys):
    docs = write_corpus(tmp_path / "docs", CORPUS)
    collection = str(tmp_path / "collection")
    assert main(["sync", str(docs), "--collection", collection]) == 0
    for path in docs.iterdir():
        path.unlink()
    assert main(["sync", str(docs), "--collection", collection]) != 0
    assert "--allow-empty-root" in capsys.readouterr().err


def test_a_file_that_changes_while_it_is_read_is_skipped_and_read_next_time(tmp_path, monkeypatch, embedder):
    from spanqa.retriever import LocalCollection, sync

    docs = write_corpus(tmp_path / "docs", {"note.txt": "The spare key is under the blue flowerpot."})
    collection = LocalCollection(tmp_path / "collection", embedder=embedder)
    real = sync.load_file

    def load_while_someone_saves(path, max_bytes):
        loaded = real(path, max_bytes)
        path.write_text("The spare key is now with the neighbour at number 12.")  # saved mid-read
        return loaded

    monkeypatch.setattr(sync, "load_file", load_while_someone_saves)
    report = collection.sync([docs])
    assert not report.added and "changed while it was read" in report.skipped[0].reason
    monkeypatch.setattr(sync, "load_file", real)
    assert [Path(s).name for s in collection.sync([docs]).added] == ["note.txt"]
    assert "neighbour" in collection.search("where is the spare key", k=1)[0].passage.text


def test_watching_a_folder_makes_a_saved_file_searchable(tmp_path):
    docs = write_corpus(tmp_path / "docs", CORPUS)
    location = tmp_path / "collection"
    job = SyncJob([str(docs)], str(location))
    outcomes: list = []
    stop = threading.Event()
    watcher = threading.Thread(target=administration.watch, args=(job, Settings(), outcomes.append, stop),
                               daemon=True)
    watcher.start()
    try:
        _wait_for(lambda: outcomes, "the first sync")
        (docs / "bees.md").write_text("# Bees\n\nA honey bee colony keeps exactly one queen.")
        saved = time.monotonic()
        _wait_for(lambda: any(getattr(o, "report", None) and o.report.added for o in outcomes[1:]), "the watcher")
        from spanqa.plugin.engine.collections import open_collection

        collection = open_collection(str(location))
        assert collection.search("how many queens in a colony", k=1)[0].passage.source.endswith("bees.md")
        print(f"\nsaved → searchable: {time.monotonic() - saved:.1f} s")
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert not watcher.is_alive()


def _wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.2)


_SYNC_WORKER = """
import sys
from spanqa.plugin.engine.collections import open_collection
collection = open_collection(sys.argv[1], create=True)
collection.embedder.warm_up()
print("ready", flush=True)
collection.sync([sys.argv[2]])
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_during_sync_leaves_a_collection_the_next_sync_completes(tmp_path, embedder, backend, request):
    from spanqa.plugin.engine.collections import open_collection

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"doc{i}.txt").write_text(document_text(i % 5, 0))
    location = request.getfixturevalue("postgres_url") if backend == "postgres" else str(tmp_path / "collection")
    rng = random.Random(4)
    for trial in range(1, 4):  # each trial moves the folder on, then kills a sync of it part way
        for i in rng.sample(range(12), 3):
            (docs / f"doc{i}.txt").write_text(document_text(i % 5, trial))
        victim = rng.choice(sorted(docs.iterdir()))
        victim.rename(docs / f"moved{trial}-{victim.name}")
        (docs / f"new{trial}.txt").write_text(document_text(trial % 5, 10 + trial))
        sorted(docs.iterdir())[0].unlink()
        worker = subprocess.Popen([sys.executable, "-c", _SYNC_WORKER, location, str(docs)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        time.sleep(rng.uniform(0.0, 1.0))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    collection = open_collection(location, embedder=embedder)
    collection.sync([docs])
    on_disk = {str(p.resolve()): p.read_text() for p in docs.iterdir()}
    stored = {d.source: collection.document(d.id).text for d in collection.documents()}
    assert stored == on_disk  # every file once, at its text; nothing that is gone
    assert collection.integrity_problems() == [] and not collection.sync([docs]).changed


def test_an_unreadable_folder_is_reported_and_its_documents_kept(tmp_path, monkeypatch, embedder):
    import os

    from spanqa.retriever import LocalCollection

    docs = write_corpus(tmp_path / "docs", {"open.txt": "The canteen opens at noon."})
    private = write_corpus(docs / "private", {"salaries.txt": "Salaries are paid on the 25th of each month."})
    collection = LocalCollection(tmp_path / "collection", embedder=embedder)
    assert len(collection.sync([docs]).added) == 2
    real = os.scandir

    def scandir(path="."):
        if isinstance(path, str | os.PathLike) and Path(path) == private:
            raise PermissionError(13, "Permission denied", str(private))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)  # what a folder the user may not read does to a walk
    (docs / "open.txt").write_text("The canteen opens at half past eleven.")
    report = collection.sync([docs])
    assert [Path(s).name for s in report.updated] == ["open.txt"] and not report.removed
    assert report.skipped[0].source == str(private) and "Permission denied" in report.skipped[0].reason
    assert {Path(d.source).name for d in collection.documents()} == {"open.txt", "salaries.txt"}

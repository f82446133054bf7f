"""Crash safety (SIGKILL during ingest) and concurrency (askers while another thread writes)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from crash_worker import DOCUMENTS, document_text, parse_version

WORKER = Path(__file__).with_name("crash_worker.py")
# Each trial starts a writer process (about 10 s: torch and the embedder load) and kills it at a random moment of its
# first 1.5 s of writing; 10 per backend keep the suite inside CI's time (20 took 7 minutes of a 30-minute run).
KILL_TRIALS = 10


def check_collection(location: str, embedder) -> int:
    """Open the collection after a crash: it must open, its stores must agree, and every document must be one
    whole version with exactly that version's passages. Returns the number of documents checked."""
    from spanqa.plugin.engine.collections import open_collection

    collection = open_collection(location, embedder=embedder)
    try:
        assert collection.integrity_problems() == []
        documents = collection.documents()
        for info in documents:
            document = collection.document(info.id)
            version = parse_version(document.text)
            assert version is not None, document.text[:80]
            assert document.text == document_text(*version)
            stored = sorted(collection._passages(collection._passage_ids(info.id)).values(), key=lambda p: p.index)
            expected = collection.chunker.split(document)
            assert [(p.start, p.end, p.text) for p in stored] == [(p.start, p.end, p.text) for p in expected]
        if documents:
            hits = collection.search("harbor lantern copper", k=5)
            assert hits and all(h.passage.text for h in hits)
        return len(documents)
    finally:
        collection.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_during_ingest_leaves_each_document_old_or_new_never_half(tmp_path, embedder, backend, request):
    path = request.getfixturevalue("postgres_url") if backend == "postgres" else str(tmp_path / "collection")
    rng = random.Random(8)
    killed_while_writing, checked = 0, 0
    for trial in range(KILL_TRIALS):
        worker = subprocess.Popen([sys.executable, str(WORKER), str(path), str(trial)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = worker.stdout.readline().strip()
        assert line == "ready", worker.stderr.read()
        time.sleep(rng.uniform(0.05, 1.5))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        killed_while_writing += worker.returncode == -signal.SIGKILL
        checked += check_collection(path, embedder)
    assert killed_while_writing == KILL_TRIALS  # every trial really died mid-loop, none exited on its own
    assert checked > KILL_TRIALS  # the writer got documents in, so the checks above had something to check
    print(f"\nSIGKILL trials: {KILL_TRIALS} survived; {checked} document states verified whole")


@pytest.mark.slow
@pytest.mark.integration
def test_eight_askers_while_another_thread_ingests_and_deletes(tmp_path, embedder):
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.retriever import LocalCollection

    collection = LocalCollection(tmp_path / "busy", embedder=embedder)
    collection.ingest_bytes([(f"doc{i}.txt", document_text(i, 0).encode()) for i in range(DOCUMENTS)])
    assistant = Assistant(collection)
    assistant.warm_up()
    passages_ever: dict[int, str] = {}  # every passage id that ever existed → its text
    deleted_at: dict[int, float] = {}  # passage id → when the call that deleted it had returned
    errors: list[BaseException] = []
    answers: list[tuple[float, object]] = []
    stop = threading.Event()
    writes = 0

    def record_passages() -> None:
        ids = collection.store.all_passage_ids()
        passages_ever.update({i: p.text for i, p in collection.store.passages(ids).items()})

    def writer() -> None:
        nonlocal writes
        rng, version = random.Random(1), 1
        try:
            record_passages()
            while not stop.is_set():
                index = rng.randrange(DOCUMENTS)
                before = set(collection.store.all_passage_ids())
                if rng.random() < 0.3:
                    collection.delete(f"doc{index}.txt")
                else:
                    collection.ingest_bytes([(f"doc{index}.txt", document_text(index, version).encode())])
                    version += 1
                now = time.perf_counter()
                record_passages()
                for gone in before - set(collection.store.all_passage_ids()):
                    deleted_at.setdefault(gone, now)
                writes += 1
        except BaseException as exc:  # noqa: BLE001 - any failure fails the test
            errors.append(exc)

    questions = ["What does the harbor lantern do?", "Which copper kettle is meant?", "hello!",
                 "Where is the glacier museum?", "thanks", "What is the tram version?"]

    def asker(seed: int) -> None:
        try:
            for q in random.Random(seed).sample(questions * 2, 6):
                started = time.perf_counter()
                response = assistant.respond(q) if seed % 2 else assistant.answer(q)
                answers.append((started, response))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    write_thread = threading.Thread(target=writer)
    write_thread.start()
    askers = [threading.Thread(target=asker, args=(seed,)) for seed in range(8)]
    for t in askers:
        t.start()
    for t in askers:
        t.join(timeout=600)
    stop.set()
    write_thread.join(timeout=120)

    assert not errors, errors
    assert len(answers) == 48 and writes > 0
    for started, response in answers:
        for answer in response.answers:
            assert answer.passage_id in passages_ever
            assert passages_ever[answer.passage_id][answer.start:answer.end] == answer.text
            # The passage still existed when the question was asked (a deletion that had finished before the
            # question started must never be cited).
            assert deleted_at.get(answer.passage_id, float("inf")) > started
    assert collection.integrity_problems() == []
    print(f"\nconcurrency: {len(answers)} answers by 8 threads while {writes} writes ran; no errors")

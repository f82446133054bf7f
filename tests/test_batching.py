"""Micro-batching: concurrent reads share `read_many` calls, each caller gets its own result, errors reach all."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from spanqa.plugin.engine.batching import BatchingReader
from spanqa.plugin.engine.reader import Answer, ReaderResult


class CountingReader:
    """Stands in for a Reader: answers each question with its own text, slowly, and records each batch."""

    threshold = 0.3

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def read_many(self, items, top_k=5, threshold=None):
        with self.lock:
            self.calls.append([q for q, _ in items])
        time.sleep(0.05)  # a forward pass: long enough for other callers to queue up behind it
        if self.fail:
            raise RuntimeError("the model is gone")
        return [ReaderResult([Answer(q, 0.9, 1.0, 0, 0, len(q), 0, len(q))], abstained=False) for q, _ in items]


def test_concurrent_reads_share_batches_and_each_gets_its_own_answer():
    reader = CountingReader()
    batching = BatchingReader(reader, window_ms=20, max_batch=8)
    questions = [f"question {i}" for i in range(24)]
    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda q: batching.read(q, []), questions))
    assert [r.best.text for r in results] == questions
    assert len(reader.calls) < len(questions) and max(len(c) for c in reader.calls) <= 8
    assert sorted(q for call in reader.calls for q in call) == sorted(questions)
    assert batching.threshold == 0.3  # everything else is the reader's own


def test_a_failed_batch_fails_every_caller_and_none_hangs():
    batching = BatchingReader(CountingReader(fail=True), window_ms=10, max_batch=4)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batching.read, f"q{i}", []) for i in range(6)]
        for future in futures:
            with pytest.raises(RuntimeError, match="gone"):
                future.result(timeout=10)


def test_a_lone_question_is_read_at_once():
    reader = CountingReader()
    started = time.perf_counter()
    BatchingReader(reader, window_ms=5, max_batch=16).read("alone", [])
    assert reader.calls == [["alone"]] and time.perf_counter() - started < 1.0

"""Micro-batching: concurrent requests share `respond_many` calls, each caller gets its own response, a batch's
failure reaches all its callers and one caller's bad input reaches that caller alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from spanqa.plugin.engine.batching import BatchingAssistant, MicroBatcher

from spanqa.errors import InputError


class CountingAssistant:
    """Stands in for an Assistant: answers each message with its own text, slowly, and records each batch."""

    settings = "the assistant's own"

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail = fail
        self.lock = threading.Lock()

    def check_message(self, message: str) -> str:
        if not message.strip():
            raise InputError("The message is empty")
        return message.strip()

    def check_options(self, top_k, threshold, mode) -> None:
        if threshold is not None and not 0 <= threshold <= 1:
            raise InputError("threshold must be within [0, 1]")

    def respond_many(self, messages, top_k=None, threshold=None, mode=None, histories=None):
        with self.lock:
            self.calls.append((tuple(messages), top_k, threshold, mode))
        time.sleep(0.05)  # a forward pass: long enough for other callers to queue up behind it
        if self.fail:
            raise RuntimeError("the model is gone")
        histories = histories or [()] * len(messages)
        return [f"reply to {m}" + (f" after {h[0].content}" if h else "") for m, h in zip(messages, histories, strict=True)]

    answer_many = respond_many


def test_concurrent_requests_share_batches_and_each_gets_its_own_response():
    engine = CountingAssistant()
    batching = BatchingAssistant(engine, window_ms=20, max_batch=8)
    questions = [f"question {i}" for i in range(24)]
    with ThreadPoolExecutor(24) as pool:
        replies = list(pool.map(lambda q: batching.respond(q, top_k=3), questions))
    assert replies == [f"reply to {q}" for q in questions]
    assert len(engine.calls) < len(questions) and max(len(c[0]) for c in engine.calls) <= 8
    assert sorted(q for call in engine.calls for q in call[0]) == sorted(questions)
    assert {call[1] for call in engine.calls} == {3}  # the options travel with the batch
    assert batching.settings == "the assistant's own"  # everything else is the assistant's


def test_each_caller_s_conversation_travels_with_its_message():
    from spanqa.settings import Settings

    engine = CountingAssistant()
    engine.settings = Settings()
    batching = BatchingAssistant(engine, window_ms=20, max_batch=8)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: batching.respond(f"q{i}", history=[{"role": "user", "content": f"h{i}"}]),
                                range(8)))
    assert replies == [f"reply to q{i} after h{i}" for i in range(8)]
    assert len(engine.calls) < 8  # shared batches, each message with its own history
    with pytest.raises(InputError, match="history has no user message"):
        batching.respond("q", history=[{"role": "assistant", "content": "hello"}])  # refused before it joins


def test_requests_with_different_options_never_share_a_batch():
    engine = CountingAssistant()
    batching = BatchingAssistant(engine, window_ms=30, max_batch=8)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: batching.answer(f"q{i}", threshold=0.1 * (i % 2)), range(8)))
    for messages, _, threshold, _ in engine.calls:
        assert all(int(m[1:]) % 2 == round(threshold * 10) for m in messages)


def test_a_failed_batch_fails_every_caller_and_none_hangs():
    batching = BatchingAssistant(CountingAssistant(fail=True), window_ms=10, max_batch=4)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batching.respond, f"q{i}") for i in range(6)]
        for future in futures:
            with pytest.raises(RuntimeError, match="gone"):
                future.result(timeout=10)


def test_one_bad_message_is_its_callers_error_alone():
    engine = CountingAssistant()
    batching = BatchingAssistant(engine, window_ms=30, max_batch=8)
    with ThreadPoolExecutor(4) as pool:
        good = [pool.submit(batching.respond, f"q{i}") for i in range(3)]
        bad = pool.submit(batching.respond, "   ")
        bad_option = pool.submit(batching.respond, "fine", threshold=7)
        assert [f.result(timeout=10) for f in good] == ["reply to q0", "reply to q1", "reply to q2"]
        with pytest.raises(InputError, match="empty"):
            bad.result(timeout=10)
        with pytest.raises(InputError, match="threshold"):
            bad_option.result(timeout=10)


def test_a_lone_request_runs_at_once():
    calls = []
    started = time.perf_counter()
    MicroBatcher(lambda key, items: calls.append(items) or items, window_ms=5, max_batch=16).submit("alone")
    assert calls == [["alone"]] and time.perf_counter() - started < 1.0

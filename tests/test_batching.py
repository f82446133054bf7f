"""Micro-batching: concurrent requests share `run_ask` calls, each caller gets its own response, a batch's failure
reaches all its callers and one caller's bad input reaches that caller alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from spanqa.plugin.engine.batching import BatchingAssistant, MicroBatcher
from spanqa.plugin.engine.requests import parse

from spanqa.errors import InvalidRequest
from spanqa.settings import Settings


class CountingAssistant:
    """Stands in for an Assistant: answers each checked request with its own text, slowly, and records each batch."""

    settings = Settings()

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail = fail
        self.lock = threading.Lock()

    def run_ask(self, requests):
        with self.lock:
            self.calls.append((tuple(r.question for r in requests), tuple((r.top_k, r.min_score) for r in requests)))
        time.sleep(0.05)  # a forward pass: long enough for other callers to queue up behind it
        if self.fail:
            raise RuntimeError("the model is gone")
        return [f"reply to {r.question}" + (f" after {r.history[0].content}" if r.history else "") for r in requests]

    run_answer = run_ask


def ask(batching: BatchingAssistant, question: str, **arguments):
    """What the service does for one request: check it, then hand it to the engine."""
    return batching.run_ask([parse(Settings(), "ask", {"question": question, **arguments})])[0]


def test_concurrent_requests_share_batches_and_each_gets_its_own_response():
    engine = CountingAssistant()
    batching = BatchingAssistant(engine, window_ms=20, max_batch=8)
    questions = [f"question {i}" for i in range(24)]
    with ThreadPoolExecutor(24) as pool:
        replies = list(pool.map(lambda q: ask(batching, q, top_k=3), questions))
    assert replies == [f"reply to {q}" for q in questions]
    assert len(engine.calls) < len(questions) and max(len(c[0]) for c in engine.calls) <= 8
    assert sorted(q for call in engine.calls for q in call[0]) == sorted(questions)
    assert {options for call in engine.calls for options in call[1]} == {(3, None)}  # options travel with requests
    assert batching.settings is engine.settings  # everything else is the assistant's


def test_each_caller_s_conversation_travels_with_its_message():
    engine = CountingAssistant()
    batching = BatchingAssistant(engine, window_ms=20, max_batch=8)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: ask(batching, f"q{i}", history=[{"role": "user", "content": f"h{i}"}]),
                                range(8)))
    assert replies == [f"reply to q{i} after h{i}" for i in range(8)]
    assert len(engine.calls) < 8  # shared batches, each message with its own history


def test_a_failed_batch_fails_every_caller_and_none_hangs():
    batching = BatchingAssistant(CountingAssistant(fail=True), window_ms=10, max_batch=4)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(ask, batching, f"q{i}") for i in range(6)]
        for future in futures:
            with pytest.raises(RuntimeError, match="gone"):
                future.result(timeout=10)


def test_one_bad_request_is_its_callers_error_alone():
    engine = CountingAssistant()
    batching = BatchingAssistant(engine, window_ms=30, max_batch=8)
    with ThreadPoolExecutor(5) as pool:
        good = [pool.submit(ask, batching, f"q{i}") for i in range(3)]
        bad = pool.submit(ask, batching, "   ")
        bad_option = pool.submit(ask, batching, "fine", min_score=7)
        bad_history = pool.submit(ask, batching, "q", history=[{"role": "assistant", "content": "hello"}])
        assert [f.result(timeout=10) for f in good] == ["reply to q0", "reply to q1", "reply to q2"]
        with pytest.raises(InvalidRequest, match="question: String should have at least 1 character"):
            bad.result(timeout=10)
        with pytest.raises(InvalidRequest, match="min_score"):
            bad_option.result(timeout=10)
        with pytest.raises(InvalidRequest, match="history has no user message"):
            bad_history.result(timeout=10)
    assert all("fine" not in call[0] and "" not in call[0] for call in engine.calls)  # never reached a batch


def test_a_lone_request_runs_at_once():
    calls = []
    started = time.perf_counter()
    MicroBatcher(lambda key, items: calls.append(items) or items, window_ms=5, max_batch=16).submit("alone")
    assert calls == [["alone"]] and time.perf_counter() - started < 1.0


def test_requests_with_different_options_are_answered_in_groups_of_the_same_options():
    from spanqa.plugin.engine.assistant import by_options

    requests = [parse(Settings(), "ask", {"question": f"q{i}", "min_score": 0.1 * (i % 2)}) for i in range(6)]
    groups = []
    answers = by_options(requests, lambda group, *options: groups.append((options, group)) or
                          [f"{r.question}@{options[1]}" for r in group])
    assert answers == [f"q{i}@{0.1 * (i % 2)}" for i in range(6)]  # each in its own place
    assert [len(group) for _, group in groups] == [3, 3]
    assert all({r.min_score for r in group} == {options[1]} for options, group in groups)

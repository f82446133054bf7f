"""Micro-batching: requests that arrive together from different clients are answered in one batch.

A server answers each request on a thread of its own. `BatchingAssistant` stands in for the `Assistant` there:
a `respond` (or `answer`) call waits up to `window_ms` for other calls to join it — never longer, and not at all
when it is alone and the engine is idle — then one thread answers the whole batch with
`Assistant.run_ask` (one router pass, one embedding call, one search, shared reader batches, see assistant.py) and
hands every caller its own response.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from spanqa.errors import InputError

__all__ = ["MicroBatcher", "BatchingAssistant"]


@dataclass
class _Request:
    item: Any
    key: Hashable
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class MicroBatcher:
    """Concurrent `submit(item, key)` calls share calls of `run_many(key, items)` (at most `max_batch` items;
    requests with different keys never share one)."""

    def __init__(self, run_many: Callable[[Hashable, list], list], window_ms: float = 5.0,
                 max_batch: int = 16) -> None:
        if window_ms < 0 or max_batch < 1:
            raise InputError("window_ms must be >= 0 and max_batch >= 1")
        self.run_many = run_many
        self.window_s = window_ms / 1000
        self.max_batch = max_batch
        self._pending: list[_Request] = []
        self._cond = threading.Condition()
        self._busy = False
        self.listeners: list[Callable[[int], None]] = []  # told each batch's size (a server's metrics)

    def submit(self, item: Any, key: Hashable = None) -> Any:
        request = _Request(item, key)
        with self._cond:
            self._pending.append(request)
            self._cond.notify_all()
        self._lead_or_wait(request)
        if request.error is not None:
            raise request.error
        return request.result

    def _lead_or_wait(self, request: _Request) -> None:
        """Wait for the result; the first caller to find the engine free leads the next batch."""
        while not request.done.is_set():
            with self._cond:
                if self._busy or request.done.is_set():
                    self._cond.wait(timeout=0.05)
                    continue
                self._busy = True
            try:
                self._run(self._collect())
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _collect(self) -> list[_Request]:
        """The pending requests, after waiting up to the window for more to arrive."""
        deadline = time.monotonic() + self.window_s
        with self._cond:
            while len(self._pending) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0 or not self._pending:
                    break
                self._cond.wait(timeout=left)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        return batch

    def _run(self, batch: list[_Request]) -> None:
        if not batch:
            return
        for listener in self.listeners:
            listener(len(batch))
        groups: dict[Hashable, list[_Request]] = {}
        for request in batch:  # in practice every request of a server has the same options
            groups.setdefault(request.key, []).append(request)
        for key, requests in groups.items():
            try:
                results = self.run_many(key, [r.item for r in requests])
            except BaseException as exc:  # every waiting caller gets the error, none hangs
                for r in requests:
                    r.error = exc
                    r.done.set()
                continue
            for r, result in zip(requests, results, strict=True):
                r.result = result
                r.done.set()


class BatchingAssistant:
    """An `Engine` whose concurrent `run_ask` and `run_answer` calls of one request each are answered in shared
    batches by `assistant`; every other call is the assistant's own. Requests come checked (the service checked
    them), so one client's bad input never reaches a batch."""

    def __init__(self, assistant, window_ms: float = 5.0, max_batch: int = 16) -> None:
        self.assistant = assistant
        self.settings = assistant.settings
        # The assistant groups a batch's requests by their options itself.
        self._ask = MicroBatcher(lambda _key, requests: assistant.run_ask(requests), window_ms, max_batch)
        self._answer = MicroBatcher(lambda _key, requests: assistant.run_answer(requests), window_ms, max_batch)

    @property
    def collection(self):
        return self.assistant.collection

    def listen_batches(self, listener: Callable[[int], None]) -> None:
        """Call `listener` with the size of every batch answered from now on."""
        self._ask.listeners.append(listener)
        self._answer.listeners.append(listener)

    def warm_up(self) -> None:
        self.assistant.warm_up()

    def run_classify(self, request):
        return self.assistant.run_classify(request)

    def run_search(self, request):
        return self.assistant.run_search(request)

    def run_ask(self, requests: list):
        if len(requests) != 1:  # a caller's own batch is already one
            return self.assistant.run_ask(requests)
        return [self._ask.submit(requests[0])]

    def run_answer(self, requests: list):
        if len(requests) != 1:
            return self.assistant.run_answer(requests)
        return [self._answer.submit(requests[0])]

"""Micro-batching: questions that arrive together from different clients are read in shared forward passes.

A server answers each request on a thread of its own. Reading one question is ~5 windows, too few to keep both
cores busy with one matrix multiply each; reading sixteen questions' windows together is 3-4x the questions per
second (the throughput row of `spanqa bench`). `BatchingReader` stands in for a `Reader`: a `read` call waits up
to `window_ms` for other calls to join it (never longer, and not at all when it is alone and the reader is idle),
then one thread reads the whole batch with `Reader.read_many` and hands every caller its own result.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from spanqa.plugin.engine.reader import Reader, ReaderResult

__all__ = ["BatchingReader"]


@dataclass
class _Request:
    question: str
    passages: list
    top_k: int
    threshold: float | None
    done: threading.Event = field(default_factory=threading.Event)
    result: ReaderResult | None = None
    error: BaseException | None = None


class BatchingReader:
    """A `Reader` whose concurrent `read` calls share forward passes (at most `max_batch` questions each)."""

    def __init__(self, reader: Reader, window_ms: float = 5.0, max_batch: int = 16) -> None:
        if window_ms < 0 or max_batch < 1:
            raise ValueError("window_ms must be >= 0 and max_batch >= 1")
        self.reader = reader
        self.window_s = window_ms / 1000
        self.max_batch = max_batch
        self._pending: list[_Request] = []
        self._cond = threading.Condition()
        self._busy = False
        self.batches: list[int] = []  # sizes of the batches read so far (the benchmark reports them)

    def __getattr__(self, name: str):  # model, tokenizer, threshold, warm_up, … are the reader's own
        return getattr(self.reader, name)

    def read(self, question: str, passages: list, top_k: int = 5, threshold: float | None = None) -> ReaderResult:
        request = _Request(question, passages, top_k, threshold)
        with self._cond:
            self._pending.append(request)
            self._cond.notify_all()
        self._lead_or_wait(request)
        if request.error is not None:
            raise request.error
        return request.result

    def _lead_or_wait(self, request: _Request) -> None:
        """Wait for the result; the first caller to find the reader free leads the next batch."""
        while not request.done.is_set():
            with self._cond:
                if self._busy or request.done.is_set():
                    self._cond.wait(timeout=0.05)
                    continue
                self._busy = True
            try:
                self._read_batch(self._collect())
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

    def _read_batch(self, batch: list[_Request]) -> None:
        if not batch:
            return
        self.batches.append(len(batch))
        # One read_many per (top_k, threshold): in practice every request of a server uses the same.
        groups: dict[tuple, list[_Request]] = {}
        for request in batch:
            groups.setdefault((request.top_k, request.threshold), []).append(request)
        for (top_k, threshold), requests in groups.items():
            try:
                results = self.reader.read_many([(r.question, r.passages) for r in requests], top_k=top_k,
                                                threshold=threshold)
            except BaseException as exc:  # every waiting caller gets the error, none hangs
                for r in requests:
                    r.error = exc
                    r.done.set()
                continue
            for r, result in zip(requests, results, strict=True):
                r.result = result
                r.done.set()

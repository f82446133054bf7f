"""What a server has been doing, for Prometheus: `GET /metrics` (prometheus-client's text format).

    spanqa_requests_total{collection, route, status}     every request, by its answer's status
    spanqa_request_seconds{collection, route}            latency histogram
    spanqa_errors_total{collection, route, kind}         client (4xx) and server (5xx) errors
    spanqa_abstentions_total{collection, operation}      answers withheld (ask, answer)
    spanqa_batch_size{collection}                        questions per micro-batch

Labels are bounded: `route` is the route's pattern ("documents/{id}/view"), never a raw path, and `collection`
a configured name — the empty string where the caller may not see the collection, so a name somebody guessed never
becomes a label. Keys are never a label (the audit log names them).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from spanqa.plugin.doors.service import Result, Service

__all__ = ["Metrics", "install_metrics", "route_label"]

_ID_AFTER = {"documents": "{id}", "pages": "{n}.png", "collections": "{name}"}


def route_label(path: str) -> str:
    """A path as its route's pattern: /v1/documents/3f2a/pages/2.png → "documents/{id}/pages/{n}.png"; an MCP
    request is "mcp" whatever follows."""
    parts = [p for p in path.split("/") if p][1:] if path.startswith("/v1/") else [p for p in path.split("/") if p]
    out: list[str] = []
    for part in parts:
        if out and out[-1] in _ID_AFTER and part != _ID_AFTER[out[-1]]:
            out.append(_ID_AFTER[out[-1]])
            continue
        out.append(part)
        if part == "mcp":
            break
    label = "/".join(out) or "/"
    return label if re.fullmatch(r"[\w{}./-]{1,80}", label) else "other"


class Metrics:
    """One registry per server (never the process-wide default, so two apps in one process do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("spanqa_requests", "Requests answered", ["collection", "route", "status"],
                                registry=self.registry)
        self.seconds = Histogram("spanqa_request_seconds", "Time to answer a request", ["collection", "route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                 registry=self.registry)
        self.errors = Counter("spanqa_errors", "Requests refused (client) or failed (server)",
                              ["collection", "route", "kind"], registry=self.registry)
        self.abstentions = Counter("spanqa_abstentions", "Answers withheld: no candidate cleared the threshold",
                                   ["collection", "operation"], registry=self.registry)
        self.batches = Histogram("spanqa_batch_size", "Questions answered together in one micro-batch",
                                 ["collection"], buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)

    def record(self, collection: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(collection, route, str(status)).inc()
        self.seconds.labels(collection, route).observe(seconds)
        if status >= 400:
            self.errors.labels(collection, route, "server" if status >= 500 else "client").inc()

    def observer(self, collection: str) -> Callable[[str, Result], None]:
        """What a collection's routes call with each result: withheld answers are counted."""
        def observe(operation: str, result: Result) -> None:
            if operation in ("ask", "answer") and result.data.get("abstained"):
                self.abstentions.labels(collection, operation).inc()

        return observe

    def watch_batches(self, collection: str, service: Service) -> None:
        """Count the sizes of the service's micro-batches (a service without batching has none)."""
        listen = getattr(service.engine, "listen_batches", None)
        if listen is not None:
            listen(lambda size: self.batches.labels(collection).observe(size))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def install_metrics(app: FastAPI, metrics: Metrics, labels: Callable[[Request], tuple[str, str]]) -> None:
    """Time and count every request; `labels(request)` gives its (collection, route) once it has been answered
    (a server with access control sets what the caller may see on the request's state first)."""
    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        collection, route = labels(request)
        metrics.record(collection, route, response.status_code, time.perf_counter() - started)
        return response

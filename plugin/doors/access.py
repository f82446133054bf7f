"""Who may do what on a team server: keys identified in constant time, per-key rate limits, and an audit log.

A key that cannot see a collection (it may neither read nor change it) is told the collection does not exist, in
the very bytes a collection that does not exist gets, decided before anything about the collection is looked up:
a name somebody guesses tells them nothing. A key that sees a collection but lacks the scope for a write is told
so (403).
"""

from __future__ import annotations

import hmac
import json
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from spanqa.errors import ConfigError, Forbidden, NotFound, RateLimited
from spanqa.server_config import ApiKey, key_digest

__all__ = ["AuditLog", "HIDDEN", "KeyRing", "RateLimiter", "WRITE_ROUTES", "needs_write"]

# (method, route pattern under a collection) that change a collection: they need its write scope.
WRITE_ROUTES = frozenset({("POST", "documents"), ("DELETE", "documents/{id}"), ("POST", "sync")})
# The one answer to a collection a key cannot see, whether or not it exists.
HIDDEN = "No such collection, or this key may not read it (GET /v1/models lists the collections it can)"


def needs_write(method: str, route: str) -> bool:
    return (method, route) in WRITE_ROUTES


class KeyRing:
    """The configured keys; `identify` compares a bearer token's digest with every key's, always all of them, so
    the time taken says nothing about which key (if any) matched."""

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self.keys = keys

    def identify(self, authorization: str) -> ApiKey | None:
        token = authorization[7:] if authorization.lower().startswith("bearer ") else ""
        digest = key_digest(token)
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest) and token:
                found = key
        return found

    @staticmethod
    def check_scope(key: ApiKey, collection: str, write: bool) -> None:
        """NotFound (the same as no such collection) where the key cannot see `collection`; Forbidden where it
        sees it but `write` needs a scope it lacks."""
        if not key.sees(collection):
            raise NotFound(HIDDEN)  # a new one each time: a raised error keeps its frames
        if write and collection not in key.write:
            raise Forbidden(f"The key {key.name!r} may not change collection {collection!r} (its write scope does "
                            "not include it)")
        if not write and collection not in key.read:
            raise Forbidden(f"The key {key.name!r} may not read collection {collection!r} (its read scope does not "
                            "include it)")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: `rate_per_minute` requests a minute on average, up to that many in a burst."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: ApiKey, now: float | None = None) -> None:
        """Spend one request of `key`'s rate, or raise RateLimited with the seconds until the next one."""
        if key.rate_per_minute <= 0:
            return
        now = time.monotonic() if now is None else now
        per_second = key.rate_per_minute / 60
        with self._lock:
            bucket = self._buckets.setdefault(key.name, _Bucket(key.rate_per_minute, now))
            bucket.tokens = min(key.rate_per_minute, bucket.tokens + (now - bucket.updated) * per_second)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = math.ceil((1 - bucket.tokens) / per_second)
        raise RateLimited(f"The key {key.name!r} is limited to {key.rate_per_minute:g} requests a minute; try again "
                          f"in {wait} s", wait)


class AuditLog:
    """JSON lines (time, key name, collection, route, method, status): every write and every refusal, and every
    read when `reads` is on. Never the key itself, never a question or a document."""

    def __init__(self, path: str, reads: bool = False) -> None:
        self.path = Path(path)
        self.reads = reads
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"The audit log {self.path} cannot be written: {exc.strerror}") from exc

    def record(self, key: str | None, collection: str | None, route: str, method: str, status: int,
               write: bool) -> None:
        if not (write or status >= 400 or self.reads):
            return
        line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "key": key,
                           "collection": collection, "route": route, "method": method, "status": status})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

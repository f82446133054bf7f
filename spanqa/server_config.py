"""A server for a team: `spanqa serve --config spanqa.toml` names its collections and the keys that may use them.

    [server]                       # optional; every entry has a default
    audit_log = "/var/log/spanqa/audit.jsonl"   # JSON lines: writes and refusals always
    audit_reads = false            # and every read too
    rate_per_minute = 600          # each key's default request rate (0 = unlimited)

    [collections]
    hr = "postgresql://app@db/spanqa?collection=hr"
    eng = { location = "/srv/spanqa/eng", sync = ["/mnt/eng-docs"] }   # a table: the folders it follows

    [[keys]]
    name = "hr-readers"
    key_sha256 = "…"               # or key_env = "SPANQA_KEY_HR": never the key itself in the file
    read = ["hr"]

    [[keys]]
    name = "eng-admin"
    key_env = "SPANQA_KEY_ENG_ADMIN"
    read = ["eng"]
    write = ["eng"]
    metrics = true                 # may read /metrics
    rate_per_minute = 120

`load_config` checks the whole file before anything is opened and names every entry it refuses; `new_key` makes
the key `spanqa keys new NAME` prints once, and the line that goes in the file.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from spanqa.errors import ConfigError

__all__ = ["ApiKey", "CollectionEntry", "ServerConfig", "check_name", "key_digest", "load_config", "new_key"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
KEY_PREFIX = "sqk_"


def check_name(name: str, what: str) -> None:
    """Refuse a collection or key name that cannot go in a URL or an audit line as it is."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{what} is 1-64 letters, digits, '-' or '_', starting with a letter or digit; got {name!r}")


def key_digest(key: str) -> bytes:
    """What the file stores of a key: its SHA-256 (a key is 256 random bits, so no salt or stretching is needed)."""
    return hashlib.sha256(key.encode()).digest()


def new_key() -> tuple[str, str]:
    """A new API key and its `key_sha256` value."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key_digest(key).hex()


@dataclass(frozen=True)
class ApiKey:
    """One key of the file: its name (shown in the audit log, never the key), its digest and what it may do."""

    name: str
    digest: bytes = field(repr=False)
    read: frozenset[str]
    write: frozenset[str]
    metrics: bool = False
    rate_per_minute: float = 0.0

    def sees(self, collection: str) -> bool:
        """Whether the key may know the collection exists (it may read or change it)."""
        return collection in self.read or collection in self.write


@dataclass(frozen=True)
class CollectionEntry:
    name: str
    location: str
    sync: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerConfig:
    collections: dict[str, CollectionEntry]
    keys: tuple[ApiKey, ...]
    audit_log: str = ""
    audit_reads: bool = False


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> ServerConfig:
    """Read and check a server configuration file; ConfigError names the first entry that is wrong."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"The server configuration {path} could not be read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The server configuration {path} is not valid TOML: {exc}") from exc
    unknown = set(raw) - {"server", "collections", "keys"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; the sections are [server], "
                          "[collections] and [[keys]]")
    server = _table(raw.get("server", {}), f"{path}: [server]")
    _only(server, {"audit_log", "audit_reads", "rate_per_minute"}, f"{path}: [server]")
    collections = _collections(raw.get("collections"), path)
    default_rate = _rate(server.get("rate_per_minute", 0), f"{path}: [server] rate_per_minute")
    keys = _keys(raw.get("keys"), path, collections, default_rate, environ)
    return ServerConfig(collections, keys, str(server.get("audit_log", "")), bool(server.get("audit_reads", False)))


def _table(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def _only(table: dict, allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown entr{'y' if len(unknown) == 1 else 'ies'} {', '.join(sorted(unknown))}; "
                          f"allowed: {', '.join(sorted(allowed))}")


def _rate(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where} must be a number of requests per minute, 0 or more (0: unlimited); got {value!r}")
    return float(value)


def _collections(raw, path: Path) -> dict[str, CollectionEntry]:
    table = _table(raw if raw is not None else {}, f"{path}: [collections]")
    if not table:
        raise ConfigError(f"{path}: [collections] names no collection; add one, e.g. docs = \"/srv/spanqa/docs\"")
    entries = {}
    for name, value in table.items():
        where = f"{path}: collection {name!r}"
        check_name(name, f"{where}: a collection's name (it is part of URLs)")
        if isinstance(value, str):
            value = {"location": value}
        value = _table(value, where)
        _only(value, {"location", "sync"}, where)
        location, sync = value.get("location"), value.get("sync", [])
        if not isinstance(location, str) or not location.strip():
            raise ConfigError(f"{where}: give its location, a directory or a postgresql:// URL")
        if not isinstance(sync, list) or not all(isinstance(s, str) and s for s in sync):
            raise ConfigError(f"{where}: sync must be a list of folders")
        entries[name] = CollectionEntry(name, location, tuple(sync))
    return entries


def _keys(raw, path: Path, collections: dict, default_rate: float, environ) -> tuple[ApiKey, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: no [[keys]]: every request needs a key; make one with `spanqa keys new NAME`")
    keys: list[ApiKey] = []
    for number, entry in enumerate(raw, start=1):
        entry = _table(entry, f"{path}: [[keys]] entry {number}")
        name = entry.get("name")
        where = f"{path}: key {name!r}" if isinstance(name, str) else f"{path}: [[keys]] entry {number}"
        check_name(name, f"{where}: its name")
        if any(k.name == name for k in keys):
            raise ConfigError(f"{where}: the name is used by an earlier key; each key has its own name")
        if "key" in entry or "api_key" in entry:
            raise ConfigError(f"{where}: a key is never written in the file in plain text; give key_sha256 (`spanqa "
                              "keys new NAME` prints it) or key_env (an environment variable that holds the key)")
        _only(entry, {"name", "key_sha256", "key_env", "read", "write", "metrics", "rate_per_minute"}, where)
        scopes = {scope: _scope(entry.get(scope, []), collections, f"{where}: {scope}") for scope in ("read", "write")}
        rate = _rate(entry.get("rate_per_minute", default_rate), f"{where}: rate_per_minute")
        keys.append(ApiKey(name, _digest(entry, where, environ), scopes["read"], scopes["write"],
                           bool(entry.get("metrics", False)), rate))
    digests = [k.digest for k in keys]
    if len(set(digests)) != len(digests):
        raise ConfigError(f"{path}: two keys have the same key; give each its own (`spanqa keys new NAME`)")
    return tuple(keys)


def _digest(entry: dict, where: str, environ) -> bytes:
    given = [k for k in ("key_sha256", "key_env") if k in entry]
    if len(given) != 1:
        raise ConfigError(f"{where}: give exactly one of key_sha256 (from `spanqa keys new NAME`) and key_env")
    if given[0] == "key_sha256":
        value = entry["key_sha256"]
        if not isinstance(value, str) or not _DIGEST.match(value.lower()):
            raise ConfigError(f"{where}: key_sha256 must be 64 hexadecimal digits (`spanqa keys new NAME` prints it)")
        return bytes.fromhex(value)
    variable = entry["key_env"]
    if not isinstance(variable, str) or not environ.get(variable):
        raise ConfigError(f"{where}: key_env names {variable!r}, which is not set in the server's environment")
    return key_digest(environ[variable])


def _scope(value, collections: dict, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of collection names")
    unknown = [v for v in value if v not in collections]
    if unknown:
        raise ConfigError(f"{where} names {', '.join(map(repr, unknown))}, not in [collections] (they are "
                          f"{', '.join(sorted(collections))})")
    return frozenset(value)

"""What the command line does to collections and to spanqa's own state, beside answering (service.py): ingest
files and folders (here or on a Ray cluster), rebuild or re-embed indexes, upgrade a PostgreSQL schema, build
what the first answer needs, refit calibration and routing. Each takes the settings its door resolved and says
what it did in words or a small record; every refusal is a SpanqaError.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from spanqa.plugin.doors.service import SCHEMA_VERSION, Service, shown_location

from spanqa.errors import CollectionError, InputError, SpanqaError
from spanqa.settings import Settings

__all__ = ["CalibrationOutcome", "FolderFollower", "IngestJob", "IngestOutcome", "SyncJob", "calibrate", "ingest",
           "limit_server_memory", "migrate", "reindex", "setup", "sync", "watch"]


@dataclass(frozen=True)
class IngestJob:
    """Files and folders to add to a collection, and how: the globs that pick files and a Ray cluster ("local"
    starts one here). The passage size, the embedder and the limits are the settings'."""

    paths: list[str]
    collection: str | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    ray: str | None = None


@dataclass(frozen=True)
class IngestOutcome:
    """Where the documents went, and the report (None when nothing could be added and no collection was made)."""

    location: str
    report: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "collection": self.location, **self.report.to_dict()}


def ingest(job: IngestJob, settings: Settings, progress=None, skipped=None) -> IngestOutcome:
    """Add `job`'s files to its collection (made by its first document, never by a run that adds nothing).
    `skipped(source, reason)` hears of each file left out as soon as it is known."""
    from spanqa.plugin.engine.collections import default_location
    from spanqa.retriever.loaders import list_files, load_paths

    location = default_location(job.collection, settings)
    skipped = skipped or (lambda source, reason: None)
    if job.ray is not None:
        from spanqa.retriever.distributed import import_ray

        import_ray()  # a missing extra is said before a collection is created
        files, _ = list_files(job.paths, job.include, job.exclude)
        if not files:
            return IngestOutcome(shown_location(location))
        collection = _open_for_writing(location, settings, create=True)
        report = collection.ingest(job.paths, job.include, job.exclude, ray=job.ray, settings=settings,
                                   progress=progress)
        for item in report.skipped:
            skipped(item.source, item.reason)
        return IngestOutcome(collection.location, report)
    loaded = load_paths(job.paths, job.include, job.exclude, settings.collection_limits().max_file_bytes)
    for item in loaded.skipped:
        skipped(item.source, item.reason)
    try:
        collection = _open_for_writing(location, settings, create=bool(loaded.documents))
    except CollectionError:
        if loaded.documents:
            raise
        return IngestOutcome(shown_location(location))
    report = collection.add_documents(loaded, progress=progress)
    for item in report.skipped[len(loaded.skipped):]:
        skipped(item.source, item.reason)
    return IngestOutcome(collection.location, report)


@dataclass(frozen=True)
class SyncJob:
    """Folders and files a collection mirrors (retriever/sync.py), the globs that pick files, and whether a root
    that vanished may empty the collection of its documents."""

    roots: list[str]
    collection: str | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    allow_empty_root: bool = False
    ray: str | None = None  # embed new and changed files on this Ray cluster ("local" starts one here)


def sync(job: SyncJob, settings: Settings, progress=None) -> IngestOutcome:
    """Make `job`'s collection (created if need be) mirror its roots; the outcome's report is a SyncReport."""
    from spanqa.plugin.engine.collections import default_location

    collection = _open_for_writing(default_location(job.collection, settings), settings, create=True)
    try:
        return _synced(collection, job, settings, progress)
    finally:
        collection.close()


def _synced(collection, job: SyncJob, settings: Settings, progress=None) -> IngestOutcome:
    report = collection.sync(job.roots, job.include, job.exclude, job.allow_empty_root, progress, job.ray, settings)
    return IngestOutcome(collection.location, report)


def watch(job: SyncJob, settings: Settings, on_outcome, stop=None, service: Service | None = None) -> None:
    """Sync `job` now, then again after every burst of changes under its roots, until `stop` (a threading.Event)
    is set or Ctrl-C; through `service`'s collection when given (a server's), else the job's, opened once.
    `on_outcome` hears each sync's outcome, or the SpanqaError that refused it (a root that vanished is refused
    and watched on: the collection keeps its documents)."""
    from pathlib import Path

    from spanqa.plugin.engine.collections import default_location
    from spanqa.retriever.sync import watch as watch_roots

    own = None if service is not None else \
        _open_for_writing(default_location(job.collection, settings), settings, create=True)

    def attempt():
        try:
            if own is not None:
                return _synced(own, job, settings)
            result = service.sync(job.roots, job.include, job.exclude, job.allow_empty_root)
            return IngestOutcome(service.location, result.value)
        except SpanqaError as exc:
            return exc

    try:
        on_outcome(attempt())
        watch_roots(attempt, [Path(r) for r in job.roots], on_outcome, stop=stop)
    finally:
        if own is not None:
            own.close()


class FolderFollower:
    """A service's collection following folders while a server or the chat UI runs: `watch` in a background
    thread, and what the latest sync did (`status`, for GET /v1/sync and the UI's sidebar)."""

    def __init__(self, roots: list[str], service: Service, on_outcome=None) -> None:
        self.job = SyncJob(roots)
        self.service = service
        self.last: IngestOutcome | SpanqaError | None = None
        self.finished: float | None = None
        self._on_outcome = on_outcome or (lambda outcome: None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=watch, name="spanqa-sync", daemon=True,
                                        args=(self.job, service.settings, self.record, self._stop),
                                        kwargs={"service": service})

    def start(self) -> FolderFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def sync_now(self) -> IngestOutcome:
        """Sync at once (POST /v1/sync), besides the syncs that follow changes."""
        result = self.service.sync(self.job.roots)
        outcome = IngestOutcome(self.service.location, result.value)
        self.record(outcome)
        return outcome

    def record(self, outcome: IngestOutcome | SpanqaError) -> None:
        self.last, self.finished = outcome, time.time()
        self._on_outcome(outcome)

    def status(self) -> dict[str, Any]:
        """The folders followed and the latest sync: its JSON report, or the error that refused it."""
        last = self.last
        if last is None:
            report = None
        elif isinstance(last, SpanqaError):
            report = {"error": str(last)}
        else:
            report = last.to_json()
        return {"roots": self.job.roots, "finished": self.finished, "last_sync": report}


def _open_for_writing(location, settings: Settings, create: bool):
    """The collection a write opens; a new one is chunked as the settings say."""
    from spanqa.plugin.engine.collections import open_collection
    from spanqa.retriever.chunking import ChunkingSettings

    chunking = ChunkingSettings(max_tokens=settings.chunk_tokens, overlap_tokens=settings.chunk_overlap_tokens)
    return open_collection(location, create=create, settings=settings, chunking=chunking)


def reindex(collection: str | None, settings: Settings, embedder: str | None = None) -> str:
    """Rebuild a collection's indexes, or re-embed it for another embedding model; what was done, in words."""
    from spanqa.plugin.engine.collections import reindex_collection

    return reindex_collection(collection, settings, embedder=embedder)


def migrate(collection: str | None, settings: Settings) -> str:
    """Upgrade a PostgreSQL collection's schema in one transaction; what was done, in words."""
    from spanqa.plugin.engine.collections import resolve_location
    from spanqa.retriever.postgres_location import is_postgres_location
    from spanqa.retriever.postgres_schema import migrate as migrate_schema

    location = resolve_location(collection, settings)
    if not is_postgres_location(str(location)):
        raise InputError(f"{location or 'the default collection'} is a local collection; local collections upgrade "
                         "themselves when opened. migrate takes a PostgreSQL URL.")
    found, now = migrate_schema(str(location), settings.postgres)
    shown = shown_location(str(location))
    return (f"{shown}: schema version {found} → {now}" if found != now else
            f"{shown}: schema already at version {now}; nothing to do")


def setup(settings: Settings) -> list[str]:
    """Build what the first answer needs: the router (refitted when the user corrected routing) and the default
    collection; what was built, a line each."""
    from spanqa.plugin.engine.collections import ensure_default_collection
    from spanqa.plugin.engine.defaults import router_location
    from spanqa.plugin.engine.router_fitting import refit_default_router

    refit_default_router(settings.home_path, progress=True)
    collection = ensure_default_collection(settings)
    return [f"default router: {router_location(settings)}",
            f"default collection: {collection.location} ({len(collection.documents())} documents)"]


@dataclass(frozen=True)
class CalibrationOutcome:
    """What `spanqa calibrate` did: routing corrections added (None when routing was not asked for) and the
    collection's new answer calibration (None when only routing was asked for)."""

    routing_added: int | None = None
    report: Any = None


def calibrate(service: Service, labels: str | None = None, use_feedback: bool = True,
              routing: bool = False) -> CalibrationOutcome:
    """Refit a collection's answer calibration from labelled questions and its feedback; with `routing`, first
    turn thumbs-down on replies that did not come from the documents into routing data and refit the router."""
    from spanqa.plugin.engine.calibration import calibrate_collection, load_labels, routing_corrections
    from spanqa.plugin.engine.defaults import add_routing_feedback
    from spanqa.plugin.engine.router_fitting import refit_default_router

    added = None
    if routing:
        home = service.settings.home_path
        added = add_routing_feedback(routing_corrections(service.engine.collection), home)
        refit_default_router(home)
        if not labels:
            return CalibrationOutcome(added)
    report = calibrate_collection(service.engine, load_labels(labels) if labels else None, use_feedback=use_feedback)
    return CalibrationOutcome(added, report)


def limit_server_memory() -> None:
    """Cap glibc's malloc arenas before a server starts its request threads (retriever/memory.py says why)."""
    from spanqa.retriever.memory import limit_malloc_arenas

    limit_malloc_arenas()

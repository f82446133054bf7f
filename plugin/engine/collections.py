"""Finding, opening, building and re-indexing collections, including the bundled default one.

A collection location is a directory (the embedded backend) or a PostgreSQL URL
(`postgresql://user@host/db?collection=name`); every door takes either, through `open_collection`. With no
location given, the `collection` setting is used, and without it the bundled default collection: spanqa's own
documentation (docs/, shipped inside the package), so a newcomer can ask spanqa about spanqa. It is built on first
use under the `home` setting and refreshed when those files change (unchanged files cost a hash comparison).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from spanqa.retriever.chunking import ChunkingSettings
from spanqa.retriever.collection import LocalCollection
from spanqa.retriever.embedding import Embedder
from spanqa.retriever.loaders import LoadReport
from spanqa.retriever.postgres import PostgresCollection, is_postgres_location
from spanqa.retriever.protocol import Collection

from spanqa.settings import SHIPPED_DOCUMENTS, Settings

__all__ = ["default_location", "default_sources", "resolve_location", "open_collection", "ensure_default_collection",
           "reindex_collection"]


def default_sources() -> list[Path]:
    return [SHIPPED_DOCUMENTS]


def resolve_location(collection: str | Path | None, settings: Settings) -> str | Path | None:
    """The location asked for, else the `collection` setting, else None (the bundled default collection)."""
    return collection or settings.collection or None


def default_location(collection: str | Path | None, settings: Settings) -> str | Path:
    """Where `collection` is: as `resolve_location`, with the bundled default collection's directory for None."""
    return resolve_location(collection, settings) or settings.default_collection_path


def ensure_default_collection(settings: Settings, embedder: Embedder | None = None) -> Collection:
    """Open the bundled default collection, building or refreshing it from the bundled documentation."""
    embedder = embedder or Embedder(settings.embedder_path, precision=settings.embedder_precision,
                                    device=settings.device)
    collection = LocalCollection(settings.default_collection_path, embedder=embedder,
                                 limits=settings.collection_limits())
    collection.ingest(default_sources())
    return collection


def open_collection(collection: str | Path | None = None, embedder: str | Embedder | None = None,
                    create: bool = False, settings: Settings | None = None,
                    chunking: ChunkingSettings | None = None) -> Collection:
    """Open a collection by directory or PostgreSQL URL (see `resolve_location`); `create` makes it if absent.
    `settings` (the door's): the locations, the limits, the embedder and PostgreSQL's connection settings."""
    settings = settings or Settings()
    if not isinstance(embedder, Embedder):
        embedder = Embedder(embedder or settings.embedder_path, precision=settings.embedder_precision,
                            device=settings.device)
    limits = settings.collection_limits()
    location = resolve_location(collection, settings)
    if location is None:
        return ensure_default_collection(settings, embedder)
    if is_postgres_location(str(location)):
        return PostgresCollection(str(location), embedder=embedder, chunking=chunking, create=create, limits=limits,
                                  settings=settings.postgres)
    return LocalCollection(location, embedder=embedder, chunking=chunking, create=create, limits=limits)


def reindex_collection(collection: str | Path | None, settings: Settings, embedder: str | None = None) -> str:
    """Rebuild a local collection's indexes from its database; with `embedder`, re-embed every document for that
    model into a fresh collection and swap it in only once it is complete (the old one stays until then)."""
    location = default_location(collection, settings)
    if is_postgres_location(str(location)):
        return _reindex_postgres(str(location), embedder)
    path = Path(location)
    if embedder is None:
        LocalCollection.repair(path)
        return f"Rebuilt the dense and BM25 indexes of {path} from its database."
    from spanqa.retriever.store import Store

    store = Store(path / "collection.sqlite", create=False)
    documents = [store.document(info.id) for info in store.documents()]
    for document in documents:
        if document is not None:  # the originals move with their documents
            document.original = store.original(document.id)
    store.close()
    staging = path.with_name(path.name + ".reindexing")
    shutil.rmtree(staging, ignore_errors=True)
    rebuilt = LocalCollection(staging, embedder=Embedder(embedder))
    report = rebuilt.add_documents(LoadReport(documents=[d for d in documents if d is not None]))
    rebuilt.close()
    retired = path.with_name(path.name + ".old")
    shutil.rmtree(retired, ignore_errors=True)
    path.rename(retired)
    staging.rename(path)
    shutil.rmtree(retired, ignore_errors=True)
    return f"Re-embedded {path} with {embedder}: {report.summary()}"


def _reindex_postgres(url: str, embedder: str | None) -> str:
    if embedder is None:
        return (f"{url}: PostgreSQL maintains its own indexes; nothing to rebuild (REINDEX SCHEMA repairs an "
                "index the server reports as damaged).")
    from spanqa.retriever.postgres import replace_collection

    report = replace_collection(url, Embedder(embedder))
    return f"Re-embedded {url} with {embedder}: {report.summary()}"

"""Finding, opening, building and re-indexing collections, including the bundled default one.

The default collection is spanqa's own documentation (docs/, shipped inside the package), so a newcomer can ask
spanqa about spanqa. It is built on first use into the cache directory and refreshed when those files change (unchanged
files cost a hash comparison, no embedding).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from spanqa.retriever.collection import Collection
from spanqa.retriever.embedding import Embedder
from spanqa.retriever.loaders import LoadReport

from spanqa.settings import CollectionLimits, Settings, default_collection_path, default_documents_path

__all__ = ["default_sources", "resolve_collection_path", "open_collection", "ensure_default_collection",
           "reindex_collection"]


def default_sources() -> list[Path]:
    return [default_documents_path()]


def resolve_collection_path(collection: str | Path | None) -> Path:
    return Path(collection) if collection else default_collection_path()


def ensure_default_collection(embedder: Embedder | None = None, limits: CollectionLimits | None = None) -> Collection:
    """Open the default collection, building or refreshing it from the bundled documentation."""
    collection = Collection(default_collection_path(), embedder=embedder, limits=limits)
    collection.ingest(default_sources())
    return collection


def open_collection(collection: str | Path | None = None, embedder: str | Embedder | None = None,
                    create: bool = False, limits: CollectionLimits | None = None) -> Collection:
    """Open a collection by path; None opens (and if needed builds) the default collection."""
    if isinstance(embedder, str):
        embedder = Embedder(embedder)
    limits = limits or Settings.from_env().collection_limits()
    if collection is None:
        return ensure_default_collection(embedder, limits)
    return Collection(collection, embedder=embedder, create=create, limits=limits)


def reindex_collection(collection: str | Path | None, embedder: str | None = None) -> str:
    """Rebuild a collection's indexes from its database; with `embedder`, re-embed every document for that
    model into a fresh collection and swap it in only once it is complete (the old one stays until then)."""
    path = resolve_collection_path(collection)
    if embedder is None:
        Collection.repair(path)
        return f"Rebuilt the dense and BM25 indexes of {path} from its database."
    from spanqa.retriever.store import Store

    store = Store(path / "collection.sqlite", create=False)
    documents = [store.document(info.id) for info in store.documents()]
    store.close()
    staging = path.with_name(path.name + ".reindexing")
    shutil.rmtree(staging, ignore_errors=True)
    rebuilt = Collection(staging, embedder=Embedder(embedder))
    report = rebuilt.add_documents(LoadReport(documents=[d for d in documents if d is not None]))
    rebuilt.close()
    retired = path.with_name(path.name + ".old")
    shutil.rmtree(retired, ignore_errors=True)
    path.rename(retired)
    staging.rename(path)
    shutil.rmtree(retired, ignore_errors=True)
    return f"Re-embedded {path} with {embedder}: {report.summary()}"

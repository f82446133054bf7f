"""What every writable collection backend does the same way: the ingest pipeline (load → chunk → embed →
one transaction per document), the embedding-model check, search-argument checks and reciprocal rank fusion.

A backend supplies storage primitives (`commit_document`, `_remove`, `ranked`, `_passages`, ...; the first two
write seams are public, as a distributed ingest writes through them too); this class turns them
into the `Collection` protocol, so both backends chunk, embed, fuse and refuse in exactly one way.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path

import numpy as np
from spanqa.retriever.chunking import Chunker, ChunkingSettings
from spanqa.retriever.embedding import PROBE_TEXT, Embedder
from spanqa.retriever.fusion import reciprocal_rank_fusion
from spanqa.retriever.loaders import LoadError, LoadReport, load_bytes, load_paths, safe_source_name
from spanqa.retriever.memory import release_freed_memory
from spanqa.retriever.protocol import IngestReport, ProgressCallback
from spanqa.retriever.records import Document, Hit, Passage, SkippedFile
from spanqa.retriever.sync import FolderSync, SyncReport

from spanqa.errors import CollectionCorruptError, EmbeddingMismatchError, InputError
from spanqa.settings import SEARCH_MODES, CollectionLimits, SearchMode, Settings

__all__ = ["CollectionBase", "new_manifest", "check_manifest", "check_search_arguments", "embedding_text",
           "EMBED_GROUP_PASSAGES"]

MANIFEST_FORMAT = 1
# Passages embedded per encode call across short documents (vectors are committed per document all the same).
EMBED_GROUP_PASSAGES = 256

Ranked = dict[str, list[tuple[int, float]]]  # retriever name → (passage id, score), best first


def embedding_text(passage: Passage, titled: bool) -> str:
    """What a passage's vector is computed from. A passage alone often lacks the words that say what it is about
    (the package a README section documents, the article a paragraph comes from); its document's title supplies
    them, as Haystack's `meta_fields_to_embed` does. Measured recall@5 (hybrid) with the title vs without: technical
    set 0.742 vs 0.688, COVID-QA 0.732 vs 0.718, new_wiki 0.956 vs 0.955. BM25 keeps the passage text alone (the
    title added nothing there). `titled` comes from the collection's manifest: a collection built before keeps
    its untitled vectors, consistent, until `spanqa reindex --embedder MODEL` re-embeds it."""
    if not titled or not passage.title or opens_with_title(passage):
        return passage.text
    return f"{passage.title}\n{passage.text}"


def opens_with_title(passage: Passage) -> bool:
    """Whether the passage already starts with its title: a document's first passage under its heading, or any
    document without one, whose title is its own first line (loaders._title_of). Adding the title again would
    only repeat those words: on one-paragraph files it made the embedded text 18.5 % longer (300 new_wiki
    paragraphs), ingest that much slower (bench.ingest_scale), for no new information."""
    head = passage.text.lstrip("#=*-_ \t\n")
    return head.startswith(passage.title)


def new_manifest(embedder: Embedder, chunking: ChunkingSettings) -> dict:
    """What a collection records about how it was built: the embedder (with a probe vector), the chunking and
    what a passage's vector is computed from."""
    return {
        "format": MANIFEST_FORMAT,
        "embed_title": True,
        "embedding_model": embedder.name,
        "dimension": embedder.dimension,
        # Informational: vectors of either precision agree (the probe check below holds across them).
        "embedding_precision": embedder.precision,
        "probe": [round(float(x), 6) for x in embedder.encode(PROBE_TEXT)[0]],
        "chunking": asdict(chunking),
        "created": time.time(),
    }


def check_manifest(manifest: dict, embedder: Embedder, location: str, reindex_hint: str) -> ChunkingSettings:
    """Refuse an embedder other than the one the collection was built with; return the collection's chunking."""
    try:
        recorded, dimension = manifest["embedding_model"], int(manifest["dimension"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CollectionCorruptError(f"The manifest of {location} is unreadable ({exc!r})") from exc
    fix = f"open it with the embedder it was built with (--embedder {recorded}), or {reindex_hint}"
    if recorded != embedder.name or dimension != embedder.dimension:
        raise EmbeddingMismatchError(
            f"Collection {location} was built with embedding model {recorded!r} ({dimension}-d), but "
            f"{embedder.name!r} ({embedder.dimension}-d) was given: {fix}")
    probe = np.asarray(manifest.get("probe", []), dtype=np.float32)
    if probe.shape == (dimension,) and float(probe @ embedder.encode(PROBE_TEXT)[0]) < 0.99:
        raise EmbeddingMismatchError(
            f"Collection {location} was built with a different {recorded!r} (its vectors disagree): {fix}")
    return ChunkingSettings(**{k: v for k, v in manifest.get("chunking", {}).items()
                               if k in ChunkingSettings.__dataclass_fields__})


def check_search_arguments(queries: list[str], k: int, mode: str, limits: CollectionLimits) -> None:
    """The refusals every backend's search gives, in the same words."""
    if mode not in SEARCH_MODES:
        raise InputError(f"mode must be one of {SEARCH_MODES}, got {mode!r}")
    if not 1 <= k <= limits.max_results:
        raise InputError(f"k must be between 1 and {limits.max_results:,} (the max_results limit), got {k}")
    if not queries or any(not q.strip() for q in queries):
        raise InputError("The query is empty")


def _embedding_groups(pending: list[tuple[Document, list[Passage], bool]], passages: int = EMBED_GROUP_PASSAGES):
    """Consecutive documents with about `passages` passages between them: short documents are embedded together
    in full batches instead of one small batch each."""
    group: list[tuple[Document, list[Passage], bool]] = []
    count = 0
    for item in pending:
        group.append(item)
        count += len(item[1])
        if count >= passages:
            yield group
            group, count = [], 0
    if group:
        yield group


class CollectionBase:
    """The shared half of a writable collection; subclasses store and search."""

    embedder: Embedder
    limits: CollectionLimits
    chunking: ChunkingSettings
    manifest: dict  # how the collection was built (`new_manifest`): every backend stores and reloads it

    def __init__(self, embedder: Embedder | None, limits: CollectionLimits | None) -> None:
        self.embedder = embedder or Embedder()
        self.limits = limits or CollectionLimits()
        self._write_lock = threading.RLock()
        self._chunker: Chunker | None = None

    # --- what a backend provides ------------------------------------------------------------------------

    @property
    def location(self) -> str:
        raise NotImplementedError

    def write_guard(self) -> AbstractContextManager:
        """Held for a whole write (ingest, delete): one writer at a time per collection."""
        return self._write_lock

    def _stored_hash(self, document_id: str) -> str | None:
        raise NotImplementedError

    def commit_document(self, document: Document, passages: list[Passage], vectors: np.ndarray) -> None:
        """Replace `document` and its passages in one transaction; set each passage's id."""
        raise NotImplementedError

    def _remove(self, document_id: str) -> None:
        raise NotImplementedError

    def original(self, document_id: str) -> bytes | None:
        """The file a document was read from, as it was read; None where it was not kept."""
        raise NotImplementedError

    def finish_writes(self) -> None:
        """Called once after a batch of writes (e.g. to refresh caches)."""

    def ranked(self, query: str, vector: np.ndarray | None, mode: str, pool: int) -> Ranked:
        raise NotImplementedError

    def _passages(self, ids: list[int]) -> dict[int, Passage]:
        raise NotImplementedError

    def _passage_ids(self, document_id: str) -> list[int]:
        """The ids of a document's stored passages (integrity checks)."""
        raise NotImplementedError

    def _vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        raise NotImplementedError

    def _get_meta(self, key: str) -> str | None:
        raise NotImplementedError

    def _set_meta(self, key: str, value: str) -> None:
        raise NotImplementedError

    # --- writing -------------------------------------------------------------------------------------

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            # A copy of the tokenizer: the shared one is in use by searches on other threads, and its truncation
            # settings are shared state (see retriever.embedding). The chunker itself only runs under the write lock.
            tokenizer = copy.deepcopy(self.embedder.tokenizer)
            self._chunker = Chunker(tokenizer, self.chunking, self.limits.max_passages_per_document)
        return self._chunker

    def ingest(self, paths: Iterable[str | Path], include: list[str] | None = None,
               exclude: list[str] | None = None, progress: ProgressCallback | None = None,
               ray: str | None = None, settings: Settings | None = None) -> IngestReport:
        """Ingest files and folders; unchanged files are skipped without embedding.

        Args:
            ray: read, chunk and embed on a Ray cluster (retriever.distributed): "local" (a Ray started on this
                machine for the run), "auto" (the cluster this machine belongs to), "host:port" or
                "ray://host:port"; None: in this process. The result is the same either way.
            settings: the door's, for the Ray run (device, timeout, workers, batch size).
        """
        if ray is not None:
            from spanqa.retriever.distributed import RayIngest

            return RayIngest(self, ray, settings or Settings()).run(paths, include, exclude, progress)
        report = load_paths(list(paths), include, exclude, self.limits.max_file_bytes)
        return self.add_documents(report, progress)

    def ingest_bytes(self, files: list[tuple[str, bytes]], progress: ProgressCallback | None = None) -> IngestReport:
        """Ingest uploads: (file name, content) pairs. Names are labels only; nothing is written to disk."""
        loaded = LoadReport()
        for name, data in files:
            source = safe_source_name(name)
            try:
                loaded.documents.append(load_bytes(source, data, self.limits.max_file_bytes))
            except LoadError as exc:
                loaded.skipped.append(SkippedFile(source, f"{source} {exc}"))
        return self.add_documents(loaded, progress)

    def add_documents(self, loaded: LoadReport, progress: ProgressCallback | None = None) -> IngestReport:
        started = time.time()
        report = IngestReport(skipped=list(loaded.skipped))
        with self.write_guard():
            pending = self._chunk_changed(loaded.documents, report)
            total, done = len(pending), 0
            titled = bool(self.manifest.get("embed_title", False))
            for group in _embedding_groups(pending):
                if progress:
                    first = Path(group[0][0].source).name
                    what = first if len(group) == 1 else f"{first} and {len(group) - 1} more"
                    progress(f"Embedding {what} ({sum(len(p) for _, p, _ in group)} passages)", done, total)
                texts = [embedding_text(p, titled) for _, passages, _ in group for p in passages]
                vectors = self.embedder.encode(texts)
                release_freed_memory()  # each group's activations, in its own shapes, would otherwise stay
                for (document, passages, replaced), own in zip(group, _split(vectors, group), strict=True):
                    self.commit_document(document, passages, own)  # one transaction: a crash leaves it old or new
                    (report.updated if replaced else report.added).append(document.source)
                    report.passages += len(passages)
                    done += 1
            if pending:
                self.finish_writes()
            if progress:
                progress("Done", total, total)
        report.seconds = time.time() - started
        return report

    def _chunk_changed(self, documents: list[Document], report: IngestReport) -> list[tuple[Document, list, bool]]:
        """(document, passages, replaces an older version) for each new or changed document."""
        pending = []
        for document in documents:
            previous = self._stored_hash(document.id)
            if previous == document.hash:
                report.unchanged.append(document.source)
                continue
            try:
                passages = self.chunker.split(document)
            except InputError as exc:
                report.skipped.append(SkippedFile(document.source, str(exc)))
                continue
            pending.append((document, passages, previous is not None))
        return pending

    def delete(self, document: str) -> bool:
        """Delete a document by id or by source; False if there is no such document."""
        with self.write_guard():
            match = [d for d in self.documents() if document in (d.id, d.source)]
            if not match:
                return False
            self.remove_documents([match[0].id])
            return True

    def remove_documents(self, document_ids: list[str], finish: bool = True) -> None:
        """Remove documents by id, each in its own transaction (a write seam, as `commit_document` is); with
        `finish=False` the caller calls `finish_writes` once after its other writes."""
        if not document_ids:
            return
        with self.write_guard():
            for document_id in document_ids:
                self._remove(document_id)
            if finish:
                self.finish_writes()

    def original_to_keep(self, document: Document) -> bytes | None:
        """What a backend stores as the document's original: its bytes, unless the collection keeps none."""
        return document.original if self.limits.keep_originals else None

    def stored_passages(self, document_id: str) -> tuple[list[Passage], np.ndarray]:
        """A document's stored passages, in order, and their vectors (to re-point a moved file unembedded)."""
        ids = self._passage_ids(document_id)
        passages, vectors = self._passages(ids), self._vectors(ids)
        ordered = sorted((passages[i] for i in ids), key=lambda p: p.index)
        dimension = int(self.manifest.get("dimension", 0)) if ordered else 0
        stacked = np.stack([vectors[p.id] for p in ordered]) if ordered else np.zeros((0, dimension), np.float32)
        return ordered, stacked

    def sync_guard(self) -> AbstractContextManager:
        """Held for a whole sync, across processes: a second sync of the same collection is refused."""
        raise NotImplementedError

    def sync(self, roots: Iterable[str | Path], include: list[str] | None = None, exclude: list[str] | None = None,
             allow_empty_root: bool = False, progress: ProgressCallback | None = None, ray: str | None = None,
             settings: Settings | None = None) -> SyncReport:
        """Make the collection mirror the files under `roots` (retriever/sync.py): new files ingested, changed
        ones replaced, vanished ones removed, moved ones re-pointed without embedding. `ray` and `settings` as
        for `ingest`: the new and changed files are embedded on that cluster."""
        return FolderSync(self, roots, include, exclude, allow_empty_root, progress, ray, settings).run()

    def get_setting(self, key: str) -> dict | None:
        """A JSON setting stored with the collection (e.g. the engine's answer calibration), or None."""
        raw = self._get_meta(f"setting:{key}")
        return json.loads(raw) if raw is not None else None

    def put_setting(self, key: str, value: dict) -> None:
        """Store a JSON setting with the collection: every process that opens it sees it on its next read."""
        self._set_meta(f"setting:{key}", json.dumps(value))

    # --- reading -------------------------------------------------------------------------------------

    def search(self, query: str, k: int = Settings.top_k, mode: SearchMode = Settings.retrieval_mode,
               weights: dict[str, float] | None = None, candidates: int | None = None) -> list[Hit]:
        """The `k` best passages for `query`.

        Args:
            mode: "dense" (embeddings), "bm25" (words) or "hybrid" (both, fused by reciprocal rank).
            weights: per-retriever RRF weights for hybrid, e.g. {"dense": 1.0, "bm25": 0.5}.
            candidates: how many each retriever contributes before fusion (default max(4k, 20)).
        """
        return self.search_many([query], k, mode, weights, candidates)[0]

    def search_many(self, queries: list[str], k: int = Settings.top_k, mode: SearchMode = Settings.retrieval_mode,
                    weights: dict[str, float] | None = None, candidates: int | None = None) -> list[list[Hit]]:
        """`search` for several queries at once: one embedding call for all of them, one dense-index call where
        the backend can, and one passage lookup. Each list of hits is what `search` returns for that query."""
        check_search_arguments(queries, k, mode, self.limits)
        pool = candidates if candidates is not None else max(4 * k, 20)
        vectors = self.embedder.encode_queries(list(queries)) if mode != "bm25" else None
        ranked = self.ranked_many(queries, vectors, mode, pool if mode == "hybrid" else k)
        fused = [reciprocal_rank_fusion(r, weights)[:k] for r in ranked]
        passages = self._passages(sorted({f.id for items in fused for f in items}))
        missing = sorted({f.id for items in fused for f in items if "dense" not in f.scores}) if vectors is not None \
            else []
        stored = self._vectors(missing) if missing else {}
        return [self._hits(items, passages, stored, None if vectors is None else vectors[i])
                for i, items in enumerate(fused)]

    def ranked_many(self, queries: list[str], vectors: np.ndarray | None, mode: str, pool: int) -> list[Ranked]:
        """One ranking per query; a backend that can search many vectors in one call overrides this."""
        return [self.ranked(q, None if vectors is None else vectors[i], mode, pool) for i, q in enumerate(queries)]

    @staticmethod
    def _hits(fused, passages: dict[int, Passage], stored: dict[int, np.ndarray],
              vector: np.ndarray | None) -> list[Hit]:
        hits = []
        for item in fused:
            passage = passages.get(item.id)
            if passage is None:  # deleted between the index lookup and now
                continue
            dense_score = item.scores.get("dense")
            if dense_score is None and item.id in stored and vector is not None:
                # Found by BM25 alone: its cosine is still evidence for the reader and for abstention.
                dense_score = float(stored[item.id] @ vector)
            hits.append(Hit(passage, item.score, dense_score, item.scores.get("bm25"),
                            item.ranks.get("dense"), item.ranks.get("bm25")))
        return hits

    def existing(self, passage_ids: Iterable[int]) -> set[int]:
        """Which of these passages still exist (their document may have been deleted since they were found)."""
        return set(self._passages(list(passage_ids)))


def _split(vectors: np.ndarray, group: list[tuple[Document, list[Passage], bool]]) -> Iterator[np.ndarray]:
    offset = 0
    for _, passages, _ in group:
        yield vectors[offset : offset + len(passages)]
        offset += len(passages)

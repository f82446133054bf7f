"""The two search indexes over a collection's passages: dense (FAISS) and lexical (BM25, bm25s).

Both are caches of the SQLite store, stamped with the store's generation when saved; a stale or missing one is
rebuilt from the store. Both speak passage ids, never row positions.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

__all__ = ["DenseIndex", "LexicalIndex", "IndexFileError", "HNSW_THRESHOLD", "HNSW_M", "HNSW_EF_SEARCH",
           "HNSW_EF_CONSTRUCTION"]

# Up to this many passages an exact inner-product search is fast enough (~20 ms per query for 100 k x 384);
# above it, HNSW trades a little recall for sub-linear search.
HNSW_THRESHOLD = 100_000
# The HNSW graph's degree, build beam and search beam. `spanqa bench scale` at 1 M passages (README): with FAISS's
# default build beam (40) recall@10 was 0.78 at efSearch 128 and 0.88 even at 512; with 128 it is 1.000 at
# efSearch 128 (p50 0.62 ms), for a 2.7x longer build (509 s vs 186 s on 2 cores).
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 128


class IndexFileError(Exception):
    """An index file exists but cannot be read."""


def _write_stamp(path: Path, generation: int, extra: dict | None = None) -> None:
    # "bm25.json.tmp", not "bm25.tmp": that name is the BM25 staging directory, and a stamp file left there by
    # a crash would make every later save fail.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"generation": generation, **(extra or {})}))
    os.replace(tmp, path)


def _read_stamp(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def saved_generation(directory: Path) -> int | None:
    """The store generation both saved indexes in `directory` were built at (the older of the two), or None."""
    stamps = [_read_stamp(directory / name) for name in ("dense.json", "bm25.json")]
    if any(stamp is None or not isinstance(stamp.get("generation"), int) for stamp in stamps):
        return None
    return min(stamp["generation"] for stamp in stamps)


class DenseIndex:
    """FAISS inner-product search over unit vectors (= cosine), with stable int64 passage ids."""

    def __init__(self, dimension: int, hnsw_threshold: int = HNSW_THRESHOLD) -> None:
        import faiss

        self.dimension = dimension
        self.hnsw_threshold = hnsw_threshold
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.needs_rebuild = False  # HNSW cannot delete: it is rebuilt from the store instead

    @property
    def kind(self) -> str:
        import faiss

        return "hnsw" if isinstance(faiss.downcast_index(self.index.index), faiss.IndexHNSWFlat) else "flat"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def build(self, batches) -> None:
        """Replace the index with the (ids, vectors) batches given; choose flat or HNSW by size."""
        import faiss

        batches = list(batches)
        total = sum(len(ids) for ids, _ in batches)
        if total > self.hnsw_threshold:
            inner = faiss.IndexHNSWFlat(self.dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efSearch = HNSW_EF_SEARCH
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        else:
            inner = faiss.IndexFlatIP(self.dimension)
        self.index = faiss.IndexIDMap2(inner)
        for ids, vectors in batches:
            self.index.add_with_ids(vectors, ids)
        self.needs_rebuild = False

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, np.int64))

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        if self.kind == "hnsw":
            self.needs_rebuild = True
            return
        self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.search_many(query.reshape(1, -1), k)[0]

    def search_many(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """The k nearest passages of each row of `queries`, in one FAISS call."""
        if len(self) == 0 or k < 1:
            return [[] for _ in range(len(queries))]
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(self)))
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i != -1]
                for row_ids, row_scores in zip(ids, scores, strict=True)]

    def ids(self) -> set[int]:
        import faiss

        return set(faiss.vector_to_array(self.index.id_map).tolist())

    def save(self, directory: Path, generation: int) -> None:
        import faiss

        tmp = directory / "dense.faiss.tmp"
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, directory / "dense.faiss")
        _write_stamp(directory / "dense.json", generation, {"kind": self.kind, "count": len(self)})

    def load(self, directory: Path, generation: int) -> bool:
        """Load the saved index if it matches `generation`. False: stale or absent (rebuild it).
        Raises IndexFileError when the file is current but unreadable."""
        import faiss

        stamp = _read_stamp(directory / "dense.json")
        if stamp is None or stamp.get("generation") != generation or not (directory / "dense.faiss").is_file():
            return False
        try:
            index = faiss.read_index(str(directory / "dense.faiss"))
        except RuntimeError as exc:
            raise IndexFileError(f"the dense index {directory / 'dense.faiss'} is unreadable ({exc})") from exc
        if index.d != self.dimension or index.ntotal != stamp.get("count"):
            raise IndexFileError(f"the dense index {directory / 'dense.faiss'} does not match its stamp")
        self.index = index
        return True


@functools.cache
def _english_stemmer():
    """One Snowball stemmer per process: building it on every query was on the search hot path."""
    import Stemmer

    return Stemmer.Stemmer("english")


# Raised when the terms an index is built from change: an index saved with another version is rebuilt from the
# database on open, never queried with terms it was not built with.
LEXICAL_TERMS_VERSION = 2
_IDENTIFIER = re.compile(r"-{0,2}[A-Za-z_][\w.\-]*\w")
_WORD_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def identifier_terms(text: str) -> list[str]:
    """Extra BM25 terms for the code identifiers in `text`, so that technical text matches how people ask.

    `os.path.join` → os_path_join (the whole name as one rare term; os, path and join are already terms);
    `create_task` → create, task (the whole name is already a term); `--dry-run` → dry_run;
    `ThreadPoolExecutor` → thread_pool_executor, thread, pool, executor. Questions and passages both get them.
    """
    extra: list[str] = []
    for name in _IDENTIFIER.findall(text):
        parts = [w.lower() for piece in re.split(r"[._\-]+", name.strip("-")) for w in _WORD_PARTS.findall(piece)]
        if len(parts) < 2:
            continue
        camel = re.search(r"[a-z][A-Z]", name) is not None
        if any(c in name for c in ".-") or camel:  # the whole name is not already one \w+ term
            extra.append("_".join(parts))
        if "_" in name or camel:  # its words are not already separate terms
            extra.extend(parts)
    return extra


class LexicalIndex:
    """BM25 (bm25s, Lucene variant) with English stop words, Snowball stemming and code-identifier terms.

    bm25s has no incremental update; re-indexing is fast (about 50 k passages/s), so every write rebuilds it.
    """

    def __init__(self) -> None:
        self.retriever = None
        self.passage_ids: list[int] = []

    def __len__(self) -> int:
        return len(self.passage_ids)

    def _tokenize(self, texts: list[str]):
        import bm25s

        with_identifiers = [f"{t} {' '.join(identifier_terms(t))}" for t in texts]
        return bm25s.tokenize(with_identifiers, stopwords="en", stemmer=_english_stemmer(), show_progress=False)

    def build(self, batches) -> None:
        import bm25s

        ids: list[int] = []
        texts: list[str] = []
        for batch_ids, batch_texts in batches:
            ids.extend(batch_ids)
            texts.extend(batch_texts)
        self.passage_ids = ids
        if not texts:
            self.retriever = None
            return
        retriever = bm25s.BM25()
        retriever.index(self._tokenize(texts), show_progress=False)
        self.retriever = retriever

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        if self.retriever is None or not self.passage_ids or k < 1:
            return []
        tokens = self._tokenize([query])
        if not tokens.ids or not tokens.ids[0]:
            return []  # nothing but stop words or symbols: BM25 has nothing to match
        rows, scores = self.retriever.retrieve(tokens, k=min(k, len(self.passage_ids)), show_progress=False,
                                               n_threads=1)
        return [(self.passage_ids[int(r)], float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]

    def save(self, directory: Path, generation: int) -> None:
        target = directory / "bm25"
        tmp = directory / "bm25.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if self.retriever is not None:
            self.retriever.save(str(tmp))
        (tmp / "passage_ids.json").write_text(json.dumps(self.passage_ids))
        old = directory / "bm25.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
        _write_stamp(directory / "bm25.json", generation,
                     {"count": len(self.passage_ids), "terms_version": LEXICAL_TERMS_VERSION})

    def load(self, directory: Path, generation: int) -> bool:
        import bm25s

        stamp = _read_stamp(directory / "bm25.json")
        target = directory / "bm25"
        if (stamp is None or stamp.get("generation") != generation or not target.is_dir()
                or stamp.get("terms_version") != LEXICAL_TERMS_VERSION):
            return False
        try:
            ids = json.loads((target / "passage_ids.json").read_text())
            retriever = bm25s.BM25.load(str(target)) if ids else None
        except (OSError, ValueError, KeyError) as exc:
            raise IndexFileError(f"the BM25 index {target} is unreadable ({exc})") from exc
        if len(ids) != stamp.get("count"):
            raise IndexFileError(f"the BM25 index {target} does not match its stamp")
        self.passage_ids, self.retriever = ids, retriever
        return True

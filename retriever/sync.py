"""Collections that follow their folders: `Collection.sync(roots)` makes a collection mirror the files under roots.

People point spanqa at folders that keep changing. An ingest adds new files and replaces changed ones; a sync also
removes the documents whose files are gone and re-points a renamed or moved file (the same text under another
path) to its new path with its stored passages and vectors, so nothing is embedded twice. A sync owns only the
documents under its roots that its include/exclude globs select: uploads and other folders are left alone.

What it costs: a file whose size and modification time are those recorded at the last sync is not read at all
(the record is a collection setting, "sync"), so a sync with nothing changed reads directory entries only; a file
whose stamp moved is read and compared by its text's hash, and only new or changed text is embedded.

What it refuses, so that a mistake never empties a collection: a root that does not exist, or that holds no files
while the collection holds documents from it (a vanished mount), unless `allow_empty_root`; and a second sync of
the same collection while one runs (the backend's `sync_guard`, across processes). A file that changes while it is
read is skipped with its reason and read again by the next sync; an unreadable one is reported and its stored
version kept.

Crash safety comes from the writes it is made of: each document is replaced or removed in one transaction, and
a rename writes the new document before removing the old one, so a sync killed at any point leaves whole
documents, and the next sync removes whatever the dead one left twice. The search indexes are rebuilt once per
sync, after its last write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from spanqa.retriever.loaders import LoadReport, list_files, load_file, matches
from spanqa.retriever.protocol import ProgressCallback
from spanqa.retriever.records import Document, DocumentInfo, SkippedFile

from spanqa.errors import InputError

__all__ = ["SYNC_SETTING", "SyncReport", "FolderSync"]

SYNC_SETTING = "sync"  # the collection setting holding each synced file's (size, mtime_ns) at the last sync


@dataclass
class SyncReport:
    """What a sync did: sources added, updated (new text), removed (file gone), renamed (old → new source, not
    re-embedded), unchanged, and skipped with their reasons."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    passages: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.renamed)

    def to_dict(self) -> dict[str, Any]:
        counts = {name: len(getattr(self, name)) for name in
                  ("added", "updated", "removed", "renamed", "unchanged", "skipped")}
        return {**counts, "passages": self.passages, "seconds": round(self.seconds, 3),
                "files": {"added": self.added, "updated": self.updated, "removed": self.removed,
                          "renamed": [{"from": old, "to": new} for old, new in self.renamed],
                          "skipped": [asdict(s) for s in self.skipped]}}

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
                f"{len(self.renamed)} renamed, {len(self.unchanged)} unchanged, {len(self.skipped)} skipped; "
                f"{self.passages} passages embedded in {self.seconds:.1f}s")


def _stamp(path: Path) -> list[int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return [status.st_size, status.st_mtime_ns]


def _under(source: str, roots: list[Path]) -> Path | None:
    """The root `source` (an absolute path) lies under or is, else None."""
    path = Path(source)
    return next((root for root in roots if path == root or root in path.parents), None)


class FolderSync:
    """One sync of `collection` with `roots` (see the module docstring). The collection provides the public
    write seams of retriever.base.CollectionBase."""

    def __init__(self, collection: Any, roots: Iterable[str | Path], include: list[str] | None = None,
                 exclude: list[str] | None = None, allow_empty_root: bool = False,
                 progress: ProgressCallback | None = None, ray: str | None = None, settings: Any = None) -> None:
        self.collection = collection
        self.ray, self.settings = ray, settings  # new and changed files embedded on a Ray cluster (as ingest)
        self.given = [Path(r) for r in roots]
        if not self.given:
            raise InputError("Name at least one folder or file to sync")
        self.roots = [r.resolve() for r in self.given]
        self.include, self.exclude = include, exclude
        self.allow_empty_root = allow_empty_root
        self.progress = progress

    def run(self) -> SyncReport:
        started = time.time()
        report = SyncReport()
        with self.collection.sync_guard(), self.collection.write_guard():
            owned = self._owned()
            current, unreadable = self._listed(owned)
            report.skipped += unreadable
            stamps = (self.collection.get_setting(SYNC_SETTING) or {}).get("files", {})
            fresh = {s: _stamp(p) for s, p in current.items()}
            loaded = self._read_changed(current, fresh, stamps, owned, report)
            hidden = [Path(u.source) for u in unreadable]  # what they hold is not gone, only unseen this time
            gone = {s: d for s, d in owned.items() if s not in current and _under(s, hidden) is None}
            new = self._moves(loaded, owned, gone, report)
            moved_from = {old for old, _ in report.renamed}
            report.removed = sorted(s for s in gone if s not in moved_from)
            # The indexes are rebuilt once, by the ingest (or below when it adds nothing): bm25s rebuilds whole.
            self.collection.remove_documents([gone[s].id for s in sorted(gone)], finish=False)
            ingest = self._ingest(new)
            if gone and not (ingest.added or ingest.updated):
                self.collection.finish_writes()
            report.added += ingest.added
            report.updated += ingest.updated
            report.unchanged += ingest.unchanged
            report.skipped += ingest.skipped
            report.passages = ingest.passages
            kept = {s: fresh[s] for s in current if fresh[s] is not None and s not in
                    {f.source for f in report.skipped}}
            self.collection.put_setting(SYNC_SETTING, {"files": {**self._outside(stamps), **kept}})
        report.seconds = time.time() - started
        return report

    def _ingest(self, documents: list[Document]) -> Any:
        """Store the new and changed documents: here, or read, chunked and embedded again on the Ray cluster."""
        if self.ray is None or not documents:
            return self.collection.add_documents(LoadReport(documents=documents), self.progress)
        return self.collection.ingest([d.source for d in documents], ray=self.ray, settings=self.settings,
                                      progress=self.progress)

    def _owned(self) -> dict[str, DocumentInfo]:
        """The collection's documents this sync owns: under a root, and selected by the globs."""
        return {d.source: d for d in self.collection.documents() if _under(d.source, self.roots) is not None
                and self._selected(Path(d.source))}

    def _selected(self, path: Path) -> bool:
        return not (self.include and not matches(path, self.include)) and \
            not (self.exclude and matches(path, self.exclude))

    def _outside(self, stamps: dict[str, list[int]]) -> dict[str, list[int]]:
        """The recorded stamps of files that other syncs (other roots) own."""
        return {s: v for s, v in stamps.items() if _under(s, self.roots) is None}

    def _listed(self, owned: dict[str, DocumentInfo]) -> tuple[dict[str, Path], list[SkippedFile]]:
        """The files under the roots (by their source: the resolved path) and the folders that could not be read,
        after refusing a root that vanished while the collection holds its files."""
        files, missing = list_files(self.given, self.include, self.exclude)
        current = {str(f.resolve()): f for f in files}
        unreadable = [m for m in missing if Path(m.source).exists()]
        for given, root in zip(self.given, self.roots, strict=True):
            holds = any(_under(s, [root]) for s in owned)
            lists = any(_under(s, [root]) for s in current)
            if not given.exists() and not (holds and self.allow_empty_root):
                if holds:
                    raise InputError(f"{given} does not exist, and the collection holds {self._count(owned, root)} "
                                     "documents from it: a vanished folder or mount must not empty the collection "
                                     "(pass --allow-empty-root to remove them)")
                raise InputError(f"{given} does not exist")
            if holds and not lists and not self.allow_empty_root:
                raise InputError(f"{given} holds no files the sync reads, but the collection holds "
                                 f"{self._count(owned, root)} documents from it: a vanished mount must not empty "
                                 "the collection (pass --allow-empty-root to remove them)")
        return current, unreadable

    @staticmethod
    def _count(owned: dict[str, DocumentInfo], root: Path) -> int:
        return sum(_under(s, [root]) is not None for s in owned)

    def _read_changed(self, current: dict[str, Path], fresh: dict[str, list[int] | None],
                      stamps: dict[str, list[int]], owned: dict[str, DocumentInfo],
                      report: SyncReport) -> list[Document]:
        """The documents of the files whose stamp moved since the last sync (or that the collection lacks); the
        others are unchanged without being read."""
        loaded = []
        for source, path in current.items():
            if source in owned and fresh[source] is not None and stamps.get(source) == fresh[source]:
                report.unchanged.append(source)
                continue
            document = load_file(path, self.collection.limits.max_file_bytes)
            if isinstance(document, SkippedFile):
                report.skipped.append(document)
            elif _stamp(path) != fresh[source]:
                report.skipped.append(SkippedFile(source, f"{path.name} changed while it was read; the next sync "
                                                          "reads it again"))
            else:
                loaded.append(document)
        return loaded

    def _moves(self, loaded: list[Document], owned: dict[str, DocumentInfo], gone: dict[str, DocumentInfo],
               report: SyncReport) -> list[Document]:
        """Re-point each new file whose text a vanished file held (a rename or a move) without embedding it;
        return the documents left to ingest."""
        by_hash: dict[str, list[str]] = {}
        for source, info in gone.items():
            by_hash.setdefault(info.hash, []).append(source)
        left = []
        for document in loaded:
            previous = by_hash.get(document.hash)
            if document.source in owned or not previous:
                left.append(document)
                continue
            old = previous.pop()
            self._repoint(gone[old], document)
            report.renamed.append((old, document.source))
        return left

    def _repoint(self, old: DocumentInfo, document: Document) -> None:
        """`document` (the same text as `old`, under a new path) stored with `old`'s passages and vectors; `old`
        is removed with the vanished files, after."""
        passages, vectors = self.collection.stored_passages(old.id)
        moved = [replace(p, document_id=document.id, source=document.source, id=-1) for p in passages]
        self.collection.commit_document(document, moved, vectors)


def watch(sync: Callable[[], Any], roots: list[Path], on_outcome: Callable[[Any], None], debounce_ms: int = 1600,
          stop: Any = None) -> None:
    """Call `sync()` whenever files under `roots` change, and hand its result to `on_outcome`: a burst of changes
    (a checkout touching hundreds of files) is gathered for `debounce_ms` and synced once. Runs until `stop` (a
    threading.Event) is set or Ctrl-C."""
    from watchfiles import watch as watch_files

    for _ in watch_files(*roots, debounce=debounce_ms, step=100, stop_event=stop, raise_interrupt=False):
        on_outcome(sync())

"""Ingestion on a Ray cluster: the same files → passages → vectors → stored documents as `CollectionBase.ingest`,
with the reading, chunking and embedding spread over the cluster's workers by Ray Data.

    driver   lists the files (paths every node can read: a shared filesystem) and the stored content hashes
    tasks    read and parse each file and cut its passages: the same loaders, chunker, limits and skip reasons
    actors   embed the passages in batches, one model per actor (a GPU each where the cluster has them); for a
             PostgreSQL collection they also write each document, in its own transaction, by COPY
    driver   for an embedded collection (SQLite + FAISS), commits each document as its vectors stream back

Every document is written in one transaction keyed by its content hash, so a task that Ray runs again after its
worker died writes nothing twice, and a run that failed is completed by running it again.
"""

from __future__ import annotations

import functools
import pickle
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from spanqa.retriever.base import CollectionBase, embedding_text
from spanqa.retriever.chunking import Chunker, ChunkingSettings
from spanqa.retriever.loaders import list_files, load_file
from spanqa.retriever.protocol import IngestReport, ProgressCallback
from spanqa.retriever.records import SkippedFile

from spanqa.errors import CollectionError, InputError
from spanqa.settings import PostgresSettings, Settings

__all__ = ["RayIngest", "RAY_EXTRA", "LOCAL_RAY"]

RAY_EXTRA = "pip install 'spanqa[ray]'"
LOCAL_RAY = "local"  # the address that means: start a Ray on this machine for the run, and stop it afterwards


def import_ray():
    """Ray and Ray Data, or a clear error naming the extra that installs them."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise InputError(f"Ingesting with --ray needs Ray, an optional extra: {RAY_EXTRA} ({exc})") from exc
    return ray


# --- connecting -------------------------------------------------------------------------------------------


def _host_port(address: str) -> tuple[str, int] | None:
    """The (host, port) an explicit address names ("host:port" or "ray://host:port"); None for "auto"."""
    if address == "auto":
        return None
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    if not parts.hostname or parts.port is None:
        raise InputError(f"Ray address {address!r}: give host:port (the head's GCS port, 6379 by default), "
                         "ray://host:port (Ray Client, port 10001), auto, or nothing for a local Ray")
    return parts.hostname, parts.port


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _init(ray, **kwargs) -> None:
    """ray.init, its failure said as a spanqa error. (In this thread: a Ray started from another thread dies.)"""
    try:
        ray.init(**kwargs)
    except Exception as exc:  # ray.init's failures (refused, authentication, version mismatch) have no common root
        raise CollectionError(f"Could not connect to the Ray cluster at {kwargs.get('address') or 'this machine'}: "
                              f"{_first_line(exc)}") from exc


@contextmanager
def ray_cluster(address: str, timeout_s: float) -> Iterator:
    """Ray, connected to `address` (LOCAL_RAY: a Ray started on this machine for the run) and shut down afterwards.
    A process that already called ray.init keeps its connection, and it is left open."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"logging_level": "ERROR", "log_to_driver": False}
    if address == LOCAL_RAY:
        _init(ray, include_dashboard=False, **quiet)
    else:
        target = _host_port(address)
        if target is not None:  # refused or silent within the time limit: said now, not after Ray's own retries
            try:
                socket.create_connection(target, timeout=timeout_s).close()
            except OSError as exc:
                raise CollectionError(f"The Ray cluster at {address} is not reachable within {timeout_s:g} s "
                                      f"({exc.strerror or exc}); start it (ray start --head) or check the "
                                      "address") from exc
        _init(ray, address=address, **quiet)
    try:
        yield ray
    finally:
        ray.shutdown()


# --- the stages ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """What every task and actor needs to know, sent to them once."""

    embedder: str
    precision: str
    device: str
    chunking: ChunkingSettings
    max_file_bytes: int
    max_passages: int
    keep_originals: bool
    titled: bool
    stored: dict[str, str]  # document id → content hash of what the collection holds now
    postgres_url: str | None  # the workers write there themselves; None: the driver stores what they embed
    postgres: PostgresSettings | None


@functools.lru_cache(maxsize=4)
def _chunker(embedder: str, chunking: ChunkingSettings, max_passages: int) -> Chunker:
    """One chunker per worker process, cut by the embedder's own tokenizer (as in one process). The tokenizer alone,
    not `Embedder.tokenizer`, which would load the model into every reading task's process."""
    from transformers import AutoTokenizer

    return Chunker(AutoTokenizer.from_pretrained(embedder), chunking, max_passages)


def _row(source: str, status: str, reason: str = "", payload: bytes = b"", passages: int = 0) -> dict:
    # One schema for every row: Ray Data stores them as Arrow columns.
    return {"source": source, "status": status, "reason": reason, "payload": payload, "passages": passages,
            "vectors": b""}


def read_and_chunk(row: dict, plan: _Plan) -> dict:
    """A Ray task: one file → its document and passages, or the reason it is skipped or unchanged."""
    loaded = load_file(Path(row["path"]), plan.max_file_bytes)
    if isinstance(loaded, SkippedFile):
        return _row(loaded.source, "skipped", loaded.reason)
    previous = plan.stored.get(loaded.id)
    if previous == loaded.hash:
        return _row(loaded.source, "unchanged")
    try:
        passages = _chunker(plan.embedder, plan.chunking, plan.max_passages).split(loaded)
    except InputError as exc:
        return _row(loaded.source, "skipped", str(exc))
    if not plan.keep_originals:
        loaded.original = None  # not sent to the embedding actor at all
    status = "added" if previous is None else "updated"
    return _row(loaded.source, status, payload=pickle.dumps((loaded, passages)), passages=len(passages))


class EmbedWorker:
    """A Ray actor: one embedding model, batches of documents embedded together; for PostgreSQL it writes them."""

    def __init__(self, plan: _Plan) -> None:
        from spanqa.retriever.embedding import Embedder

        self.plan = plan
        self.embedder = Embedder(plan.embedder, precision=plan.precision, device=plan.device)
        self.collection = None
        if plan.postgres_url:
            from spanqa.retriever.postgres import PostgresCollection

            self.collection = PostgresCollection(plan.postgres_url, embedder=self.embedder, create=False,
                                                 settings=plan.postgres)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        work = [(i, pickle.loads(payload)) for i, payload in enumerate(batch["payload"]) if len(payload)]
        texts = [embedding_text(p, self.plan.titled) for _, (_, passages) in work for p in passages]
        vectors = self.embedder.encode(texts)
        out = {key: list(values) for key, values in batch.items()}
        offset = 0
        for i, (document, passages) in work:
            own = vectors[offset: offset + len(passages)]
            offset += len(passages)
            if self.collection is not None:
                self.collection.commit_document(document, passages, own)  # one transaction, keyed by the content hash
                out["payload"][i] = b""
            else:
                out["vectors"][i] = np.ascontiguousarray(own, dtype=np.float32).tobytes()
        return {key: np.array(values, dtype=object) for key, values in out.items()}


# --- the run ------------------------------------------------------------------------------------------------


class RayIngest:
    """`collection.ingest(paths, ray=address)`: one run of the pipeline above against one collection.

    Args:
        collection: the target (embedded or PostgreSQL); its embedder names the model every actor loads.
        address: LOCAL_RAY, "auto", "host:port" or "ray://host:port".
        settings: the door's (device, limits, Ray's timeout, workers and batch size, PostgreSQL's connection).
    """

    def __init__(self, collection: CollectionBase, address: str, settings: Settings) -> None:
        self.collection = collection
        self.address = address or LOCAL_RAY
        self.settings = settings

    def run(self, paths: Iterable[str | Path], include: list[str] | None = None, exclude: list[str] | None = None,
            progress: ProgressCallback | None = None) -> IngestReport:
        started = time.time()
        files, missing = list_files(list(paths), include, exclude)
        report = IngestReport(skipped=list(missing))
        if files:
            with ray_cluster(self.address, self.settings.ray_connect_timeout_s) as ray:
                # The driver holds the collection's write lock while it stores; PostgreSQL's writers lock per document.
                guard = self.collection.write_guard() if self._driver_writes else nullcontext()
                try:
                    with guard:
                        self._consume(self._pipeline(ray, files), report, len(files), progress, started)
                except ray.exceptions.RayError as exc:
                    raise CollectionError(
                        f"The Ray run stopped after {len(report.added) + len(report.updated)} of {len(files)} files "
                        f"({_first_line(exc)}). Every document written is complete; run the same ingest again to "
                        "add the rest (what is stored already is not embedded again).") from exc
        report.seconds = time.time() - started
        return report

    @property
    def _driver_writes(self) -> bool:
        from spanqa.retriever.postgres import PostgresCollection

        return not isinstance(self.collection, PostgresCollection)

    def _plan(self) -> _Plan:
        collection = self.collection
        postgres = not self._driver_writes
        return _Plan(
            embedder=collection.embedder.location, precision=collection.embedder.precision,
            device=self.settings.device, chunking=collection.chunking,
            max_file_bytes=collection.limits.max_file_bytes, max_passages=collection.limits.max_passages_per_document,
            keep_originals=collection.limits.keep_originals,
            titled=bool(collection.manifest.get("embed_title", False)),
            stored={info.id: info.hash for info in collection.documents()},
            postgres_url=collection.where.url if postgres else None,
            postgres=collection.settings if postgres else None)

    def _workers(self, ray) -> tuple[int, float]:
        """How many embedding actors, and the GPUs each takes (one per GPU where the cluster has them)."""
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if self.settings.device != "cpu" else 0
        available = gpus or max(1, int(resources.get("CPU", 1)))
        return (min(self.settings.ray_workers, available) if self.settings.ray_workers else available), \
            (1.0 if gpus else 0.0)

    def _pipeline(self, ray, files: list[Path]):
        import logging

        import ray.data

        # The door shows its own progress; Ray Data's bars and execution reports would interleave with it.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        # Documents come back, and are stored, in the order the files were listed, as in one process: passage ids
        # and so the order of equally scored passages are those of a single-process ingest.
        context.execution_options.preserve_order = True
        workers, gpus = self._workers(ray)
        plan = self._plan()
        if gpus:
            plan = replace(plan, device="cuda")
        dataset = ray.data.from_items([{"path": str(path.resolve())} for path in files],
                                      override_num_blocks=min(len(files), 4 * workers))
        # Reading and chunking is light next to embedding: its tasks take no CPU of their own (so they run beside
        # actors that hold every CPU), and as many run at once as there are actors.
        dataset = dataset.map(read_and_chunk, fn_kwargs={"plan": plan}, num_cpus=0,
                              compute=ray.data.TaskPoolStrategy(size=workers))
        # Every actor gets work: a batch of at most ray_batch_documents, fewer when the files are few (12 long
        # articles in one 64-document batch were embedded by one actor while the other waited).
        batch = max(1, min(self.settings.ray_batch_documents, -(-len(files) // (2 * workers))))
        return dataset.map_batches(EmbedWorker, fn_constructor_kwargs={"plan": plan}, batch_format="numpy",
                                   batch_size=batch,
                                   compute=ray.data.ActorPoolStrategy(size=workers),
                                   num_cpus=0 if gpus else 1, num_gpus=gpus).iter_rows()

    def _consume(self, rows, report: IngestReport, total: int, progress: ProgressCallback | None,
                 started: float) -> None:
        written = False
        for done, row in enumerate(rows, start=1):
            status, source = row["status"], row["source"]
            if status == "skipped":
                report.skipped.append(SkippedFile(source, row["reason"]))
            elif status == "unchanged":
                report.unchanged.append(source)
            else:
                if self._driver_writes:
                    self._store(row)
                    written = True
                (report.added if status == "added" else report.updated).append(source)
                report.passages += int(row["passages"])
            if progress:
                rate = report.passages / max(time.time() - started, 1e-9)
                progress(f"{done}/{total} files, {report.passages} passages, {rate:.0f} passages/s", done, total)
        if written:
            self.collection.finish_writes()

    def _store(self, row: dict) -> None:
        document, passages = pickle.loads(row["payload"])
        vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(passages), -1)
        self.collection.commit_document(document, passages, vectors)

"""Ingest at scale: one process against Ray with 1 and 2 workers, into an embedded collection and into PostgreSQL.

    python -m bench ingest-scale [--wiki 800] [--covid 12] [--repeats 1] [--out bench/out/ingest-scale]

Corpora (written as files to a temporary folder, never committed): `wiki`, short Wikipedia paragraphs (new_wiki's
contexts, one file each, about one passage per file), and `covid`, long articles (COVID-QA's contexts).

For each corpus, in one run:
- one process on this machine's threads, into an embedded collection, with the time split by phase (reading and
  parsing, chunking, embedding, writing, the rest), and into PostgreSQL;
- Ray on a real two-node cluster started here (1 CPU per node: `tests/local_ray.py`), with 1 and 2 embedding
  workers, into both backends: wall passages/s; a run's fixed cost (one file's ingest: actors starting and loading
  the model) and the rate beyond it; and each worker's peak memory (VmHWM of its process);
- PostgreSQL's write path alone: the product's per-document COPY transactions of ready vectors;
- the projection to N workers: min(N × one worker's rate beyond the fixed cost, the write path's rate).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.common import machine, markdown_table, peak_rss_mb, write_json

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_corpus(kind: str, count: int, folder: Path) -> Path:
    """`count` contexts of the corpus as one .txt file each."""
    source = {"wiki": DATA / "squadshifts" / "new_wiki_v1.0.json", "covid": DATA / "covid-qa" / "covid_qa_200423.json"}
    data = json.loads(source[kind].read_text())["data"]
    contexts = list(dict.fromkeys(p["context"] for article in data for p in article["paragraphs"]))[:count]
    target = folder / kind
    target.mkdir(parents=True)
    for i, text in enumerate(contexts):
        (target / f"{kind}-{i:05d}.txt").write_text(text)
    return target


class PeakMemory:
    """The largest VmHWM (peak resident memory) seen among Ray's embedding-actor processes while running."""

    def __init__(self) -> None:
        self.peak_mb: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        from tests.local_ray import ray_processes

        while not self._stop.wait(0.2):
            for pid in ray_processes("EmbedWorker"):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_mb[pid] = max(self.peak_mb.get(pid, 0.0), int(line.split()[1]) / 1024)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def timed_ingest(collection, corpus: Path, **ray) -> dict:
    """Ingest `corpus` into a fresh collection: wall time and rate, and the embedding actors' peak memory."""
    started = time.perf_counter()
    with PeakMemory() as memory:
        report = collection.ingest([corpus], **ray)
    wall = time.perf_counter() - started
    assert not report.skipped, report.skipped
    return {"passages": report.passages, "documents": len(report.added), "wall_s": wall,
            "passages_per_s": report.passages / wall,
            "worker_peak_mb": max(memory.peak_mb.values()) if memory.peak_mb else None}


def phased_single_process(make_collection, corpus: Path) -> dict:
    """One process into an embedded collection, with each phase's seconds (the product's own calls, timed)."""
    from spanqa.retriever import loaders

    spent = dict.fromkeys(("read", "chunk", "embed", "write"), 0.0)
    collection = make_collection()

    def timing(phase, fn):
        def wrapped(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[phase] += time.perf_counter() - t
        return wrapped

    original_load = loaders.load_paths
    collection.chunker.split = timing("chunk", collection.chunker.split)
    collection.embedder.encode = timing("embed", collection.embedder.encode)
    collection.commit_document = timing("write", collection.commit_document)
    collection.finish_writes = timing("write", collection.finish_writes)
    import spanqa.retriever.base as base

    base.load_paths = timing("read", original_load)
    try:
        result = timed_ingest(collection, corpus)
    finally:
        base.load_paths = original_load
        del collection.embedder.encode  # the shared embedder object: its class method again
    result["phases_s"] = {**spent, "other": result["wall_s"] - sum(spent.values())}
    collection.close()
    return result


def postgres_write_rate(url: str, corpus: Path, embedder) -> dict:
    """The write path alone: every document's passages and ready vectors committed as the product does."""
    from spanqa.retriever.base import embedding_text
    from spanqa.retriever.loaders import load_paths
    from spanqa.retriever.postgres import PostgresCollection

    collection = PostgresCollection(url, embedder=embedder)
    ready = []
    for document in load_paths([corpus]).documents:
        passages = collection.chunker.split(document)
        ready.append((document, passages, embedder.encode([embedding_text(p, True) for p in passages])))
    started = time.perf_counter()
    for document, passages, vectors in ready:
        collection.commit_document(document, passages, vectors)
    wall = time.perf_counter() - started
    count = sum(len(p) for _, p, _ in ready)
    collection.drop()
    return {"passages": count, "wall_s": wall, "passages_per_s": count / wall}


def run_corpus(kind: str, corpus: Path, server, cluster: str, embedder, repeats: int, scratch: Path) -> dict:
    from spanqa.retriever.collection import LocalCollection
    from spanqa.retriever.postgres import PostgresCollection

    from spanqa.settings import Settings

    names = iter(range(10_000))

    def local():
        return LocalCollection(scratch / f"{kind}-{next(names)}", embedder=embedder)

    def postgres():
        return PostgresCollection(server.url("ingest") + f"?collection={kind}_{next(names)}", embedder=embedder)

    def closed(collection, result):
        (collection.drop if isinstance(collection, PostgresCollection) else collection.close)()
        return result

    one_file = scratch / f"{kind}-one"
    one_file.mkdir()
    shutil.copy(sorted(corpus.iterdir())[0], one_file)
    runs: dict[str, list[dict]] = {}
    for _ in range(repeats):  # interleaved, so a slow minute of the machine falls on every configuration alike
        runs.setdefault("single / embedded", []).append(phased_single_process(local, corpus))
        collection = postgres()
        runs.setdefault("single / postgres", []).append(closed(collection, timed_ingest(collection, corpus)))
        for workers in (1, 2):
            settings = Settings(ray_workers=workers)
            for backend, make in (("embedded", local), ("postgres", postgres)):
                # A run's fixed cost (actors starting and loading the model, Ray Data planning): one file's ingest.
                fixed = timed_ingest(small := make(), one_file, ray=cluster, settings=settings)["wall_s"]
                closed(small, None)
                collection = make()
                result = timed_ingest(collection, corpus, ray=cluster, settings=settings)
                result["fixed_s"] = fixed
                result["after_fixed_per_s"] = result["passages"] / max(result["wall_s"] - fixed, 1e-9)
                runs.setdefault(f"ray {workers} / {backend}", []).append(closed(collection, result))
        runs.setdefault("postgres write path", []).append(
            postgres_write_rate(server.url("ingest") + f"?collection={kind}_w{next(names)}", corpus, embedder))
    return {name: {"runs": results, "median_passages_per_s": statistics.median(r["passages_per_s"] for r in results)}
            for name, results in runs.items()}


def report(results: dict) -> str:
    lines = []
    for kind, configs in results["corpora"].items():
        single = configs["single / embedded"]["median_passages_per_s"]
        rows = []
        for name, summary in configs.items():
            last = summary["runs"][-1]
            steady = statistics.median(r.get("after_fixed_per_s", r["passages_per_s"]) for r in summary["runs"])
            rows.append([name, last["passages"], round(summary["median_passages_per_s"], 1),
                         f"{summary['median_passages_per_s'] / single:.2f}x",
                         round(last["fixed_s"], 1) if "fixed_s" in last else "-", round(steady, 1),
                         f"{steady / single:.2f}x",
                         round(last["worker_peak_mb"]) if last.get("worker_peak_mb") else "-"])
        lines += [f"### {kind}", "", markdown_table(
            ["configuration", "passages", "passages/s (median, wall)", "vs one process", "fixed cost s (one file)",
             "passages/s beyond it", "vs one process", "worker peak MB"], rows), ""]
        phases = configs["single / embedded"]["runs"][-1]["phases_s"]
        lines += ["One process, embedded, seconds by phase: " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()),
                  ""]
        worker = statistics.median(r["after_fixed_per_s"] for r in configs["ray 1 / postgres"]["runs"])
        write = configs["postgres write path"]["median_passages_per_s"]
        lines += [f"Projection into PostgreSQL: rate(N) = min(N x {worker:.1f}, {write:.0f}) passages/s; the write "
                  f"path is {write / worker:.1f}x one worker's embedding rate, so it caps the cluster at about "
                  f"{write / worker:.0f} workers of this kind.", ""]
    lines.append(f"Machine: {results['machine']}; peak memory of this process (driver and one-process runs): "
                 f"{results['driver_peak_mb']:.0f} MB.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench ingest-scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wiki", type=int, default=800, help="short Wikipedia paragraphs (one file each)")
    p.add_argument("--covid", type=int, default=12, help="long COVID-QA articles")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("bench/out/ingest-scale"))
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from spanqa.retriever.embedding import Embedder

    from tests.local_postgres import LocalPostgres
    from tests.local_ray import two_node_ray

    scratch = Path(tempfile.mkdtemp(prefix="spanqa-ingest-scale-"))
    embedder = Embedder()
    embedder.warm_up()
    results: dict = {"machine": machine(), "argv": argv, "corpora": {}}
    try:
        corpora = {kind: write_corpus(kind, count, scratch) for kind, count in (("wiki", args.wiki),
                                                                                  ("covid", args.covid)) if count}
        with LocalPostgres() as server, two_node_ray(cpus=1, nodes=2) as cluster:
            server.create_database("ingest")
            for kind, corpus in corpora.items():
                results["corpora"][kind] = run_corpus(kind, corpus, server, cluster, embedder, args.repeats, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["driver_peak_mb"] = peak_rss_mb()
    write_json(args.out / "ingest-scale.json", results)
    text = report(results)
    (args.out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

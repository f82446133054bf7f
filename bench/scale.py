"""Scale: the embedded FAISS index (flat and HNSW) against pgvector HNSW, at 100 k and 1 M passages.

    spanqa bench scale [--sizes 100000,1000000] [--queries 200] [--out bench/out/scale]

Vectors are synthetic at every size (the machine has no 1 M-passage corpus): 384-d unit vectors drawn around
2,000 random topic centres, so that neighbours cluster as real passage embeddings do (uniform random vectors
are a harder, unrealistic case for HNSW). Queries are drawn the same way and never stored.

For each size and index:
- build: FAISS `add` (flat) or graph construction (HNSW); for pgvector, COPY of the rows into the collection's
  own tables, then `CREATE INDEX … USING hnsw` with the collection's DDL and settings (m 16, ef_construction 64);
  plus the rate of the product's own per-document write path (`PostgresCollection` commits, index maintained)
  for 5,000 more passages;
- search p50/p95 at 1 and 8 concurrent clients: FAISS `search`, and the SQL the product runs
  (`PostgresCollection.ranked`, dense, through its connection pool);
- recall@10 against exact search (FAISS flat over the same vectors);
- memory: the FAISS index's size (it lives in the process's RAM); pgvector's table + index size (what the
  server keeps in its cache to search at these speeds).

Then answers from two replicas: two `spanqa serve` processes on one PostgreSQL collection answer the same
questions; the report gives their agreement and latency.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.common import write_json

DIMENSION = 384
CENTRES = 2000
K = 10


def synthetic_vectors(n: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """Unit vectors around random topic centres (cosine to their centre ≈ 0.6, like related passages)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIMENSION), dtype=np.float32)
    for start in range(0, n, 100_000):
        size = min(100_000, n - start)
        picks = centres[rng.integers(0, len(centres), size)]
        noise = rng.standard_normal((size, DIMENSION)).astype(np.float32) / np.sqrt(DIMENSION)
        block = picks + 1.3 * noise
        out[start:start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def latencies(search, queries: np.ndarray, clients: int) -> dict:
    """p50/p95 ms per query with `clients` concurrent callers, each running the whole query list."""
    times: list[float] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        own = []
        for i in range(len(queries)):
            q = queries[(i + offset) % len(queries)]
            started = time.perf_counter()
            search(q)
            own.append((time.perf_counter() - started) * 1000)
        with lock:
            times.extend(own)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, range(clients)))
    wall = time.perf_counter() - started
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "qps": len(times) / wall}


def recall_at_k(found: list[list[int]], exact: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K]) & set(e[:K].tolist())) / K for f, e in zip(found, exact, strict=True)]))


def faiss_rows(vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray, ef_construction: int) -> list[dict]:
    import faiss
    from spanqa.retriever.indexes import HNSW_EF_SEARCH, HNSW_M

    rows = []
    for kind in ("flat", "hnsw"):
        started = time.perf_counter()
        if kind == "flat":
            index = faiss.IndexFlatIP(DIMENSION)
        else:  # the product's HNSW (retriever/indexes.py)
            index = faiss.IndexHNSWFlat(DIMENSION, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
        index.add(vectors)
        build = time.perf_counter() - started
        memory = faiss.serialize_index(index).nbytes / 2**20  # what the index holds in RAM (and on disk)
        for ef_search in ([None] if kind == "flat" else sorted({HNSW_EF_SEARCH, 64, 128, 256, 512})):
            name = f"FAISS {kind} (embedded)"
            if ef_search is not None:
                index.hnsw.efSearch = ef_search
                name = f"FAISS HNSW (embedded; M {HNSW_M}, efConstruction {ef_construction}), efSearch {ef_search}"
            found = index.search(queries, K)[1].tolist()
            row = {"index": name, "build_s": build, "build_rate": len(vectors) / build,
                   "recall@10": recall_at_k(found, exact), "memory_mb": memory}
            for clients in (1, 8):
                row[f"c{clients}"] = latencies(lambda q, index=index: index.search(q[None, :], K), queries, clients)
            rows.append(row)
        del index
    return rows


def _copy_rows(conn, schema: str, vectors: np.ndarray, per_document: int = 1000) -> None:
    """Bulk-load passages (empty text, synthetic vectors) into a collection's own tables, in binary COPY."""
    from pgvector.psycopg import register_vector
    from psycopg import sql

    register_vector(conn)
    s = sql.Identifier(schema)
    documents = (len(vectors) + per_document - 1) // per_document
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY {s}.documents (id, source, title, hash, text, pages, added) FROM STDIN")
                      .format(s=s)) as copy:
            for d in range(documents):
                copy.write_row((f"d{d}", f"synthetic/{d}.txt", f"{d}", f"h{d}", "", "[[1, 0, 0]]", 0.0))
        with cur.copy(sql.SQL('COPY {s}.passages (document_id, idx, start, "end", page, text, embedding) '
                              "FROM STDIN WITH (FORMAT BINARY)").format(s=s)) as copy:
            copy.set_types(["text", "int4", "int4", "int4", "int4", "text", "vector"])
            for i in range(len(vectors)):
                copy.write_row((f"d{i // per_document}", i % per_document, 0, 0, 1, "", vectors[i]))


def pgvector_rows(url: str, vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray, embedder) -> dict:
    import psycopg
    from psycopg import sql
    from spanqa.retriever import postgres_schema as backend
    from spanqa.retriever.postgres import PostgresCollection

    from spanqa.settings import PostgresSettings

    settings = PostgresSettings.from_env(pg_pool_size=8, pg_statement_timeout_ms=0)  # SPANQA_PG_HNSW_* apply
    collection = PostgresCollection(url, embedder=embedder, settings=settings)
    schema = collection.where.schema
    index_ddl = next(s for s in backend.CREATE if "USING hnsw" in s)
    with psycopg.connect(collection.where.conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP INDEX {s}.passages_embedding").format(s=sql.Identifier(schema)))
        started = time.perf_counter()
        _copy_rows(conn, schema, vectors)
        loaded = time.perf_counter() - started
        conn.execute("SET maintenance_work_mem = '6GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")  # 2 cores: the leader and one worker
        started = time.perf_counter()
        conn.execute(collection.sql(index_ddl, m=settings.pg_hnsw_m,
                                     ef_construction=settings.pg_hnsw_ef_construction))
        indexed = time.perf_counter() - started
        conn.execute(sql.SQL("UPDATE {s}.meta SET value = %s WHERE key = 'passages'").format(
            s=sql.Identifier(schema)), (str(len(vectors)),))
        conn.execute(sql.SQL("VACUUM ANALYZE {s}.passages").format(s=sql.Identifier(schema)))
        table_mb, index_mb = conn.execute(
            "SELECT pg_table_size(%s::regclass) / 1048576.0, pg_relation_size(%s::regclass) / 1048576.0",
            (f"{schema}.passages", f"{schema}.passages_embedding")).fetchone()
    search = lambda q: collection.ranked("", q, "dense", K)  # noqa: E731 - the product's dense SQL
    for q in queries[:20]:  # warm the server's cache, as a serving replica's would be
        search(q)
    rows = []
    for ef_search in sorted({settings.pg_hnsw_ef_search, 100, 200, 400, 800}):
        collection.settings = dataclasses.replace(settings, pg_hnsw_ef_search=ef_search)
        found = [[i - 1 for i, _ in search(q)["dense"]] for q in queries]  # serial ids: id i+1 is vectors[i]
        row = {"index": f"pgvector HNSW (PostgreSQL; m {settings.pg_hnsw_m}, ef_construction "
                        f"{settings.pg_hnsw_ef_construction}), ef_search {ef_search}", "load_s": loaded,
               "build_s": loaded + indexed, "index_build_s": indexed, "build_rate": len(vectors) / (loaded + indexed),
               "recall@10": recall_at_k(found, exact), "memory_mb": float(table_mb + index_mb),
               "index_mb": float(index_mb)}
        for clients in (1, 8):
            row[f"c{clients}"] = latencies(search, queries, clients)
        rows.append(row)
    rows[0]["write_path_rate"] = _write_path_rate(collection)
    collection.drop()
    return rows


def _write_path_rate(collection, passages: int = 5000, per_document: int = 50) -> float:
    """Passages/s through the product's per-document transactions, the HNSW index maintained as they land."""
    from spanqa.retriever.records import Document, Passage

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((passages, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    for d in range(passages // per_document):
        text = " ".join(f"w{d}x{i}" for i in range(per_document))
        document = Document(source=f"write-path/{d}.txt", text=text)
        chunks = [Passage(document.id, document.source, f"w{d}x{i}", 0, 0, 1, i) for i in range(per_document)]
        collection.commit_document(document, chunks, vectors[d * per_document:(d + 1) * per_document])
    return passages / (time.perf_counter() - started)


def scale_rows(sizes: list[int], queries: int, url: str, embedder, faiss_ef_construction: int) -> list[dict]:
    import faiss

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((CENTRES, DIMENSION)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    probe = synthetic_vectors(queries, 99, centres)
    results = []
    for size in sizes:
        vectors = synthetic_vectors(size, size, centres)
        exact_index = faiss.IndexFlatIP(DIMENSION)
        exact_index.add(vectors)
        exact = exact_index.search(probe, K)[1]
        del exact_index
        for row in faiss_rows(vectors, probe, exact, faiss_ef_construction):
            results.append({"passages": size, **row})
            print(_line(results[-1]), flush=True)
        collection_url = f"{url}?collection=scale_{size}"
        for row in pgvector_rows(collection_url, vectors, probe, exact, embedder):
            results.append({"passages": size, **row})
            print(_line(results[-1]), flush=True)
        del vectors
        gc.collect()
    return results


def _line(row: dict) -> str:
    return (f"{row['passages']:>9,} {row['index']:<60} build {row['build_s']:7.1f}s  recall@10 "
            f"{row['recall@10']:.3f}  p50 {row['c1']['p50_ms']:6.2f} ms  p50@8 {row['c8']['p50_ms']:6.2f} ms")


def replica_rows(url: str, questions: int) -> dict:
    """Two `spanqa serve` replicas on one PostgreSQL collection answer the same technical questions at once."""
    import json
    import subprocess
    import sys

    import httpx

    from bench.serving import _start
    from bench.techdocs.build import HERE, build

    dataset = build()
    names = [article["title"] for article in dataset["data"]]
    asked = [qa["question"] for article in dataset["data"] for p in article["paragraphs"] for qa in p["qas"]]
    asked = asked[:: max(1, len(asked) // questions)][:questions]
    collection_url = f"{url}?collection=replicas"
    subprocess.run([str(Path(sys.executable).parent / "spanqa"), "ingest",
                    *[str(HERE / "sources" / f"{n}.txt") for n in names], "--collection", collection_url],
                   check=True, capture_output=True)
    replicas = [_start(collection_url, 1) for _ in range(2)]
    answers: list[list[str]] = [[], []]
    times: list[list[float]] = [[], []]

    def ask(replica: int) -> None:
        for question in asked:
            started = time.perf_counter()
            body = httpx.post(f"{replicas[replica][1]}/v1/ask", json={"question": question}, timeout=120).json()
            times[replica].append((time.perf_counter() - started) * 1000)
            top = body["answers"][0] if body["answers"] and not body["abstained"] else None
            answers[replica].append(json.dumps([top["text"], top["source"]]) if top else "abstained")

    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ask, range(2)))
    finally:
        for process, _ in replicas:
            process.terminate()
            process.wait(timeout=30)
    agree = sum(a == b for a, b in zip(*answers, strict=True)) / len(asked)
    return {"questions": len(asked), "agreement": agree, "p50_ms": [float(np.median(t)) for t in times],
            "answered": [sum(a != "abstained" for a in r) for r in answers]}


def report(rows: list[dict], replicas: dict | None) -> str:
    lines = ["| passages | index | build s | build passages/s | search p50 / p95 ms, 1 client | "
             "search p50 / p95 ms, 8 clients | queries/s at 8 | recall@10 | memory MB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['passages']:,} | {r['index']} | {r['build_s']:.1f} | {r['build_rate']:,.0f} | "
                     f"{r['c1']['p50_ms']:.2f} / {r['c1']['p95_ms']:.2f} | {r['c8']['p50_ms']:.2f} / "
                     f"{r['c8']['p95_ms']:.2f} | {r['c8']['qps']:,.0f} | {r['recall@10']:.3f} | "
                     f"{r['memory_mb']:,.0f} |")
    notes = [f"- pgvector at {r['passages']:,}: COPY {r['load_s']:.1f} s + CREATE INDEX {r['index_build_s']:.1f} s; "
             f"index {r['index_mb']:,.0f} MB; the product's write path (one transaction per 50-passage document, "
             f"HNSW maintained) {r['write_path_rate']:,.0f} passages/s." for r in rows if "write_path_rate" in r]
    if replicas:
        notes.append(f"- Two `spanqa serve` replicas on one PostgreSQL collection, {replicas['questions']} technical "
                     f"questions each, asked at the same time: same top answer on {replicas['agreement']:.0%}; "
                     f"answered {replicas['answered'][0]} / {replicas['answered'][1]}; p50 "
                     f"{replicas['p50_ms'][0]:.0f} / {replicas['p50_ms'][1]:.0f} ms.")
    return "\n".join(lines + [""] + notes) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="spanqa bench scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000,1000000", help="passage counts, comma-separated")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--replica-questions", type=int, default=30, help="0 skips the two-replica run")
    p.add_argument("--out", type=Path, default=Path("bench/out/scale"))
    from spanqa.retriever.indexes import HNSW_EF_CONSTRUCTION

    p.add_argument("--faiss-ef-construction", type=int, default=HNSW_EF_CONSTRUCTION,
                   help="the embedded HNSW's build beam (pgvector's: SPANQA_PG_HNSW_M, SPANQA_PG_HNSW_EF_CONSTRUCTION)")
    args = p.parse_args(argv)
    from spanqa.retriever.embedding import Embedder

    from tests.local_postgres import LocalPostgres

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sizes = [int(s) for s in args.sizes.split(",")]
    with LocalPostgres(settings={"shared_buffers": "4GB", "max_wal_size": "8GB"}) as server:
        url = server.create_database("scale")
        rows = scale_rows(sizes, args.queries, url, Embedder(), args.faiss_ef_construction)
        replicas = replica_rows(url, args.replica_questions) if args.replica_questions else None
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "scale.json", {"rows": rows, "replicas": replicas, "argv": argv})
    text = report(rows, replicas)
    (args.out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

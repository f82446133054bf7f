"""Retrieval benchmark on a SQuAD-format file of long documents (default: COVID-QA).

Every context becomes one document of one collection (chunked as spanqa chunks any document); every question
is a query; a hit is a passage of the question's own document whose character range contains the answer.
Prints recall@1/5/20 and MRR for dense, BM25 and hybrid, ingest throughput and search latency.

    python -m bench.retrieval [--data ../shared/data/covid-qa/covid_qa_200423.json] [--limit N] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import machine, markdown_table, percentiles, write_json
from plugin.squad import load_squad
from retriever import Collection, Document
from retriever.loaders import LoadReport

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "covid-qa" / "covid_qa_200423.json"
KS = (1, 5, 20)


def run(data: Path, limit: int | None, out: Path | None) -> dict:
    examples = [e for e in load_squad(data) if e.answers][: limit or None]
    contexts: dict[str, Document] = {}
    for e in examples:
        if e.context_id not in contexts:
            contexts[e.context_id] = Document(source=f"{e.title or 'doc'}-{e.context_id}", text=e.context)
    with tempfile.TemporaryDirectory() as tmp:
        collection = Collection(Path(tmp) / "bench")
        started = time.perf_counter()
        report = collection.add_documents(LoadReport(documents=list(contexts.values())))
        ingest_s = time.perf_counter() - started
        doc_of = {cid: d.id for cid, d in contexts.items()}
        results = {}
        for mode in ("dense", "bm25", "hybrid"):
            ranks, latencies = [], []
            for e in examples:
                t = time.perf_counter()
                hits = collection.search(e.question, k=max(KS), mode=mode)
                latencies.append((time.perf_counter() - t) * 1000)
                a = e.answers[0]
                rank = next((i for i, h in enumerate(hits, start=1)
                             if h.passage.document_id == doc_of[e.context_id]
                             and h.passage.start <= a.start and a.end <= h.passage.end), None)
                ranks.append(rank)
            row = {f"recall@{k}": float(np.mean([r is not None and r <= k for r in ranks])) for k in KS}
            row["mrr@20"] = float(np.mean([1 / r if r else 0.0 for r in ranks]))
            row.update(percentiles(latencies))
            results[mode] = row
    summary = {"data": str(data), "questions": len(examples), "documents": len(contexts),
               "passages": report.passages, "ingest_seconds": ingest_s,
               "ingest_passages_per_s": report.passages / ingest_s, "modes": results, "machine": machine()}
    headers = ["mode", "recall@1", "recall@5", "recall@20", "MRR@20", "p50 ms", "p95 ms"]
    rows = [[m, r["recall@1"], r["recall@5"], r["recall@20"], r["mrr@20"], round(r["p50_ms"], 1),
             round(r["p95_ms"], 1)] for m, r in results.items()]
    print(f"{data.name}: {len(examples)} questions over {len(contexts)} documents, {report.passages} passages; "
          f"ingest {ingest_s:.1f}s = {summary['ingest_passages_per_s']:.1f} passages/s")
    print(markdown_table(headers, rows))
    if out:
        write_json(out / "retrieval.json", summary)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, help="first N questions only")
    parser.add_argument("--out", type=Path, help="directory for retrieval.json")
    args = parser.parse_args()
    run(args.data, args.limit, args.out)


if __name__ == "__main__":
    main()

"""Serving under load: `spanqa serve` over HTTP at 1, 4 and 16 concurrent clients, micro-batching on and off.

    python -m bench.serving [--data FILE.json] [--questions 96] [--clients 1,4,16] [--hayhooks] [--out DIR]

Builds one collection from the file's contexts, then starts `spanqa serve` twice on it (max_batch 16, then
1 = one question per reader pass), each in its own process, one after the other; every client posts the same
questions to /v1/ask. Reports p50/p95 latency and questions/s per concurrency, and the ratio batching on ÷ off.
Then the same questions in this process, without HTTP: one `Assistant.respond` after another, and
`respond_many` over batches of 16 — the most micro-batching can give on this machine, since a server adds work
to both and takes none away.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.common import write_json

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SPANQA = str(Path(sys.executable).parent / "spanqa")
ON, OFF = "spanqa serve, batching on (max 16)", "spanqa serve, batching off"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(collection: Path, max_batch: int) -> tuple[subprocess.Popen, str]:
    return start_spanqa_serve(["--collection", str(collection), "--max-batch", str(max_batch)])


def start_spanqa_serve(arguments: list[str]) -> tuple[subprocess.Popen, str]:
    """`spanqa serve ARGUMENTS` on a free loopback port, once it answers /readyz: (the process, its URL)."""
    import httpx

    port = _free_port()
    process = subprocess.Popen([SPANQA, "serve", *arguments, "--port", str(port)], env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"spanqa serve {' '.join(arguments)} did not become ready")


def _start_hayhooks(data: Path) -> tuple[subprocess.Popen, str]:
    """Hayhooks serving the side-by-side benchmark's Haystack pipeline over the same file's contexts."""
    import httpx

    port = _free_port()
    root = Path(__file__).resolve().parents[1]
    hayhooks = str(Path(sys.executable).parent / "hayhooks")
    process = subprocess.Popen([hayhooks, "run", "--pipelines-dir", str(root / "bench" / "hayhooks"), "--port",
                                str(port), "--additional-python-path", str(root)],
                               env={**os.environ, "SPANQA_BENCH_DATA": str(data.resolve())}, cwd=root)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            if "spanqa_haystack" in httpx.get(f"{url}/status", timeout=2).text:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("hayhooks did not deploy the pipeline")


def _load(url: str, questions: list[str], clients: int, path: str = "/v1/ask") -> dict:
    import httpx

    def client(chunk: list[str]) -> list[float]:
        times = []
        with httpx.Client(base_url=url, timeout=300) as http:
            for q in chunk:
                started = time.perf_counter()
                response = http.post(path, json={"question": q})
                response.raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
        return times

    chunks = [questions[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for ts in pool.map(client, chunks) for t in ts]
    seconds = time.perf_counter() - started
    return {"clients": clients, "questions": len(latencies), "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)), "questions_per_s": len(latencies) / seconds}


def _in_process(collection: Path, questions: list[str], batch: int = 16) -> dict:
    """Questions/s of the engine itself, one question at a time and in batches of `batch` (no HTTP)."""
    from spanqa.plugin.engine.assistant import Assistant

    assistant = Assistant(collection)
    assistant.warm_up()
    assistant.respond_many(questions[:4])  # warm the caches and the first paths
    started = time.perf_counter()
    for q in questions:
        assistant.respond(q)
    one = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(0, len(questions), batch):
        assistant.respond_many(questions[i:i + batch])
    many = time.perf_counter() - started
    return {"batch": batch, "one_at_a_time_questions_per_s": len(questions) / one,
            "batched_questions_per_s": len(questions) / many, "ratio": one / many}


def run(args) -> dict:
    import httpx

    with tempfile.TemporaryDirectory(prefix="spanqa-serving-") as tmp:
        from spanqa.plugin.lab.ranker_training import open_domain_set

        where = Path(tmp) / "collection"
        collection, labelled = open_domain_set(args.data, where, holdout=0.0, limit=args.questions)
        collection.close()
        questions = [q for q, _ in labelled]
        result = {"data": args.data.name, "questions": len(questions), "runs": {}}
        for label, max_batch in ((ON, 16), (OFF, 1)):  # one server process each, one after the other
            process, url = _start(where, max_batch)
            try:
                for q in questions[:4]:  # warm the caches and the first request paths
                    httpx.post(f"{url}/v1/ask", json={"question": q}, timeout=300)
                result["runs"][label] = [_load(url, questions, c) for c in args.clients]
            finally:
                process.terminate()
                process.wait(timeout=60)
        result["in_process"] = _in_process(where, questions)
        if args.hayhooks:
            process, url = _start_hayhooks(args.data)
            try:
                for q in questions[:4]:
                    httpx.post(f"{url}/spanqa_haystack/run", json={"question": q}, timeout=300)
                result["runs"]["Hayhooks (Haystack pipeline)"] = [
                    _load(url, questions, c, "/spanqa_haystack/run") for c in args.clients]
            finally:
                process.terminate()
                process.wait(timeout=60)
    on, off = result["runs"][ON], result["runs"][OFF]
    result["throughput_ratio_on_over_off"] = {str(a["clients"]): a["questions_per_s"] / b["questions_per_s"]
                                              for a, b in zip(on, off, strict=True)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "squadshifts" / "new_wiki_v1.0.json")
    parser.add_argument("--questions", type=int, default=96)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--out", type=Path, default=Path("bench/out/serving"))
    parser.add_argument("--hayhooks", action="store_true",
                        help="also serve the Haystack pipeline with Hayhooks (pip install hayhooks) and load it")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results.json", result)
    lines = ["| server | clients | p50 ms | p95 ms | questions/s |", "|---|---:|---:|---:|---:|"]
    for label, rows in result["runs"].items():
        lines += [f"| {label} | {r['clients']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
                  f"{r['questions_per_s']:.2f} |" for r in rows]
    ratios = ", ".join(f"{c} clients {r:.2f}×" for c, r in result["throughput_ratio_on_over_off"].items())
    ceiling = result["in_process"]
    report = "\n".join(lines) + (
        f"\n\nquestions/s, batching on ÷ off: {ratios}\n"
        f"in process, no HTTP: {ceiling['one_at_a_time_questions_per_s']:.2f} questions/s one at a time, "
        f"{ceiling['batched_questions_per_s']:.2f} in batches of {ceiling['batch']} ({ceiling['ratio']:.2f}×)\n")
    (args.out / "report.md").write_text(report)
    print(report)
    print(json.dumps(result["throughput_ratio_on_over_off"]))


if __name__ == "__main__":
    main()

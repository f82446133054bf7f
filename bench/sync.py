"""Collections that follow their folders, timed: `python -m bench sync [--files 1000] [--idle-files 10000]`.

On `--files` small text files (SQuAD-Shifts new_wiki paragraphs, one per file): the first sync; then 10 files
changed, 10 deleted, 10 added and 10 renamed and a second sync (what it embedded, and its time beside the first's);
then a sync with nothing changed, on those files and on `--idle-files` (it reads directory entries only and embeds
nothing); then `spanqa sync --watch` as a user meets it: a one-page file saved, and the time until a search finds
it, ten times (median). Each number is one run on this machine, nothing else running.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.common import markdown_table, write_json

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _paragraphs(count: int) -> list[str]:
    data = json.loads((SHARED / "squadshifts" / "new_wiki_v1.0.json").read_text())["data"]
    texts = list(dict.fromkeys(p["context"] for a in data for p in a["paragraphs"]))
    return [texts[i % len(texts)] + ("" if i < len(texts) else f" (copy {i // len(texts)})") for i in range(count)]


def _write(folder: Path, texts: list[str], prefix: str = "doc") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        (folder / f"{prefix}{i:05d}.txt").write_text(text)


def _timed_sync(collection, folder: Path, calls: list) -> tuple[float, object, int]:
    before = len(calls)
    started = time.perf_counter()
    report = collection.sync([folder])
    return time.perf_counter() - started, report, sum(len(c) for c in calls[before:])


def _churn(collection, root: Path, count: int) -> dict:
    docs = root / "docs"
    _write(docs, _paragraphs(count))
    calls: list = []
    original = collection.embedder.encode
    collection.embedder.encode = lambda texts, **kw: calls.append(texts) or original(texts, **kw)
    first_s, first, first_embedded = _timed_sync(collection, docs, calls)
    files = sorted(docs.iterdir())
    for path in files[:10]:
        path.write_text(path.read_text() + " It was revised this year.")
    for path in files[10:20]:
        path.unlink()
    for path in files[20:30]:
        path.rename(docs / f"renamed-{path.name}")
    _write(docs, [f"A new note, number {i}, about the quarterly maintenance of the pumps." for i in range(10)], "new")
    second_s, second, second_embedded = _timed_sync(collection, docs, calls)
    idle_s, idle, idle_embedded = _timed_sync(collection, docs, calls)
    return {"files": count, "first_sync_s": first_s, "first_passages_embedded": first_embedded,
            "first": first.to_dict(), "second_sync_s": second_s, "second_passages_embedded": second_embedded,
            "second": {k: v for k, v in second.to_dict().items() if k != "files"},
            "second_over_first": second_s / first_s, "idle_sync_s": idle_s, "idle_embedded": idle_embedded,
            "idle_changed": idle.changed}


def _idle(collection, root: Path, count: int) -> dict:
    docs = root / "idle"
    _write(docs, [f"Note {i}: the spare key is in drawer {i % 7}." for i in range(count)])
    collection.sync([docs])
    calls: list = []
    idle_s, report, embedded = _timed_sync(collection, docs, calls)
    return {"files": count, "idle_sync_s": idle_s, "changed": report.changed, "embedded": embedded}


def _watch_latency(location: Path, root: Path, trials: int = 10) -> dict:
    from spanqa.plugin.doors import administration
    from spanqa.plugin.doors.administration import SyncJob
    from spanqa.plugin.engine.collections import open_collection

    from spanqa.settings import Settings

    docs = root / "watched"
    _write(docs, ["The office opens at eight."])
    stop, outcomes = threading.Event(), []
    watcher = threading.Thread(target=administration.watch, daemon=True,
                               args=(SyncJob([str(docs)], str(location)), Settings(), outcomes.append, stop))
    watcher.start()
    while not outcomes:
        time.sleep(0.05)
    reader = open_collection(str(location))
    page = " ".join(f"Line {n} of the maintenance log records a routine check of valve {n}." for n in range(40))
    latencies = []
    for trial in range(trials):
        word = f"zephyrcode{trial}"
        saved = time.perf_counter()
        (docs / f"page{trial}.txt").write_text(f"{page} The access code for the roof is {word}.")
        while not any(word in h.passage.text for h in reader.search(word, k=3, mode="bm25")):
            time.sleep(0.05)
        latencies.append(time.perf_counter() - saved)
    stop.set()
    watcher.join(timeout=30)
    return {"trials": trials, "p50_s": statistics.median(latencies), "max_s": max(latencies),
            "latencies_s": latencies}


def main(argv: list[str] | None = None) -> int:
    from spanqa.retriever import LocalCollection

    parser = argparse.ArgumentParser(prog="python -m bench sync", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--idle-files", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out/sync"))
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="spanqa-sync-bench-"))
    try:
        churn = _churn(LocalCollection(root / "churn", create=True), root, args.files)
        idle = _idle(LocalCollection(root / "idle-collection", create=True), root, args.idle_files)
        watch = _watch_latency(root / "watch-collection", root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results = {"churn": churn, "idle": idle, "watch": watch}
    write_json(args.out / "results.json", results)
    print(markdown_table(["measure", "value"], [
        [f"first sync, {churn['files']} files (s)", churn["first_sync_s"]],
        ["second sync: 10 changed, 10 deleted, 10 renamed, 10 added (s)", churn["second_sync_s"]],
        ["second / first", churn["second_over_first"]],
        ["passages embedded by the second sync", churn["second_passages_embedded"]],
        [f"sync with nothing changed, {churn['files']} files (s)", churn["idle_sync_s"]],
        [f"sync with nothing changed, {idle['files']} files (s)", idle["idle_sync_s"]],
        ["watch: saved → searchable, p50 (s)", watch["p50_s"]],
        ["watch: saved → searchable, max (s)", watch["max_s"]]]))
    print(json.dumps(churn["second"]))
    return 0

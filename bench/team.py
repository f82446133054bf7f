"""A team server under load: `python -m bench team [--minutes 10] [--clients 16]`.

Three collections (SQuAD-Shifts new_wiki paragraphs, 100 each) behind `spanqa serve --config`, and four keys that
read one, two or all of them. First the memory of one collection against three: the server started with one, then
with three, each warmed and asked the same number of questions, resident memory measured after. Then the soak:
`--clients` clients for `--minutes`, each request drawn at random — a key (one of the four, a wrong one or none), a
collection (one of the three or one that does not exist) and a door (REST ask, answer, search, the document list,
OpenAI chat with the collection as model, an MCP initialize). Every request whose key cannot see its collection
must get exactly the bytes the nonexistent collection gets (a leak otherwise); none may get a 5xx; the resident
memory must plateau; and the time to refuse a hidden collection is set beside the time to refuse a missing one.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench.common import machine, write_json
from bench.serving import SHARED, start_spanqa_serve
from bench.soak import _rss_mb

NAMES = ("alpha", "beta", "gamma")
MISSING = "delta"
KEYS = {"alpha-readers": ["alpha"], "beta-readers": ["beta"], "beta-gamma": ["beta", "gamma"],
        "admin": list(NAMES)}
MCP_INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}


def _collections(root: Path, per_collection: int) -> dict[str, list[str]]:
    from spanqa.retriever import LocalCollection

    articles = json.loads((SHARED / "squadshifts" / "new_wiki_v1.0.json").read_text())["data"]
    paragraphs = [p for a in articles for p in a["paragraphs"]]
    questions = {}
    for i, name in enumerate(NAMES):
        own = paragraphs[i * per_collection:(i + 1) * per_collection]
        LocalCollection(root / name).ingest_bytes([(f"{name}-{j}.txt", p["context"].encode())
                                                   for j, p in enumerate(own)])
        questions[name] = [p["qas"][0]["question"] for p in own if p["qas"]]
    return questions


def _config(root: Path, names: tuple[str, ...], keys: dict[str, str]) -> Path:
    import tomli_w

    from spanqa.server_config import key_digest

    entries = [{"name": name, "key_sha256": key_digest(keys[name]).hex(), "read": [c for c in read if c in names],
                "metrics": name == "admin"} for name, read in KEYS.items()]
    path = root / f"spanqa-{len(names)}.toml"
    path.write_text(tomli_w.dumps({"collections": {n: str(root / n) for n in names}, "keys": entries}))
    return path


def _serve(config: Path) -> tuple[subprocess.Popen, str]:
    return start_spanqa_serve(["--config", str(config)])


def _memory(root: Path, names: tuple[str, ...], keys: dict[str, str], questions: dict[str, list[str]]) -> float:
    """Resident memory (MB) of a server of `names` after 20 questions to each of its collections."""
    import httpx

    process, url = _serve(_config(root, names, keys))
    try:
        with httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {keys['admin']}"}) as http:
            for name in names:
                for question in questions[name][:20]:
                    http.post(f"/v1/collections/{name}/ask", json={"question": question}).raise_for_status()
        return _rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(30)


def _request(http, key: str | None, collection: str, door: str, question: str):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    base = f"/v1/collections/{collection}"
    if door == "chat":
        return http.post("/v1/chat/completions", headers=headers, json={
            "model": collection, "messages": [{"role": "user", "content": question}]})
    if door == "mcp":
        return http.post(f"{base}/mcp/", headers={**headers, "Accept": "application/json, text/event-stream"},
                         json=MCP_INIT)
    if door == "documents":
        return http.get(f"{base}/documents", headers=headers)
    body = {"query": question, "k": 3} if door == "search" else {"question": question}
    return http.post(f"{base}/{door}", headers=headers, json=body)


def _client(url: str, keys: dict[str, str], questions: dict, deadline: float, seed: int, log: list,
            reference: dict) -> None:
    import httpx

    rng = random.Random(seed)
    key_names = [*KEYS, "wrong", None]
    with httpx.Client(base_url=url, timeout=300) as http:
        while time.time() < deadline:
            key_name, collection = rng.choice(key_names), rng.choice([*NAMES, MISSING])
            door = rng.choice(["ask", "answer", "search", "documents", "chat", "mcp"])
            key = keys.get(key_name, "sqk_wrong") if key_name else None
            question = rng.choice(questions[rng.choice(NAMES)])
            started = time.perf_counter()
            response = _request(http, key, collection, door, question)
            seconds = time.perf_counter() - started
            sees = key_name in KEYS and collection in KEYS[key_name]
            expected = reference["unknown key"] if key_name not in KEYS else reference["hidden"]
            leak = not sees and (response.status_code, response.content) != expected
            hidden_kind = None if sees or key_name not in KEYS else ("missing" if collection == MISSING else "hidden")
            log.append((door, response.status_code, sees, leak, hidden_kind, seconds))


def _soak(root: Path, keys: dict[str, str], questions: dict, args) -> dict:
    import httpx

    process, url = _serve(_config(root, NAMES, keys))
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            reference = {"hidden": (lambda r: (r.status_code, r.content))(
                             http.get(f"/v1/collections/{MISSING}/documents",
                                      headers={"Authorization": f"Bearer {keys['alpha-readers']}"})),
                         "unknown key": (lambda r: (r.status_code, r.content))(
                             http.get(f"/v1/collections/{MISSING}/documents"))}
        log: list = []
        memory = [(0.0, _rss_mb(process.pid))]
        deadline, began = time.time() + args.minutes * 60, time.time()
        threads = [threading.Thread(target=_client, args=(url, keys, questions, deadline, seed, log, reference))
                   for seed in range(args.clients)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            time.sleep(10)
            memory.append((time.time() - began, _rss_mb(process.pid)))
    finally:
        process.terminate()
        process.wait(30)
    return _soak_summary(log, memory)


def _soak_summary(log: list, memory: list[tuple[float, float]]) -> dict:
    rss = [m for _, m in memory]
    fifth = max(1, len(rss) // 5)
    early, late = statistics.mean(rss[fifth:2 * fifth] or rss), statistics.mean(rss[-fifth:])
    refused = {kind: [s * 1000 for *_, k, s in log if k == kind] for kind in ("hidden", "missing")}
    return {"requests": len(log), "by_status": dict(Counter(str(s) for _, s, *_ in log)),
            "by_door": dict(Counter(d for d, *_ in log)),
            "server_errors_5xx": sum(1 for _, s, *_ in log if s >= 500),
            "leaks": sum(1 for *_, leak, _, _ in log if leak),
            "not_visible_requests": sum(1 for _, _, sees, *_ in log if not sees),
            "refusal_ms_p50": {k: statistics.median(v) if v else None for k, v in refused.items()},
            "rss_mb": [(round(t), round(m, 1)) for t, m in memory], "rss_after_warmup_mb": early,
            "rss_last_fifth_mb": late, "plateau": late - early <= 0.05 * early}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench team", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-collection", type=int, default=100, help="paragraphs in each collection")
    parser.add_argument("--out", type=Path, default=Path("bench/out/team.json"))
    args = parser.parse_args(argv)
    from spanqa.server_config import new_key

    keys = {name: new_key()[0] for name in KEYS}
    with tempfile.TemporaryDirectory(prefix="spanqa-team-") as tmp:
        root = Path(tmp)
        questions = _collections(root, args.per_collection)
        one, three = _memory(root, NAMES[:1], keys, questions), _memory(root, NAMES, keys, questions)
        result = {"rss_one_collection_mb": one, "rss_three_collections_mb": three, "ratio": three / one,
                  "soak": {"minutes": args.minutes, "clients": args.clients, **_soak(root, keys, questions, args)},
                  "machine": machine()}
    write_json(args.out, result)
    print(json.dumps({**result, "soak": {k: v for k, v in result["soak"].items() if k != "rss_mb"}}, indent=2))
    soak = result["soak"]
    return 0 if soak["plateau"] and not soak["server_errors_5xx"] and not soak["leaks"] else 1

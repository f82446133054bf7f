"""The shipped router (a linear head over the embedder's vectors) against the fine-tuned router, in one run.

    python -m bench.router_head [--out bench/out/router-head] [--clinc-epochs 4] [--skip-clinc-finetune]

1. The routing data's own held-out 20 % (the default router's split): accuracy, macro-F1, per-class F1.
2. CLINC150 (150 intents + out-of-scope): trained on train + oos_train, threshold on val, reported on val.
3. Real document questions routed away from the documents (bench.routing's unseen samples and the technical set).
4. The time to route and embed one question (what every question pays before retrieval), median over questions:
   today, a router forward pass plus the embedder's; with the head, one embedder pass whose vector the search reuses.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from spanqa.plugin.engine.defaults import ROUTING_DATA
from spanqa.plugin.engine.router import EmbeddingRouter, IntentClassifier
from spanqa.plugin.lab.router_eval import evaluate_intents
from spanqa.plugin.lab.router_training import (
    IntentTrainConfig,
    fit_router_head,
    router_train_config,
    train_and_validation,
    train_intent_classifier,
)
from spanqa.retriever.embedding import Embedder

from bench.common import machine, write_json
from bench.intent import DEFAULT_DATA as CLINC
from bench.intent import _write_jsonl
from bench.routing import SHARED, routed_away_by, unseen_questions

ROUTE_SETS = {
    "new_wiki (unseen)": (SHARED / "squadshifts" / "new_wiki_v1.0.json", 1000),
    "COVID-QA (unseen)": (SHARED / "covid-qa" / "covid_qa_200423.json", 380),
}


def _report(router, texts: list[str], labels: list[str]) -> dict:
    report = evaluate_intents(router, texts, labels)
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1, "in_scope_accuracy": report.in_scope_accuracy,
            "oos_recall": report.oos_recall, "oos_precision": report.oos_precision, "ece": report.ece,
            "f1": {label: round(v["f1"], 3) for label, v in report.per_class.items()}}


def routing_data(tmp: Path, embedder: Embedder) -> tuple[dict, dict[str, object]]:
    routers, seconds = {}, {}
    for kind in ("fine-tuned", "head"):
        cfg = router_train_config(tmp / kind)
        started = time.perf_counter()
        if kind == "head":
            fit_router_head(cfg, embedder=embedder, progress=False)
            routers[kind] = EmbeddingRouter(tmp / kind, embedder=embedder)
        else:
            train_intent_classifier(cfg, progress=False)
            routers[kind] = IntentClassifier(tmp / kind)
        seconds[kind] = time.perf_counter() - started
    _, (texts, labels) = train_and_validation(router_train_config(tmp / "split"))
    rows = {kind: {**_report(router, texts, labels), "fit_seconds": seconds[kind]} for kind, router in routers.items()}
    return rows, routers


def clinc(tmp: Path, embedder: Embedder, epochs: int, finetune: bool) -> dict:
    data = json.loads(CLINC.read_text())
    train = _write_jsonl(tmp / "clinc-train.jsonl", data["train"] + data["oos_train"])
    val_rows = data["val"] + data["oos_val"]
    val = _write_jsonl(tmp / "clinc-val.jsonl", val_rows)
    texts, labels = [t for t, _ in val_rows], [lab for _, lab in val_rows]
    rows = {}
    started = time.perf_counter()
    # 15,100 training messages: the weight and C are chosen on val (9 fits) rather than by 5-fold CV (45).
    fit_router_head(IntentTrainConfig(data=str(train), val=str(val), out=str(tmp / "clinc-head")), embedder=embedder,
                    progress=False, choose_on_validation=True)
    rows["head"] = {**_report(EmbeddingRouter(tmp / "clinc-head", embedder=embedder), texts, labels),
                    "fit_seconds": time.perf_counter() - started}
    if finetune:
        started = time.perf_counter()
        train_intent_classifier(IntentTrainConfig(data=str(train), val=str(val), out=str(tmp / "clinc-ft"),
                                                  epochs=epochs, patience=1, batch_size=64, lr=1e-4), progress=False)
        rows["fine-tuned"] = {**_report(IntentClassifier(tmp / "clinc-ft"), texts, labels),
                              "fit_seconds": time.perf_counter() - started}
    for row in rows.values():
        row.pop("f1")
    return rows


def routed_away(routers: dict) -> dict:
    from bench.techdocs.build import build

    sets = {name: unseen_questions(path, count) for name, (path, count) in ROUTE_SETS.items()}
    sets["technical set"] = [qa["question"] for article in build()["data"] for p in article["paragraphs"]
                             for qa in p["qas"]]
    return {kind: {name: {"away": len(routed_away_by(router, questions)), "of": len(questions)}
                   for name, questions in sets.items()} for kind, router in routers.items()}


def route_and_embed_ms(routers: dict, embedder: Embedder, questions: list[str]) -> dict:
    """Median ms to route and embed one question. The head's vector is the search's: the embed is a cache hit."""
    timings: dict[str, list[float]] = {kind: [] for kind in routers}
    for round_, question in enumerate(questions):
        for kind in (list(routers) if round_ % 2 == 0 else list(routers)[::-1]):  # alternate who goes first
            text = f"{question} ({kind})"  # a text neither has embedded before
            started = time.perf_counter()
            routers[kind].classify(text)
            embedder.encode_queries([text])
            timings[kind].append((time.perf_counter() - started) * 1000)
    return {kind: {"p50_ms": statistics.median(t), "p95_ms": statistics.quantiles(t, n=20)[-1]}
            for kind, t in timings.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/out/router-head"))
    parser.add_argument("--clinc-epochs", type=int, default=4)
    parser.add_argument("--skip-clinc-finetune", action="store_true", help="CLINC150: fit only the head")
    args = parser.parse_args(argv)
    embedder = Embedder()
    with tempfile.TemporaryDirectory(prefix="spanqa-router-head-") as tmp:
        tmp = Path(tmp)
        own, routers = routing_data(tmp, embedder)
        result = {"routing_data": own, "routed_away": routed_away(routers),
                  "route_and_embed": route_and_embed_ms(routers, embedder,
                                                        unseen_questions(ROUTE_SETS["new_wiki (unseen)"][0], 300)),
                  "clinc150": clinc(tmp, embedder, args.clinc_epochs, not args.skip_clinc_finetune),
                  "routing_data_file": str(ROUTING_DATA), "machine": machine()}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "router_head.json", result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

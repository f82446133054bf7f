"""Measure one system on one BenchSet: ingest, retrieval, reading on gold passages, open-domain answering with
abstention, latency per stage, batch throughput, the reader's FLOPs and peak memory.

`measure_system` runs in a process of its own (see bench.run), so that peak memory is that system's alone and
no system inherits another's warm caches.
"""

from __future__ import annotations

import time

import numpy as np
from spanqa.plugin.engine.squad import CORRECT_F1, exact_match_score, f1_score, max_over_ground_truths

from bench.common import peak_rss_mb, percentiles
from bench.flops import encoder_flops, matmul_gflops
from bench.qa_data import BenchSet
from bench.systems import make_system

__all__ = ["RECALL_DEPTH", "measure_system", "reliability"]

RECALL_DEPTH = 20


def _scores(prediction: str, truths: tuple[str, ...]) -> tuple[float, float]:
    return (max_over_ground_truths(exact_match_score, prediction, list(truths)),
            max_over_ground_truths(f1_score, prediction, list(truths)))


def reliability(scores: list[float], correct: list[bool], bins: int = 10) -> dict:
    """Reliability diagram data and expected calibration error of answer scores (the ECE of `spanqa calibrate`)."""
    from spanqa.plugin.engine.calibration import expected_calibration_error

    s, c = np.asarray(scores, dtype=float), np.asarray(correct, dtype=float)
    which = np.clip((s * bins).astype(int), 0, bins - 1)
    rows = [{"low": b / bins, "high": (b + 1) / bins, "count": int((which == b).sum()),
             "mean_score": float(s[which == b].mean()), "accuracy": float(c[which == b].mean())}
            for b in range(bins) if (which == b).any()]
    return {"bins": rows, "ece": expected_calibration_error(s, c, bins) if len(s) else None, "answers": len(s)}


def _retrieval(system, bench: BenchSet) -> dict:
    questions = [q for q in bench.questions if q.answerable]
    out = {}
    for mode in system.retrieval_modes:
        ranks, latencies = [], []
        for q in questions:
            started = time.perf_counter()
            found = system.retrieve(q.text, RECALL_DEPTH, mode)
            latencies.append((time.perf_counter() - started) * 1000)
            ranks.append(next((i for i, loc in enumerate(found, start=1) if bench.is_hit(q, *loc)), None))
        curve = [float(np.mean([r is not None and r <= k for r in ranks])) for k in range(1, RECALL_DEPTH + 1)]
        out[mode] = {"recall@1": curve[0], "recall@5": curve[4], "recall@20": curve[19],
                     "mrr@20": float(np.mean([1 / r if r else 0.0 for r in ranks])), "recall_curve": curve,
                     "questions": len(questions), "latency": percentiles(latencies)}
    return out


def _gold_reading(system, bench: BenchSet) -> dict:
    ems, f1s = [], []
    for q in bench.questions:
        if q.gold_passage is not None:
            em, f1 = _scores(system.read(q.text, bench.passages[q.gold_passage]), q.answers)
            ems.append(em)
            f1s.append(f1)
    return {"exact_match": 100 * float(np.mean(ems)), "f1": 100 * float(np.mean(f1s)), "questions": len(ems)}


def _open_domain(system, bench: BenchSet, gflops: float) -> dict:
    config = system.reader.model.config
    system.tokens.take()
    records, timings, flops, tokens, passages_read, technical = [], {}, [], [], [], []
    for q in bench.questions:
        prediction = system.answer(q.text)
        shapes = system.tokens.take()
        flops.append(encoder_flops(config, shapes))
        tokens.append(sum(b * n for b, n in shapes))
        if prediction.passages_read is not None:
            passages_read.append(prediction.passages_read)
        if prediction.technical_reader is not None:
            technical.append(prediction.technical_reader)
        for stage, ms in prediction.timings_ms.items():
            timings.setdefault(stage, []).append(ms)
        said = "" if prediction.abstained or prediction.text is None else prediction.text
        em, f1 = _scores(said, q.answers) if q.answerable else (float(prediction.abstained),) * 2
        top_f1 = _scores(prediction.text or "", q.answers)[1] if q.answerable else 0.0
        best_f1 = max((_scores(c, q.answers)[1] for c in prediction.candidates), default=top_f1) \
            if q.answerable else 0.0
        records.append({"id": q.id, "answerable": q.answerable, "abstained": prediction.abstained, "em": em,
                        "f1": f1, "top_f1": top_f1, "best_f1": best_f1, "score": prediction.score,
                        "text": prediction.text, "location": prediction.location, "passage": prediction.passage})
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    abstained = [r for r in records if r["abstained"]]
    scored = [r for r in records if r["score"] is not None]
    mean = lambda rows, key: 100 * float(np.mean([r[key] for r in rows])) if rows else None  # noqa: E731
    read_p50 = float(np.percentile(timings["read"], 50))
    bound_ms = 1000 * float(np.mean(flops)) / (gflops * 1e9)
    return {
        "questions": len(records),
        "answerable": {"count": len(answerable), "exact_match": mean(answerable, "em"), "f1": mean(answerable, "f1"),
                       "f1_never_abstaining": mean(answerable, "top_f1"),
                       "f1_best_candidate": mean(answerable, "best_f1"),
                       "abstained": float(np.mean([r["abstained"] for r in answerable])) if answerable else None},
        "unanswerable": {"count": len(unanswerable),
                         "abstention_rate": float(np.mean([r["abstained"] for r in unanswerable]))
                         if unanswerable else None},
        "abstention_precision": (sum(not r["answerable"] for r in abstained) / len(abstained)) if abstained else None,
        "overall": {"exact_match": mean(records, "em"), "f1": mean(records, "f1")},
        # Re-ranking and abstention alone at their best: each answerable question's best returned candidate, and
        # every unanswerable one abstained on.
        "oracle_f1": mean([{"f1": r["best_f1"] if r["answerable"] else 1.0} for r in records], "f1"),
        "calibration": reliability([r["score"] for r in scored],
                                   [r["answerable"] and r["top_f1"] >= CORRECT_F1 for r in scored]),
        "passages_read_per_question": float(np.mean(passages_read)) if passages_read else None,
        "technical_reader_share": float(np.mean(technical)) if technical else None,
        "latency": {stage: percentiles(values) for stage, values in timings.items()},
        "latency_samples_ms": timings["end_to_end"],
        "records": records,  # per question, for error kinds and paired comparisons (bench.errors, bench.report)
        "reader_compute": {"tokens_per_question": float(np.mean(tokens)),
                           "gflop_per_question": float(np.mean(flops)) / 1e9, "machine_gflops": gflops,
                           "bound_ms": bound_ms, "read_p50_ms": read_p50,
                           "read_p50_over_bound": read_p50 / bound_ms if bound_ms else None},
    }


def measure_system(name: str, bench: BenchSet, reader: str, top_k: int, batch: int) -> dict:
    import torch

    peaks = {}  # the process's peak RSS so far, after each stage: where the memory goes
    started = time.perf_counter()
    system = make_system(name, reader, top_k)
    load_s = time.perf_counter() - started
    peaks["models loaded"] = peak_rss_mb()
    started = time.perf_counter()
    passages = system.index(bench)
    ingest_s = time.perf_counter() - started
    peaks["ingest"] = peak_rss_mb()
    result = {"load_seconds": load_s,
              "ingest": {"passages": passages, "seconds": ingest_s, "passages_per_s": passages / ingest_s},
              "retrieval": _retrieval(system, bench), "gold_passage": _gold_reading(system, bench),
              "torch_threads": torch.get_num_threads()}
    peaks["retrieval + gold passages"] = peak_rss_mb()
    result["open_domain"] = _open_domain(system, bench, matmul_gflops())
    peaks["open domain, batch 1"] = peak_rss_mb()
    questions = [q.text for q in bench.questions[:batch]]
    started = time.perf_counter()
    retrieve_seconds = system.answer_batch(questions)
    seconds = time.perf_counter() - started
    result["throughput"] = {"questions": len(questions), "seconds": seconds, "retrieve_seconds": retrieve_seconds,
                            "questions_per_s": len(questions) / seconds}
    peaks["throughput batch"] = peak_rss_mb()
    if hasattr(system, "intent_routed_to_documents"):
        routed = [system.intent_routed_to_documents(q.text) for q in bench.questions]
        result["routed_to_documents"] = float(np.mean(routed))
        result["routed_away"] = int(len(routed) - sum(routed))
    result["peak_rss_mb"] = peak_rss_mb()
    result["peak_rss_mb_after"] = peaks
    return result

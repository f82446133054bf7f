"""The side-by-side report: one Markdown table (spanqa, Haystack, baseline and the ratios, all from one run) and
three plots (end-to-end latency distribution, answer-score reliability, recall@k)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ROWS", "comparison_rows", "markdown_report", "paired_difference", "write_plots"]

# spanqa-margin: spanqa before the ranker; spanqa-fp32: before adaptive reading and bf16; spanqa-previous: with the
# models of --previous; spanqa-before: spanqa's code and models at the git revision --before
SYSTEM_ORDER = ("spanqa", "spanqa-before", "spanqa-previous", "spanqa-fp32", "spanqa-margin", "haystack", "baseline")

# (label, path into a system's section, digits)
ROWS: list[tuple[str, tuple[str, ...], int]] = [
    *[(f"retrieval {mode} {metric}", ("retrieval", mode, metric), 3)
      for mode in ("hybrid", "dense", "bm25") for metric in ("recall@1", "recall@5", "recall@20", "mrr@20")],
    ("retrieval hybrid latency p50 ms", ("retrieval", "hybrid", "latency", "p50_ms"), 1),
    ("retrieval dense latency p50 ms", ("retrieval", "dense", "latency", "p50_ms"), 1),
    ("gold passage EM", ("gold_passage", "exact_match"), 2),
    ("gold passage F1", ("gold_passage", "f1"), 2),
    ("open-domain EM (answerable)", ("open_domain", "answerable", "exact_match"), 2),
    ("open-domain F1 (answerable)", ("open_domain", "answerable", "f1"), 2),
    ("open-domain F1 if never abstaining (top-1)", ("open_domain", "answerable", "f1_never_abstaining"), 2),
    ("open-domain F1, best of the returned candidates", ("open_domain", "answerable", "f1_best_candidate"), 2),
    ("abstained on answerable", ("open_domain", "answerable", "abstained"), 3),
    ("abstained on unanswerable (rate)", ("open_domain", "unanswerable", "abstention_rate"), 3),
    ("abstention precision", ("open_domain", "abstention_precision"), 3),
    ("open-domain EM (all, abstaining right = 1)", ("open_domain", "overall", "exact_match"), 2),
    ("open-domain F1 (all, abstaining right = 1)", ("open_domain", "overall", "f1"), 2),
    ("oracle ceiling F1 (best returned candidate, unanswerable abstained)", ("open_domain", "oracle_f1"), 2),
    *[(f"top answers: {kind}", ("open_domain", "errors", "kinds", kind), 0)
      for kind in ("right", "boundary", "wrong type", "wrong span", "wrong passage", "no answer")],
    ("top answers withheld (answerable)", ("open_domain", "errors", "abstained"), 0),
    ("answer-score ECE", ("open_domain", "calibration", "ece"), 3),
    ("latency end to end p50 ms", ("open_domain", "latency", "end_to_end", "p50_ms"), 1),
    ("latency end to end p95 ms", ("open_domain", "latency", "end_to_end", "p95_ms"), 1),
    ("latency route p50 ms", ("open_domain", "latency", "route", "p50_ms"), 1),
    ("latency retrieve p50 ms", ("open_domain", "latency", "retrieve", "p50_ms"), 1),
    ("latency retrieve p95 ms", ("open_domain", "latency", "retrieve", "p95_ms"), 1),
    ("latency read p50 ms", ("open_domain", "latency", "read", "p50_ms"), 1),
    ("latency read p95 ms", ("open_domain", "latency", "read", "p95_ms"), 1),
    ("passages read per question (adaptive reading)", ("open_domain", "passages_read_per_question"), 2),
    ("questions read by the technical reader (share)", ("open_domain", "technical_reader_share"), 3),
    ("reader tokens per question", ("open_domain", "reader_compute", "tokens_per_question"), 0),
    ("reader GFLOP per question", ("open_domain", "reader_compute", "gflop_per_question"), 2),
    ("matmul GFLOP/s (this machine)", ("open_domain", "reader_compute", "machine_gflops"), 1),
    ("read bound ms (FLOPs ÷ GFLOP/s)", ("open_domain", "reader_compute", "bound_ms"), 1),
    ("read p50 ÷ bound", ("open_domain", "reader_compute", "read_p50_over_bound"), 2),
    ("throughput questions/s (batch)", ("throughput", "questions_per_s"), 2),
    ("throughput batch: seconds retrieving", ("throughput", "retrieve_seconds"), 2),
    ("throughput batch: seconds in all", ("throughput", "seconds"), 2),
    ("ingest passages/s", ("ingest", "passages_per_s"), 1),
    ("peak memory MB (RSS) after ingest", ("peak_rss_mb_after", "ingest"), 0),
    ("peak memory MB (RSS) after batch-1 answering", ("peak_rss_mb_after", "open domain, batch 1"), 0),
    ("peak memory MB (RSS), whole run", ("peak_rss_mb",), 0),
    ("questions routed to documents", ("routed_to_documents",), 3),
    ("questions routed away from the documents", ("routed_away",), 0),
]


def _get(section: dict | None, path: tuple[str, ...]):
    value = section
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, int | float) else None


def comparison_rows(results: dict) -> list[dict]:
    """Each metric for each system, and spanqa's value divided by each other system's (same run)."""
    rows = []
    for label, path, digits in ROWS:
        values = {name: _get(results.get(name), path) for name in SYSTEM_ORDER}
        if all(v is None for v in values.values()):
            continue
        ratios = {other: values["spanqa"] / values[other]
                  for other in SYSTEM_ORDER[1:] if values["spanqa"] is not None and values[other]}
        rows.append({"metric": label, "digits": digits, "values": values, "ratios": ratios})
    return rows


def paired_difference(after: list[dict], before: list[dict], resamples: int = 10_000, seed: int = 0) -> dict:
    """Mean end-to-end F1 difference (after − before) over the same questions, with a 95 % paired bootstrap
    interval: how far apart two systems really are on a set this size."""
    import numpy as np

    by_id = {r["id"]: r["f1"] for r in before}
    diff = np.array([r["f1"] - by_id[r["id"]] for r in after if r["id"] in by_id], dtype=float)
    f1 = np.array([r["f1"] for r in after], dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(axis=1)
    alone = f1[rng.integers(0, len(f1), (resamples, len(f1)))].mean(axis=1)
    return {"questions": len(diff), "difference": 100 * float(diff.mean()),
            "ci95": [100 * float(np.percentile(means, 2.5)), 100 * float(np.percentile(means, 97.5))],
            "after_ci95": [100 * float(np.percentile(alone, 2.5)), 100 * float(np.percentile(alone, 97.5))]}


def _difference_line(results: dict) -> list[str]:
    records = {name: results.get(name, {}).get("open_domain", {}).get("records") for name in ("spanqa",
                                                                                              "spanqa-before")}
    if not all(records.values()):
        return []
    d = paired_difference(records["spanqa"], records["spanqa-before"])
    return ["", f"End-to-end F1 (all), spanqa − spanqa-before: **{d['difference']:+.2f}** (95 % paired bootstrap "
                f"interval {d['ci95'][0]:+.2f} to {d['ci95'][1]:+.2f} over {d['questions']} questions; spanqa's own "
                f"F1 interval {d['after_ci95'][0]:.1f}–{d['after_ci95'][1]:.1f})."]


def markdown_report(results: dict) -> str:
    meta = results["meta"]
    data = meta["data"]
    lines = [f"# spanqa vs Haystack vs baseline — {data['data']}", "",
             f"{data['questions']} questions ({data['answerable']} answerable, {data['unanswerable']} unanswerable: "
             f"{data['held_out_documents']} contexts held out of the collection), {data['documents']} documents, "
             f"{data['passages']} passages; top-k {meta['top_k']}, batch size 1 for latency, "
             f"{meta['throughput_batch']} questions for throughput. Same embedding model and reader weights in every "
             f"system. Machine: {meta['machine']['cores']} cores, torch threads {meta['machine']['torch_threads']}.",
             f"Command: `{meta['command']}`", ""]
    lines += [f"- {note}" for note in data.get("notes", [])]
    present = [name for name in SYSTEM_ORDER if name in results]
    others = [name for name in present if name != "spanqa"]
    lines += ["", "| metric | " + " | ".join(present + [f"spanqa ÷ {o}" for o in others]) + " |",
              "|---" * (1 + len(present) + len(others)) + "|"]
    for row in comparison_rows(results):
        cells = [f"{row['values'][n]:.{row['digits']}f}" if row["values"][n] is not None else "–" for n in present]
        ratios = [f"{row['ratios'][o]:.2f}" if o in row["ratios"] else "–" for o in others]
        lines.append(f"| {row['metric']} | " + " | ".join(cells + ratios) + " |")
    lines += _difference_line(results)
    router = results.get("spanqa", {}).get("router")
    if router:
        lines += ["", f"**Router** (spanqa only: Haystack's routers have no out-of-scope branch, so there is "
                      f"nothing to compare): CLINC150 val, {router['in_scope_intents']} in-scope intents + "
                      "out-of-scope, "
                      f"in-scope accuracy {router['in_scope_accuracy']:.2f} %, out-of-scope recall "
                      f"{router['oos_recall']:.2f} %, macro-F1 {router['macro_f1']:.3f}, training "
                      f"{router['train_seconds'] / 60:.1f} min."]
    lines += ["", "Ratios are spanqa's value divided by the other system's; for latency and memory below 1 is "
                  "better, for quality and throughput above 1. Plots: latency.png, reliability.png, recall.png."]
    return "\n".join(lines) + "\n"


def write_plots(results: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = [s for s in SYSTEM_ORDER if s in results]
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4))
    samples = [results[s]["open_domain"]["latency_samples_ms"] for s in systems]
    ax.boxplot(samples, tick_labels=systems, showfliers=True, whis=(5, 95))
    ax.set_ylabel("end-to-end latency per question (ms), top-5, batch 1")
    ax.set_yscale("log")
    ax.set_title("Latency distribution (whiskers p5–p95)")
    paths.append(out / "latency.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    for s in systems:
        calibration = results[s]["open_domain"]["calibration"]
        bins = calibration["bins"]
        ax.plot([b["mean_score"] for b in bins], [b["accuracy"] for b in bins], "o-",
                label=f"{s} (ECE {calibration['ece']:.3f})")
    ax.set_xlabel("answer score")
    ax.set_ylabel("fraction correct (F1 ≥ 0.5)")
    ax.set_title("Answer-score reliability, open domain")
    ax.legend()
    paths.append(out / "reliability.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    for s in systems:
        for mode, row in results[s]["retrieval"].items():
            curve = row["recall_curve"]
            ax.plot(range(1, len(curve) + 1), curve, label=f"{s} {mode}",
                    linestyle={"hybrid": "-", "dense": "--", "bm25": ":"}[mode])
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_title("Retrieval: answer-bearing passage in the top k")
    ax.legend(fontsize=8)
    paths.append(out / "recall.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths

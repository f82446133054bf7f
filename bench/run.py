"""spanqa vs Haystack vs a ten-line baseline, on the same SQuAD-format data, embedding model and reader weights,
in one run.

    spanqa bench [--data FILE] [--quick] [--out DIR]        (or: python -m bench ...)

Writes <out>/results.json (sections `spanqa`, `haystack`, `baseline`, plus `meta`), <out>/report.md and the
plots latency.png, reliability.png and recall.png. Each system runs in a fresh process of its own, one after
another, so peak memory is its own and the CPU is not shared between them. Haystack comes from the `bench`
extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.common import machine, write_json
from bench.revision import checkout, importing_from
from bench.systems import SYSTEMS

__all__ = ["main", "run"]

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DATA = SHARED / "covid-qa" / "covid_qa_200423.json"
QUICK = {"contexts": 6, "limit": 24, "throughput_batch": 8, "router_intents": 3}


def _in_own_process(function, *args, spanqa_root: Path | None = None, **kwargs):
    """`function(*args, **kwargs)` in a fresh process; `spanqa_root`: import spanqa from there (bench.revision)."""
    with importing_from(spanqa_root), ProcessPoolExecutor(max_workers=1,
                                                          mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()


def _router(data: Path, out: Path, quick: bool) -> dict:
    from bench.intent import run as run_intent

    if quick:
        return run_intent(data, out, epochs=1, batch_size=32, lr=2e-4, intents=QUICK["router_intents"], quiet=True)
    return run_intent(data, out, epochs=4, batch_size=64, lr=2e-4, quiet=True)


def _check_haystack() -> None:
    try:
        import haystack  # noqa: F401
    except ImportError as exc:
        raise SystemExit("Haystack is not installed: pip install -e '.[bench]' (or leave it out with "
                         "--systems spanqa,baseline)") from exc


def run(args: argparse.Namespace) -> dict:
    from transformers import AutoTokenizer

    from bench.qa_data import build_bench_set
    from bench.report import markdown_report, write_plots
    from spanqa.settings import Settings

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown or not systems:
        raise SystemExit(f"--systems takes {', '.join(SYSTEMS)}, got {args.systems!r}")
    if "haystack" in systems:
        _check_haystack()
    if ("spanqa-before" in systems) != bool(args.before):
        raise SystemExit("spanqa-before and --before REV go together, e.g. --systems spanqa,spanqa-before --before "
                         "HEAD~1")
    if "spanqa-previous" in systems and not (args.previous and (args.previous / "ranker.json").is_file()):
        raise SystemExit("spanqa-previous needs --previous DIR holding reader/ and ranker.json, e.g. "
                         "git archive HEAD~1 spanqa/models | tar -x --strip-components=2 -C DIR")
    if not args.data.is_file():
        raise SystemExit(f"SQuAD-format file not found: {args.data}")
    # Every model here is local; telemetry and hub lookups would only wait for a network that is not there.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    quick = QUICK if args.quick else {}
    reader = str(args.reader or Settings.from_env().reader_path)
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(Settings.from_env().embedder_path)
    bench = build_bench_set(args.data, tokenizer, limit=quick.get("limit", args.limit), skip=args.skip,
                            contexts=quick.get("contexts", args.contexts), holdout=args.holdout, seed=args.seed)
    batch = quick.get("throughput_batch", args.throughput_batch)
    described = bench.describe()
    print(f"{described['data']}: {described['questions']} questions ({described['unanswerable']} unanswerable), "
          f"{described['documents']} documents, {described['passages']} passages", flush=True)
    from bench.measure import measure_system

    results: dict = {"meta": {"data": described, "data_path": str(args.data), "reader": reader, "top_k": args.top_k,
                              "throughput_batch": batch, "quick": bool(args.quick), "machine": machine(),
                              "command": "spanqa bench " + shlex.join(args.argv)}}
    for name in systems:
        t = time.perf_counter()
        models = str(args.previous / "reader") if name == "spanqa-previous" else reader
        if name == "spanqa-before":
            with checkout(args.before) as root:
                results[name] = _in_own_process(measure_system, "spanqa", bench, str(root / "spanqa" / "models" /
                                                 "reader"), args.top_k, batch, spanqa_root=root)
            results["meta"]["before"] = args.before
        else:
            results[name] = _in_own_process(measure_system, name, bench, models, args.top_k, batch)
        print(f"{name}: measured in {time.perf_counter() - t:.0f}s", flush=True)
    if "spanqa" in systems and args.clinc.is_file() and not args.no_router:
        t = time.perf_counter()
        results["spanqa"]["router"] = _in_own_process(_router, args.clinc, args.out, bool(args.quick))
        print(f"router: measured in {time.perf_counter() - t:.0f}s", flush=True)
    from bench.errors import error_counts

    for name in systems:
        results[name]["open_domain"]["errors"] = error_counts(results[name]["open_domain"]["records"], bench)
    results["meta"]["seconds"] = time.perf_counter() - started
    write_json(args.out / "results.json", results)
    report = markdown_report(results)
    (args.out / "report.md").write_text(report)
    write_plots(results, args.out)
    print(report)
    print(f"Wrote {args.out / 'results.json'}, report.md and plots in {time.perf_counter() - started:.0f}s")
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spanqa bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a SQuAD-format file (v1 or v2)")
    p.add_argument("--out", type=Path, default=Path("bench/out/side-by-side"))
    p.add_argument("--quick", action="store_true",
                   help=f"a small slice ({QUICK['contexts']} contexts, {QUICK['limit']} questions) in under 2 min")
    p.add_argument("--reader", help="reader model directory or HF id (default: the shipped reader)")
    p.add_argument("--systems", default="spanqa,haystack,baseline",
                   help="comma-separated; spanqa-margin is spanqa without its answer ranker (the order before it), "
                        "spanqa-fp32 spanqa before adaptive reading and bf16, spanqa-previous spanqa with the models "
                        "in --previous, spanqa-before spanqa at the git revision --before")
    p.add_argument("--before", metavar="REV",
                   help="a git revision for spanqa-before: spanqa's code and models as they were there, measured "
                        "by this benchmark in the same run (bench.revision)")
    p.add_argument("--previous", type=Path,
                   help="a folder with reader/ and ranker.json (models shipped earlier) for spanqa-previous")
    p.add_argument("--limit", type=int, help="sample this many questions (seeded); default all")
    p.add_argument("--skip", type=int, default=0,
                   help="leave out the file's first N questions (e.g. those that selected the reader checkpoint)")
    p.add_argument("--contexts", type=int, help="keep only the file's first N contexts")
    p.add_argument("--holdout", type=float, default=0.15,
                   help="fraction of contexts left out of the collection: their questions are unanswerable")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--throughput-batch", type=int, default=64)
    p.add_argument("--clinc", type=Path, default=SHARED / "clinc150" / "clinc150_train_val.json",
                   help="CLINC150 file for the router benchmark (spanqa only)")
    p.add_argument("--no-router", action="store_true", help="skip the CLINC150 router benchmark")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if not 0 <= args.holdout < 1:
        raise SystemExit(f"--holdout must be in [0, 1), got {args.holdout}")
    if args.top_k < 1 or args.throughput_batch < 1:
        raise SystemExit("--top-k and --throughput-batch must be at least 1")
    args.argv = argv
    run(args)
    return 0

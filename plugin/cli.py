"""The `spanqa` command line: ingest, search, ask, train, evaluate and benchmark."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from plugin.errors import SpanqaError
from retriever.errors import CollectionError

COMMANDS: dict[str, callable] = {}


def command(name: str):
    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=None))


# --- collection -------------------------------------------------------------------------------------

def _open_collection(args, create: bool = False):
    from plugin.collections import open_collection

    return open_collection(args.collection, embedder=getattr(args, "embedder", None), create=create)


def _tqdm_progress():
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file")

    def update(message: str, done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.set_description(message[:60])
        bar.refresh()
        if done == total:
            bar.close()

    return update


@command("ingest")
def _ingest(args) -> int:
    from plugin.collections import resolve_collection_path
    from plugin.config import Settings
    from retriever import ChunkingSettings, Collection, Embedder

    path = resolve_collection_path(args.collection)
    chunking = ChunkingSettings(max_tokens=args.chunk_tokens, overlap_tokens=args.overlap_tokens)
    limits = {k: v for k, v in (("max_file_mb", args.max_file_mb),
                                ("max_passages_per_document", args.max_passages_per_document)) if v is not None}
    collection = Collection(path, embedder=Embedder(args.embedder) if args.embedder else None, chunking=chunking,
                            limits=Settings.from_env(**limits).collection_limits())
    report = collection.ingest(args.paths, include=args.include, exclude=args.exclude,
                               progress=None if args.json else _tqdm_progress())
    if args.json:
        _print_json(report.to_dict())
    else:
        for skipped in report.skipped:
            print(f"skipped: {skipped.reason}")
        print(f"{path}: {report.summary()}")
    return 0 if report.added or report.updated or report.unchanged or not report.skipped else 1


@command("search")
def _search(args) -> int:
    collection = _open_collection(args)
    hits = collection.search(args.query, k=args.k, mode=args.mode)
    if args.json:
        _print_json([h.to_dict() for h in hits])
        return 0
    if not hits:
        print("No passages found." if len(collection) else "The collection is empty: add documents with "
              "`spanqa ingest PATH`.")
    for rank, hit in enumerate(hits, start=1):
        p = hit.passage
        dense = f"{hit.dense_score:.3f}" if hit.dense_score is not None else "-"
        bm25 = f"{hit.bm25_score:.2f}" if hit.bm25_score is not None else "-"
        print(f"[{rank}] {p.source} p.{p.page} chars {p.start}-{p.end}  fused {hit.score:.4f}  dense {dense}  "
              f"bm25 {bm25}")
        print("    " + p.text.replace("\n", " ")[:400])
    return 0


@command("docs")
def _docs(args) -> int:
    collection = _open_collection(args)
    if args.action == "remove":
        if not args.document:
            raise ValueError("give the document id or source to remove")
        if not collection.delete(args.document):
            print(f"No document {args.document!r} in {collection.path}", file=sys.stderr)
            return 1
        print(f"Removed {args.document}")
        return 0
    documents = collection.documents()
    if args.json:
        _print_json([d.__dict__ for d in documents])
        return 0
    for d in documents:
        print(f"{d.id}  {d.passages:5d} passages  {d.characters:8d} chars  {d.source}")
    print(f"{len(documents)} documents in {collection.path}")
    return 0


@command("reindex")
def _reindex(args) -> int:
    from plugin.collections import reindex_collection

    report = reindex_collection(args.collection, embedder=args.embedder)
    print(report)
    return 0


# --- reader -------------------------------------------------------------------------------------------

@command("train-reader")
def _train_reader(args) -> int:
    from plugin.reader_training import ReaderTrainConfig, train_reader

    cfg = ReaderTrainConfig(
        train=args.train, dev=args.dev, out=args.out, base=args.base, max_seq_len=args.max_seq_len,
        stride=args.stride, batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, max_hours=args.max_hours,
        negative_ratio=args.negative_ratio, dev_limit=args.dev_limit, eval_minutes=args.eval_minutes,
        checkpoint_minutes=args.checkpoint_minutes, seed=args.seed, limit=args.limit,
    )
    summary = train_reader(cfg, resume=args.resume)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0


@command("eval-reader")
def _eval_reader(args) -> int:
    from plugin.reader import Reader
    from plugin.reader_eval import evaluate_reader
    from plugin.squad import load_squad

    reader = Reader(args.model, max_seq_len=args.max_seq_len, stride=args.stride, precision=args.precision)
    examples = load_squad(args.data, limit=args.limit)
    scores = evaluate_reader(reader, examples, progress=not args.json)
    if args.json:
        _print_json(scores.to_dict())
    else:
        print(f"{args.data}: EM {scores.exact_match:.2f}  F1 {scores.f1:.2f}  ({scores.count} questions)")
    return 0


# --- assistant ------------------------------------------------------------------------------------------

@command("ask")
def _ask(args) -> int:
    from plugin.assistant import Assistant, response_to_json
    from plugin.config import Settings
    from plugin.reader import Reader

    settings = Settings.from_env(top_k=args.top_k, retrieval_mode=args.mode, reader_precision=args.precision,
                                 answer_threshold=args.threshold)
    assistant = Assistant(_open_collection(args), reader=Reader(args.reader, precision=args.precision),
                          settings=settings)
    if args.questions:
        questions = [q for q in Path(args.questions).read_text(encoding="utf-8").splitlines() if q.strip()]
    elif args.question:
        questions = [args.question]
    else:
        raise ValueError("give a question, or --questions FILE")
    status = 0
    for question in questions:
        try:
            response = assistant.respond(question)
        except SpanqaError as exc:
            print(f"spanqa ask: error: {exc}", file=sys.stderr)
            status = 2
            continue
        if args.json:
            _print_json(response_to_json(response))
            continue
        intent = response.intent
        print(f"[{intent.label} {intent.confidence:.2f}] {question}")
        print(f"  {response.reply}")
        best = response.best
        if best is not None:
            print(f"  source: {best.source}  page {best.page}  chars {best.document_start}-{best.document_end}")
        t = response.timings
        print("  timings: " + "  ".join(f"{k[:-3]} {v:.0f} ms" for k, v in t.items() if k.endswith("_ms")))
    return status


@command("ui")
def _ui(args) -> int:
    import math
    import subprocess

    from plugin.config import PROJECT_ROOT, Settings

    app = PROJECT_ROOT / "ui" / "app.py"
    print(f"spanqa chat UI: http://localhost:{args.port}", flush=True)
    # The uploader refuses what ingestion would refuse anyway, before the bytes cross the network.
    upload_mb = max(1, math.ceil(Settings.from_env().max_file_mb))
    command_line = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
                    "--server.headless", "true", "--browser.gatherUsageStats", "false",
                    "--client.toolbarMode", "minimal", "--server.maxUploadSize", str(upload_mb)]
    return subprocess.call(command_line)


# --- intent router -------------------------------------------------------------------------------------

@command("train-intent")
def _train_intent(args) -> int:
    from plugin.intent_training import IntentTrainConfig, train_intent_classifier

    cfg = IntentTrainConfig(data=args.data, out=args.out, val=args.val, base=args.base, epochs=args.epochs,
                            batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    summary = train_intent_classifier(cfg)
    from plugin.intent_eval import IntentReport

    print(IntentReport(**summary["validation"]).to_text())
    print(f"\ntemperature {summary['temperature']:.3f}, threshold {summary['threshold']:.3f}, "
          f"{summary['epochs_run']} epochs, {summary['seconds']:.0f}s → {args.out}")
    return 0


@command("eval-intent")
def _eval_intent(args) -> int:
    from plugin.intent_eval import evaluate_intents, write_plots
    from plugin.intent_training import load_labelled
    from plugin.router import IntentClassifier, softmax

    classifier = IntentClassifier(args.model)
    texts, labels = load_labelled(args.data)
    logits = classifier.logits(texts)
    report = evaluate_intents(classifier, texts, labels, uncalibrated_logits=logits)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.to_text())
    if args.plots:
        from plugin.intent_eval import reliability_bins

        raw = softmax(logits, 1.0)
        correct = raw.argmax(1) == [classifier.labels.index(lab) if lab in classifier.labels else -1 for lab in labels]
        paths = write_plots(report, args.plots, reliability_bins(raw.max(1), correct))
        if not args.json:
            print("plots: " + ", ".join(str(p) for p in paths))
    return 0


@command("classify")
def _classify(args) -> int:
    from plugin.defaults import ensure_default_router
    from plugin.router import IntentClassifier

    intent = IntentClassifier(args.model or ensure_default_router()).classify(args.text)
    if args.json:
        data = intent.to_dict()
        _print_json({k: data[k] for k in ("label", "confidence", "out_of_scope", "alternatives")})
    else:
        flag = "  (out of scope)" if intent.out_of_scope else ""
        print(f"{intent.label}  {intent.confidence:.3f}{flag}")
        for label, confidence in intent.alternatives:
            print(f"  {label}  {confidence:.3f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spanqa", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def collection_args(p, embedder: bool = True):
        p.add_argument("--collection", help="collection directory (default: the bundled default collection)")
        if embedder:
            p.add_argument("--embedder", help="embedding model id or path (default: bundled all-MiniLM-L6-v2)")

    p = sub.add_parser("ingest", help="add files and folders to a collection")
    p.add_argument("paths", nargs="+")
    collection_args(p)
    p.add_argument("--include", action="append", help="glob of files to take (repeatable)")
    p.add_argument("--exclude", action="append", help="glob of files to leave out (repeatable)")
    p.add_argument("--chunk-tokens", type=int, default=192, help="passage size in tokens (new collections)")
    p.add_argument("--overlap-tokens", type=int, default=32, help="passage overlap in tokens (new collections)")
    p.add_argument("--max-file-mb", type=float, help="skip larger files (default 50, or SPANQA_MAX_FILE_MB)")
    p.add_argument("--max-passages-per-document", type=int,
                   help="refuse documents yielding more passages (default 20000, or SPANQA_MAX_PASSAGES_PER_DOCUMENT)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("search", help="print the best passages for a query")
    p.add_argument("query")
    collection_args(p)
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="hybrid")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("docs", help="list or remove the documents of a collection")
    p.add_argument("action", choices=["list", "remove"])
    p.add_argument("document", nargs="?", help="document id or source (for remove)")
    collection_args(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("reindex", help="rebuild a collection's indexes (or re-embed it for another model)")
    collection_args(p)

    p = sub.add_parser("ask", help="answer questions from a collection (routed, retrieved, extracted, cited)")
    p.add_argument("question", nargs="?")
    p.add_argument("--questions", help="a file with one question per line")
    collection_args(p)
    p.add_argument("--reader", help="reader model directory or HF id (default: the shipped reader)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--threshold", type=float, default=0.3, help="answer confidence below which spanqa abstains")
    p.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="hybrid")
    p.add_argument("--precision", choices=["fp32", "int8", "bf16"], default="fp32")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("ui", help="start the Streamlit chat UI")
    p.add_argument("--port", type=int, default=8501)

    p = sub.add_parser("train-reader", help="fine-tune an extractive QA reader on SQuAD-format data")
    p.add_argument("--train", required=True, help="SQuAD-format JSON (v1.1 or v2.0 style)")
    p.add_argument("--dev", help="SQuAD-format JSON for checkpoint selection and calibration")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--base", help="HF id or path of the encoder to start from (default: bundled MiniLM)")
    p.add_argument("--max-seq-len", type=int, default=256)
    p.add_argument("--stride", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-hours", type=float, help="time budget; the learning-rate decay ends inside it")
    p.add_argument("--negative-ratio", type=float, default=0.25, help="unanswerable negatives per question")
    p.add_argument("--dev-limit", type=int, default=1000, help="dev questions used for selection")
    p.add_argument("--eval-minutes", type=float, default=20.0)
    p.add_argument("--checkpoint-minutes", type=float, default=15.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--limit", type=int, help="train on the first N questions only")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint/state.pt")

    p = sub.add_parser("eval-reader", help="EM/F1 of a reader on gold passages of a SQuAD-format file")
    p.add_argument("data")
    p.add_argument("--model", help="model directory or HF id (default: the shipped reader)")
    p.add_argument("--max-seq-len", type=int, default=384)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--precision", choices=["fp32", "int8", "bf16"], default="fp32")
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("train-intent", help="fine-tune an intent classifier on text,label data (CSV or JSONL)")
    p.add_argument("data")
    p.add_argument("--out", required=True)
    p.add_argument("--val", help="validation file (default: a stratified split of DATA)")
    p.add_argument("--base", help="HF id or path of the encoder (default: bundled MiniLM)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=13)

    p = sub.add_parser("eval-intent", help="evaluation report of an intent model on labelled data")
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("--plots", help="directory for reliability.png, confusion.png and report.json")
    p.add_argument("--json", action="store_true")

    sub.add_parser("bench", add_help=False,
                   help="spanqa vs Haystack vs a baseline on SQuAD-format data (spanqa bench --help)")

    p = sub.add_parser("classify", help="classify one message with the intent router")
    p.add_argument("text")
    p.add_argument("--model", help="intent model directory (default: the default router)")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    # Model-loading reports and hub progress bars are noise on a terminal; errors still show.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the benchmark has its own options (bench/run.py); pass them through untouched
        from bench.run import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command not in ("train-reader", "train-intent"):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every command are noise
    try:
        return COMMANDS[args.command](args)
    except (SpanqaError, CollectionError, FileNotFoundError, ValueError) as exc:
        print(f"spanqa {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The `spanqa` command line: ingest, search, ask, train, evaluate and benchmark."""

from __future__ import annotations

import argparse
import json
import sys

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
    from retriever import ChunkingSettings, Collection, Embedder

    path = resolve_collection_path(args.collection)
    chunking = ChunkingSettings(max_tokens=args.chunk_tokens, overlap_tokens=args.overlap_tokens)
    collection = Collection(path, embedder=Embedder(args.embedder) if args.embedder else None, chunking=chunking,
                            max_file_bytes=int(args.max_file_mb * 2**20))
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
    p.add_argument("--max-file-mb", type=float, default=50.0, help="skip larger files")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (SpanqaError, CollectionError, FileNotFoundError, ValueError) as exc:
        print(f"spanqa {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The `spanqa` command line: ingest, search, ask, train, evaluate and benchmark.

Options that tune answering default to "not given": then the setting comes from its SPANQA_* environment variable,
or from its default in spanqa.settings, the one home of every default and allowed value.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spanqa import __version__
from spanqa.errors import InputError, SpanqaError
from spanqa.settings import (
    DEVICES,
    PACKAGE_ROOT,
    PRECISIONS,
    READER_DOMAINS,
    SEARCH_MODES,
    ServerSettings,
    Settings,
    default_collection_path,
    default_technical_reader_path,
)

COMMANDS: dict[str, callable] = {}


def command(name: str):
    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=None))


# --- collection -------------------------------------------------------------------------------------

def _open_collection(args, settings: Settings, create: bool = False):
    from spanqa.plugin.engine.collections import open_collection

    return open_collection(args.collection, embedder=getattr(args, "embedder", None), create=create,
                           settings=settings)


def _service(args, settings: Settings | None = None, **engine):
    """The service layer over an engine on the command's collection; settings from the environment, once."""
    from spanqa.plugin.doors.service import Service
    from spanqa.plugin.engine.assistant import Assistant

    settings = settings or Settings.from_env()
    return Service(Assistant(_open_collection(args, settings), settings=settings, **engine))


def _quiet_parsers() -> None:
    """Parser libraries (pypdf) log warnings about malformed files: send them to stderr as one line each, never
    to stdout, where --json output goes."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("spanqa: %(name)s: %(message)s"))
    for name in ("pypdf",):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False


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
    from spanqa.plugin.engine.collections import open_collection, resolve_location
    from spanqa.retriever.chunking import ChunkingSettings
    from spanqa.retriever.loaders import load_paths

    from spanqa.errors import CollectionError

    _quiet_parsers()
    settings = Settings.from_env(max_file_mb=args.max_file_mb, max_passages_per_document=args.max_passages_per_document,
                                 device=args.device, ray_workers=args.ray_workers)
    if args.ray is not None:
        return _ingest_on_ray(args, settings)
    limits = settings.collection_limits()
    loaded = load_paths(args.paths, args.include, args.exclude, limits.max_file_bytes)
    for skipped in loaded.skipped:
        print(f"spanqa ingest: skipped {skipped.source}: {skipped.reason}", file=sys.stderr)
    chunking = ChunkingSettings(max_tokens=args.chunk_tokens, overlap_tokens=args.overlap_tokens)
    location = resolve_location(args.collection) or default_collection_path()
    try:  # a collection is created by its first document, never by a run that adds nothing
        collection = open_collection(location, embedder=args.embedder, create=bool(loaded.documents),
                                     settings=settings, chunking=chunking)
    except CollectionError:
        if loaded.documents:
            raise
        print(f"spanqa ingest: nothing to add; no collection created at {location}", file=sys.stderr)
        return 1
    report = collection.add_documents(loaded, progress=None if args.json else _tqdm_progress())
    for skipped in report.skipped[len(loaded.skipped):]:
        print(f"spanqa ingest: skipped {skipped.source}: {skipped.reason}", file=sys.stderr)
    return _ingest_report(args, collection, report)


def _ingest_on_ray(args, settings: Settings) -> int:
    """`spanqa ingest --ray`: the files are listed here and read, chunked and embedded on the cluster; the skipped
    files and why are said at the end (they are known only once the workers have read them)."""
    from spanqa.plugin.engine.collections import open_collection, resolve_location
    from spanqa.retriever.chunking import ChunkingSettings
    from spanqa.retriever.distributed import import_ray
    from spanqa.retriever.loaders import list_files

    import_ray()  # a missing extra is said before a collection is created
    chunking = ChunkingSettings(max_tokens=args.chunk_tokens, overlap_tokens=args.overlap_tokens)
    location = resolve_location(args.collection) or default_collection_path()
    files, _ = list_files(args.paths, args.include, args.exclude)
    collection = open_collection(location, embedder=args.embedder, create=bool(files), settings=settings,
                                 chunking=chunking)
    report = collection.ingest(args.paths, args.include, args.exclude, ray=args.ray, settings=settings,
                               progress=None if args.json else _tqdm_progress())
    for skipped in report.skipped:
        print(f"spanqa ingest: skipped {skipped.source}: {skipped.reason}", file=sys.stderr)
    return _ingest_report(args, collection, report)


def _ingest_report(args, collection, report) -> int:
    if args.json:
        from spanqa.plugin.engine.response import SCHEMA_VERSION

        _print_json({"schema": SCHEMA_VERSION, "collection": collection.location, **report.to_dict()})
    else:
        print(f"{collection.location}: {report.summary()}")
    return 0 if report.added or report.updated or report.unchanged or not report.skipped else 1


@command("search")
def _search(args) -> int:
    service = _service(args)
    result = service.search(_read_text_arg(args.query), k=args.k, mode=args.mode)
    if args.json:
        _print_json(result.data)
        return 0
    hits = result.value
    if not hits:
        print("No passages found." if len(service.engine.collection) else "The collection is empty: add documents "
              "with `spanqa ingest PATH`.")
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
    service = _service(args)
    location = service.engine.collection.location
    if args.action == "remove":
        if not args.document:
            raise InputError("give the document id or source to remove")
        service.remove(args.document)
        print(f"Removed {args.document}")
        return 0
    result = service.call("documents")
    if args.json:
        _print_json(result.data)
        return 0
    for d in result.value:
        print(f"{d.id}  {d.passages:5d} passages  {d.characters:8d} chars  {d.source}")
    print(f"{len(result.value)} documents in {location}")
    return 0


@command("reindex")
def _reindex(args) -> int:
    from spanqa.plugin.engine.collections import reindex_collection

    report = reindex_collection(args.collection, embedder=args.embedder)
    print(report)
    return 0


@command("migrate")
def _migrate(args) -> int:
    from spanqa.plugin.engine.collections import resolve_location
    from spanqa.retriever.postgres import PostgresLocation, is_postgres_location, migrate

    location = resolve_location(args.collection)
    if not is_postgres_location(str(location)):
        print(f"spanqa migrate: {location or 'the default collection'} is a local collection; local collections "
              "upgrade themselves when opened. migrate takes a PostgreSQL URL.", file=sys.stderr)
        return 2
    found, now = migrate(str(location))
    shown = PostgresLocation(str(location)).shown
    print(f"{shown}: schema version {found} → {now}" if found != now else
          f"{shown}: schema already at version {now}; nothing to do")
    return 0


# --- reader -------------------------------------------------------------------------------------------

@command("train-reader")
def _train_reader(args) -> int:
    from spanqa.plugin.lab.reader_training import ReaderTrainConfig, train_reader

    cfg = ReaderTrainConfig(
        train=args.train, dev=args.dev, out=args.out, base=args.base, max_seq_len=args.max_seq_len,
        stride=args.stride, batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, max_hours=args.max_hours,
        negative_ratio=args.negative_ratio, objective=args.objective,
        negatives_per_question=args.negatives_per_question, dev_limit=args.dev_limit, eval_minutes=args.eval_minutes,
        checkpoint_minutes=args.checkpoint_minutes, seed=args.seed, limit=args.limit,
    )
    summary = train_reader(cfg, resume=args.resume)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0


@command("eval-reader")
def _eval_reader(args) -> int:
    from spanqa.plugin.engine.reader import Reader
    from spanqa.plugin.engine.squad import load_squad
    from spanqa.plugin.lab.reader_eval import evaluate_reader

    settings = Settings.from_env(reader_precision=args.precision)
    reader = Reader(args.model, max_seq_len=args.max_seq_len, stride=args.stride,
                    precision=settings.reader_precision, device=settings.device)
    examples = load_squad(args.data, limit=args.limit)
    scores = evaluate_reader(reader, examples, progress=not args.json)
    if args.json:
        _print_json(scores.to_dict())
    else:
        print(f"{args.data}: EM {scores.exact_match:.2f}  F1 {scores.f1:.2f}  ({scores.count} questions)")
    return 0


def _fit_ranker_model(files: list[str], c: float, args, reader):
    """One logistic model of the answer ranker from `files`' candidates, and its report."""
    from spanqa.plugin.lab.ranker_training import (
        Candidates,
        collect_candidates,
        cross_validated_report,
        fit_ranker,
        ranking_report,
    )

    parts = [collect_candidates(Path(path), limit=args.limit, until=args.until, holdout=args.holdout, reader=reader)
             for path in files]
    names = [Path(path).name for path in files]
    model = fit_ranker(Candidates.concatenate(parts), c=c, trained_on=", ".join(names))
    report = {"report (in-sample)": {name: {"margin order": ranking_report(part, None),
                                            "ranker": ranking_report(part, model)}
                                     for name, part in zip(names, parts, strict=True)}}
    if args.cross_validate:
        report["report (5-fold cross-validated)"] = cross_validated_report(parts, names, c=c)
    return model, report


@command("train-ranker")
def _train_ranker(args) -> int:
    from spanqa.plugin.engine.answer_type import AnswerTypes
    from spanqa.plugin.engine.ranking import AnswerRanker
    from spanqa.plugin.engine.reader import Reader
    from spanqa.plugin.lab.ranker_training import carried_over, fit_reader_calibration

    if bool(args.data) == bool(args.prose_from):
        raise InputError("give the prose model's data (--data) or an earlier ranker to carry it over from "
                         "(--prose-from), one of the two")
    settings = Settings.from_env()
    precision, device = settings.reader_precision, settings.device
    reader = Reader(args.reader, precision=precision, device=device) if args.reader else None
    summary: dict = {"out": args.out}
    if args.data:
        prose, summary["prose"] = _fit_ranker_model(args.data, args.c, args, reader)
    else:
        prose, summary["prose"] = carried_over(Path(args.prose_from)), f"carried over from {args.prose_from}"
    technical = None
    if args.technical_data:
        technical, summary["technical"] = _fit_ranker_model(args.technical_data, args.technical_c, args, reader)
    ranker = AnswerRanker(prose, technical, AnswerTypes.load())
    if args.technical_calibration:
        calibration, pairs = fit_reader_calibration(ranker, Path(args.technical_calibration),
                                                    Reader(default_technical_reader_path(), precision=precision,
                                                           device=device))
        ranker.reader_calibration["technical"] = calibration
        summary["technical reader calibration"] = {**calibration.to_json(), "right": sum(r for _, r in pairs)}
    ranker.save(Path(args.out))
    print(json.dumps(summary, indent=1))
    return 0


@command("calibrate")
def _calibrate(args) -> int:
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.plugin.engine.calibration import calibrate_collection, load_labels, routing_corrections
    from spanqa.plugin.engine.defaults import add_routing_feedback
    from spanqa.plugin.lab.router_training import refit_default_router

    settings = Settings.from_env()
    assistant = Assistant(_open_collection(args, settings), settings=settings)
    if args.routing:
        added = add_routing_feedback(routing_corrections(assistant.collection))
        refit_default_router()
        print(f"routing: {added} new document question(s) from thumbs-down on replies; the router is refitted with "
              "them", file=sys.stderr)
    if args.routing and not args.labels:
        return 0
    labels = load_labels(args.labels) if args.labels else None
    report = calibrate_collection(assistant, labels, use_feedback=not args.no_feedback)
    if args.json:
        _print_json(report.to_json())
    else:
        print(f"calibration a={report.calibration.a:.3f} b={report.calibration.b:.3f} from {report.labelled} labelled "
              f"questions and {report.feedback} feedback ratings; ECE on them {report.ece_before:.3f} → "
              f"{report.ece_after:.3f}; stored with {assistant.collection.location}")
    return 0


# --- servers --------------------------------------------------------------------------------------------

@command("mcp")
def _mcp(args) -> int:
    import anyio
    from spanqa.plugin.doors.mcp_server import serve_stdio

    service = _service(args)
    service.engine.warm_up()  # before the client's first call, and any first-use notice goes to stderr
    print(f"spanqa mcp: serving {service.engine.collection.location} over stdio", file=sys.stderr, flush=True)
    anyio.run(serve_stdio, service)
    return 0


@command("serve")
def _serve(args) -> int:
    import uvicorn
    from spanqa.plugin.doors.http_server import create_app

    settings = ServerSettings.from_env(host=args.host, port=args.port, api_key=args.api_key,
                                       cors_origins=args.cors_origins, batch_window_ms=args.batch_window_ms,
                                       max_batch=args.max_batch)
    from spanqa.retriever.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before uvicorn starts its request threads (retriever/memory.py says why)
    app = create_app(_service(args).engine, settings)
    print(f"spanqa serve: http://{settings.host}:{settings.port} (MCP at /mcp, OpenAI-compatible at /v1, API "
          f"docs at /docs){'; API key required' if settings.api_key else ''}", file=sys.stderr, flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return 0


# --- assistant ------------------------------------------------------------------------------------------

def _read_text_arg(value: str) -> str:
    """`-` means: read it from standard input."""
    return sys.stdin.read().strip() if value == "-" else value


def _questions(args) -> list[str]:
    if args.questions == "-":
        return [line.strip() for line in sys.stdin if line.strip()]
    if args.questions:
        try:
            text = Path(args.questions).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"Cannot read the questions file {args.questions}: {exc}") from exc
        return [line.strip() for line in text.splitlines() if line.strip()]
    if args.question == "-":
        return [line.strip() for line in sys.stdin if line.strip()]
    if args.question is not None:  # an empty one is refused by the service, as at every door
        return [args.question]
    raise InputError("give a question, `-` to read questions from standard input, or --questions FILE")


@command("ask")
def _ask(args) -> int:
    from spanqa.plugin.engine.reader import Reader

    settings = Settings.from_env(reader_precision=args.precision, reader_domain=args.reader_domain)
    questions = _questions(args)
    # A reader named here reads every question; without one, the shipped general and technical readers share them.
    reader = Reader(args.reader, precision=settings.reader_precision, device=settings.device) if args.reader else None
    service = _service(args, settings, reader=reader)
    options = {"top_k": args.top_k, "min_score": args.threshold, "mode": args.mode}
    status = 0
    for batch in _batches(questions, ASK_BATCH):
        valid = []
        for question in batch:  # a bad line is reported and skipped; the others are still answered
            try:
                valid.append(service.parse("ask", {"question": question, **options}).question)
            except SpanqaError as exc:
                print(f"spanqa ask: error: {exc}", file=sys.stderr)
                status = 2
        try:
            results = service.ask_many(valid, **options) if valid else []
        except SpanqaError as exc:
            print(f"spanqa ask: error: {exc}", file=sys.stderr)
            status = 2
            continue
        for result in results:
            _print_response(result.value, args.json)
    return status



@command("chat")
def _chat(args) -> int:
    from spanqa.plugin.doors.chat import run_chat

    from spanqa.settings import cache_dir

    service = _service(args)
    service.engine.warm_up()  # the first question is not the one that waits for the models
    options = {"top_k": args.top_k, "min_score": args.threshold, "mode": args.mode}
    service.parse("ask", {"question": "options check", **options})  # a bad option is refused before the prompt
    return run_chat(service, cache_dir() / "chat-history", options)


# Questions from a file are answered this many at a time: one router pass, one embedding call and shared reader
# batches for all of them (Assistant.respond_many).
ASK_BATCH = 16


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _print_response(response, as_json: bool) -> None:
    from spanqa.plugin.engine.response import citation

    if as_json:
        _print_json(response.to_json())
        return
    intent = response.intent
    print(f"[{intent.label} {intent.confidence:.2f}] {response.message}")
    print(f"  {response.reply}")
    best = response.best
    if best is not None:
        print(f"  source: {best.source}  ({citation(best.source, best.page)})  chars {best.document_start}-"
              f"{best.document_end}")
    t = response.timings
    print("  timings: " + "  ".join(f"{k[:-3]} {v:.0f} ms" for k, v in t.items() if k.endswith("_ms")))


@command("setup")
def _setup(args) -> int:
    from spanqa.plugin.engine.collections import ensure_default_collection
    from spanqa.plugin.engine.defaults import ensure_default_router
    from spanqa.plugin.lab.router_training import refit_default_router

    refit_default_router(progress=True)  # with the user's routing corrections, if there are any
    print(f"default router: {ensure_default_router()}")
    collection = ensure_default_collection(settings=Settings.from_env())
    print(f"default collection: {collection.location} ({len(collection.documents())} documents)")
    return 0


@command("ui")
def _ui(args) -> int:
    import math
    import os

    import spanqa.ui

    from spanqa.settings import Settings

    app = Path(spanqa.ui.__file__).resolve().parent / "app.py"
    print(f"spanqa chat UI: http://localhost:{args.port}", flush=True)
    # The uploader refuses what ingestion would refuse anyway, before the bytes cross the network.
    upload_mb = max(1, math.ceil(Settings.from_env().max_file_mb))
    command_line = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
                    "--server.headless", "true", "--browser.gatherUsageStats", "false",
                    "--client.toolbarMode", "minimal", "--server.maxUploadSize", str(upload_mb)]
    if args.collection:
        os.environ["SPANQA_COLLECTION"] = args.collection  # the UI reads it like every other door
    # Become Streamlit rather than wait for it: a supervisor's SIGTERM to `spanqa ui` then stops the server
    # itself instead of orphaning it.
    sys.stdout.flush()
    os.execv(sys.executable, command_line)


# --- intent router -------------------------------------------------------------------------------------

@command("train-intent")
def _train_intent(args) -> int:
    from spanqa.plugin.lab.router_training import IntentTrainConfig, fit_router_head, train_intent_classifier

    cfg = IntentTrainConfig(data=args.data, out=args.out, val=args.val, val_fraction=args.val_fraction,
                            base=args.base, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    summary = fit_router_head(cfg) if args.head else train_intent_classifier(cfg)
    from spanqa.plugin.lab.router_eval import IntentReport

    print(IntentReport(**summary["validation"]).to_text())
    how = "a head over the embedder" if args.head else f"{summary['epochs_run']} epochs"
    print(f"\ntemperature {summary['temperature']:.3f}, threshold {summary['threshold']:.3f}, "
          f"{how}, {summary['seconds']:.0f}s → {args.out}")
    return 0


@command("eval-intent")
def _eval_intent(args) -> int:
    from spanqa.plugin.engine.router import load_router, softmax
    from spanqa.plugin.lab.router_eval import evaluate_intents, write_plots
    from spanqa.plugin.lab.router_training import load_labelled

    classifier = load_router(args.model, precision=Settings.from_env().router_precision)
    texts, labels = load_labelled(args.data)
    logits = classifier.logits(texts)
    report = evaluate_intents(classifier, texts, labels, uncalibrated_logits=logits)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.to_text())
    if args.plots:
        from spanqa.plugin.lab.router_eval import reliability_bins

        raw = softmax(logits, 1.0)
        correct = raw.argmax(1) == [classifier.labels.index(lab) if lab in classifier.labels else -1 for lab in labels]
        paths = write_plots(report, args.plots, reliability_bins(raw.max(1), correct))
        if not args.json:
            print("plots: " + ", ".join(str(p) for p in paths))
    return 0


@command("classify")
def _classify(args) -> int:
    from spanqa.plugin.doors.service import Service
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.plugin.engine.router import load_router

    settings = Settings.from_env()
    # The engine opens its collection on first use: classifying never does.
    router = load_router(args.model, precision=settings.router_precision) if args.model else None
    result = Service(Assistant(settings=settings, router=router)).classify(_read_text_arg(args.text))
    intent = result.value
    if args.json:
        _print_json(result.data)
    else:
        flag = "  (out of scope)" if intent.out_of_scope else ""
        print(f"{intent.label}  {intent.confidence:.3f}{flag}")
        for label, confidence in intent.alternatives:
            print(f"  {label}  {confidence:.3f}")
    return 0


def _env_default(field: str) -> str:
    """Help text for an option that defaults to a setting: its default and its environment variable."""
    return f"default: {getattr(Settings, field)}, or ${'SPANQA_' + field.upper()}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spanqa", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"spanqa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shown = argparse.ArgumentDefaultsHelpFormatter

    def add(name: str, summary: str):
        return sub.add_parser(name, help=summary, description=summary, formatter_class=shown)

    def mode_option(p):
        # Checked by the service, not argparse, so that a bad mode is refused in the words every door uses.
        p.add_argument("--mode", metavar="{" + ",".join(SEARCH_MODES) + "}",
                       help=f"retrieval mode ({_env_default('retrieval_mode')})")

    def collection_args(p, embedder: bool = True):
        p.add_argument("--collection", help="collection directory, or PostgreSQL URL "
                                            "postgresql://user@host/db?collection=name (default: $SPANQA_COLLECTION, "
                                            "else the bundled default collection)")
        if embedder:
            p.add_argument("--embedder", help="embedding model id or path (default: bundled all-MiniLM-L6-v2, or "
                                              "$SPANQA_EMBEDDER)")

    from spanqa.plugin.lab.reader_training import OBJECTIVES
    from spanqa.plugin.lab.reader_training import ReaderTrainConfig as Training
    from spanqa.plugin.lab.router_training import IntentTrainConfig as Intents
    from spanqa.retriever.chunking import ChunkingSettings as Chunking

    p = add("ingest", "Add files and folders to a collection (created on the first document added).")
    p.add_argument("paths", nargs="+", help="files and folders to read")
    collection_args(p)
    p.add_argument("--include", action="append", help="glob of files to take (repeatable)")
    p.add_argument("--exclude", action="append", help="glob of files to leave out (repeatable)")
    p.add_argument("--chunk-tokens", type=int, default=Chunking.max_tokens, help="passage size in tokens (new "
                                                                                  "collections)")
    p.add_argument("--overlap-tokens", type=int, default=Chunking.overlap_tokens,
                   help="passage overlap in tokens (new collections)")
    p.add_argument("--max-file-mb", type=float, help=f"skip larger files ({_env_default('max_file_mb')})")
    p.add_argument("--max-passages-per-document", type=int,
                   help=f"refuse documents yielding more passages ({_env_default('max_passages_per_document')})")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="read, chunk and embed on a Ray cluster (pip install 'spanqa[ray]'): ADDRESS is host:port, "
                        "ray://host:port or auto; without it, a Ray started on this machine for the run")
    p.add_argument("--ray-workers", type=int, help=f"embedding actors on the cluster ({_env_default('ray_workers')}; "
                                                   "0 = one per GPU, else one per CPU)")
    p.add_argument("--device", choices=DEVICES, help=f"where the embedder runs ({_env_default('device')})")
    p.add_argument("--json", action="store_true", help="print the ingest report as JSON")

    p = add("search", "Print the best passages for a query, with their scores and sources.")
    p.add_argument("query", help="the query; - reads it from standard input")
    collection_args(p)
    p.add_argument("-k", type=int, help=f"passages to return ({_env_default('top_k')})")
    mode_option(p)
    p.add_argument("--json", action="store_true", help="print the versioned response JSON (docs/response.md)")

    p = add("docs", "List or remove the documents of a collection.")
    p.add_argument("action", choices=["list", "remove"], help="what to do")
    p.add_argument("document", nargs="?", help="document id or source (for remove)")
    collection_args(p)
    p.add_argument("--json", action="store_true", help="print the list as versioned JSON")

    p = add("reindex", "Rebuild a collection's indexes, or re-embed it for another embedding model.")
    collection_args(p)

    p = add("migrate", "Upgrade a PostgreSQL collection's schema to this spanqa's version, in one transaction.")
    collection_args(p, embedder=False)

    p = add("ask", "Answer questions from a collection: routed, retrieved, extracted and cited.")
    p.add_argument("question", nargs="?", help="the question; - reads one question per line from standard input")
    p.add_argument("--questions", help="a file with one question per line (- for standard input)")
    collection_args(p)
    p.add_argument("--reader", help="reader model directory or HF id that reads every question (default: the "
                                    "shipped general and technical readers, or $SPANQA_READER and "
                                    "$SPANQA_TECHNICAL_READER)")
    p.add_argument("--reader-domain", choices=READER_DOMAINS,
                   help=f"which shipped reader reads a question ({_env_default('reader_domain')}: the technical one "
                        "when its passages read like technical documentation)")
    p.add_argument("--top-k", type=int, help=f"passages to read ({_env_default('top_k')})")
    p.add_argument("--threshold", type=float,
                   help=f"answer confidence below which spanqa abstains ({_env_default('answer_threshold')})")
    mode_option(p)
    p.add_argument("--precision", choices=PRECISIONS, help=f"reader precision ({_env_default('reader_precision')})")
    p.add_argument("--json", action="store_true", help="print one versioned response JSON per question")

    p = add("chat", "A conversation in the terminal: follow-up questions are read in the light of the chat; "
                    "/sources, /reset, /quit (or Ctrl-D).")
    collection_args(p)
    p.add_argument("--top-k", type=int, help=f"passages to read ({_env_default('top_k')})")
    p.add_argument("--threshold", type=float,
                   help=f"answer confidence below which spanqa abstains ({_env_default('answer_threshold')})")
    mode_option(p)

    p = add("ui", "Start the Streamlit chat UI.")
    p.add_argument("--port", type=int, default=8501, help="port to serve on")
    p.add_argument("--collection", help="also offer this collection (a directory or a PostgreSQL URL) and open it "
                                        "first (default: $SPANQA_COLLECTION)")

    p = add("setup", "Build what spanqa needs before its first answer: the default router and collection.")

    p = add("mcp", "Serve the tools and documents over MCP on stdio (for Claude Desktop, Cursor, VS Code, …).")
    collection_args(p)

    p = add("serve", "Serve MCP (/mcp), OpenAI-compatible chat (/v1/chat/completions) and REST on one port.")
    collection_args(p)
    server_default = lambda name: f"default: {getattr(ServerSettings, name)}, or $SPANQA_{name.upper()}"  # noqa: E731
    p.add_argument("--host", help=f"address to listen on ({server_default('host')}); any other than loopback "
                                  "needs an API key")
    p.add_argument("--port", type=int, help=f"port ({server_default('port')})")
    p.add_argument("--api-key", help="bearer token every request must carry (default: none on loopback, or "
                                     "$SPANQA_API_KEY)")
    p.add_argument("--cors-origins", help="comma-separated origins allowed by CORS (default: CORS off, or "
                                          "$SPANQA_CORS_ORIGINS)")
    p.add_argument("--batch-window-ms", type=float,
                   help=f"how long a question waits to share a batch ({server_default('batch_window_ms')})")
    p.add_argument("--max-batch", type=int, help="concurrent questions answered as one batch; 1 turns "
                                                 f"micro-batching off ({server_default('max_batch')})")

    p = add("train-reader", "Fine-tune an extractive QA reader on SQuAD-format data.")
    p.add_argument("--train", required=True, help="SQuAD-format JSON (v1.1 or v2.0 style, or .json.gz)")
    p.add_argument("--dev", help="SQuAD-format JSON for checkpoint selection and calibration")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--base", help="HF id or path of the encoder to start from (default: bundled MiniLM)")
    p.add_argument("--max-seq-len", type=int, default=Training.max_seq_len, help="window length in tokens")
    p.add_argument("--stride", type=int, default=Training.stride, help="window overlap in tokens")
    p.add_argument("--batch-size", type=int, default=Training.batch_size, help="windows per step")
    p.add_argument("--lr", type=float, default=Training.lr, help="peak learning rate")
    p.add_argument("--epochs", type=float, default=Training.epochs, help="passes over the training data")
    p.add_argument("--max-hours", type=float, help="time budget; the learning-rate decay ends inside it")
    p.add_argument("--negative-ratio", type=float, default=Training.negative_ratio,
                   help="unanswerable questions per question")
    p.add_argument("--objective", choices=OBJECTIVES, default=Training.objective,
                   help="normalise over all passages of a question, or per window")
    p.add_argument("--negatives-per-question", type=int, default=Training.negatives_per_question,
                   help="hard negative passages per question")
    p.add_argument("--dev-limit", type=int, default=Training.dev_limit, help="dev questions used for selection")
    p.add_argument("--eval-minutes", type=float, default=Training.eval_minutes, help="minutes between dev evaluations")
    p.add_argument("--checkpoint-minutes", type=float, default=Training.checkpoint_minutes,
                   help="minutes between checkpoints")
    p.add_argument("--seed", type=int, default=Training.seed, help="random seed")
    p.add_argument("--limit", type=int, help="train on the first N questions only")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint/state.pt")

    p = add("eval-reader", "EM/F1 of a reader on the gold passages of a SQuAD-format file.")
    p.add_argument("data", help="SQuAD-format JSON")
    p.add_argument("--model", help="model directory or HF id (default: the shipped reader)")
    p.add_argument("--max-seq-len", type=int, default=384, help="window length in tokens")
    p.add_argument("--stride", type=int, default=128, help="window overlap in tokens")
    p.add_argument("--precision", choices=PRECISIONS, help=f"reader precision ({_env_default('reader_precision')})")
    p.add_argument("--limit", type=int, help="the first N questions only")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")

    p = add("train-ranker", "Learn the answer ranker from SQuAD-format development data.")
    p.add_argument("--data", action="append", help="SQuAD-format JSON for the prose model (repeatable)")
    p.add_argument("--prose-from", metavar="RANKER.json",
                   help="instead of --data: carry the prose model over from an earlier ranker file")
    p.add_argument("--technical-data", action="append",
                   help="SQuAD-format JSON of technical documentation for the technical model (repeatable; "
                        "without it the prose model ranks every text)")
    p.add_argument("--technical-calibration", metavar="FILE",
                   help="SQuAD-format technical questions the technical reader was not trained on: fit its own "
                        "calibration of the ranker's scores on them")
    p.add_argument("--out", default=str(PACKAGE_ROOT / "models" / "ranker.json"), help="ranker JSON to write")
    p.add_argument("--reader", help="reader model directory (default: the shipped general reader)")
    p.add_argument("--limit", type=int, help="questions sampled per file")
    p.add_argument("--until", type=int, help="use only each file's first N questions")
    p.add_argument("--holdout", type=float, default=0.15, help="fraction of contexts left out (unanswerable)")
    p.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength of the prose model")
    p.add_argument("--technical-c", type=float, default=0.1,
                   help="inverse regularisation strength of the technical model (0.1: the best top-1 F1 of 0.1, "
                        "0.3 and 1, cross-validated on the technical training questions)")
    p.add_argument("--cross-validate", action="store_true",
                   help="also report each file's questions ranked by a model fitted without them (5 folds)")

    p = add("calibrate", "Refit a collection's answer calibration from labelled questions and feedback.")
    collection_args(p)
    p.add_argument("--labels", help="JSONL of {\"question\", \"answers\": [...]} (empty: unanswerable), or SQuAD JSON")
    p.add_argument("--no-feedback", action="store_true", help="ignore the collection's thumbs-up/down")
    p.add_argument("--routing", action="store_true",
                   help="also turn thumbs-down on non-document replies into routing data for the router")
    p.add_argument("--json", action="store_true", help="print the fit as JSON")

    p = add("train-intent", "Fine-tune an intent classifier on text,label data (CSV or JSONL), or fit a head over "
                            "the embedder (--head, as the shipped router is).")
    p.add_argument("data", help="labelled messages")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--head", action="store_true", help="fit a linear head over the embedder's vectors (seconds) "
                                                       "instead of fine-tuning an encoder (minutes)")
    p.add_argument("--val", help="validation file (default: a stratified split of DATA)")
    p.add_argument("--val-fraction", type=float, default=Intents.val_fraction, help="split held out without --val")
    p.add_argument("--base", help="HF id or path of the encoder (default: bundled MiniLM)")
    p.add_argument("--epochs", type=int, default=Intents.epochs, help="passes over the data")
    p.add_argument("--batch-size", type=int, default=Intents.batch_size, help="messages per step")
    p.add_argument("--lr", type=float, default=Intents.lr, help="peak learning rate")
    p.add_argument("--seed", type=int, default=Intents.seed, help="random seed")

    p = add("eval-intent", "Evaluation report of an intent model on labelled data.")
    p.add_argument("model", help="intent model directory")
    p.add_argument("data", help="labelled messages")
    p.add_argument("--plots", help="directory for reliability.png, confusion.png and report.json")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    sub.add_parser("bench", add_help=False, help="spanqa vs Haystack vs a baseline (from a source checkout; "
                                                 "spanqa bench --help)")

    p = add("classify", "Classify one message with the intent router.")
    p.add_argument("text", help="the message; - reads it from standard input")
    p.add_argument("--model", help="intent model directory (default: the default router)")
    p.add_argument("--json", action="store_true", help="print the intent as versioned JSON")
    return parser


def _bench(argv: list[str]) -> int:
    """The benchmark lives beside the source tree (bench/), never inside the product: run it as its own
    program with its own options, from a checkout."""
    import subprocess

    checkout = PACKAGE_ROOT.parent
    if not (checkout / "bench" / "__main__.py").is_file():
        print("spanqa bench: error: the benchmark ships with the source checkout, not the wheel; "
              "run `make bench` or `python -m bench` in a clone of spanqa", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "bench", *argv], cwd=checkout)


def main(argv: list[str] | None = None) -> int:
    import os

    # Model-loading reports and hub progress bars are noise on a terminal; errors still show.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command not in ("train-reader", "train-intent"):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every command are noise
    try:
        return COMMANDS[args.command](args)
    except SpanqaError as exc:
        print(f"spanqa {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

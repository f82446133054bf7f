"""The `spanqa` command line: ingest, search, ask, chat and serve; the lab's training and evaluation commands
(plugin/lab/cli.py) are offered beside them.

Options that tune answering default to "not given": then the setting comes from its SPANQA_* environment variable,
or from its default in spanqa.settings, the one home of every default and allowed value.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from spanqa.plugin.doors import administration
from spanqa.plugin.doors.administration import IngestJob, SyncJob
from spanqa.plugin.doors.service import Service
from spanqa.ui.render import span_view_text

from spanqa import __version__
from spanqa.commands import CommandTable, env_default
from spanqa.errors import InputError, SpanqaError
from spanqa.settings import DEVICES, PACKAGE_ROOT, PRECISIONS, READER_DOMAINS, SEARCH_MODES, ServerSettings, Settings

PRODUCT = CommandTable()
# Questions from a file are answered this many at a time: one router pass, one embedding call and shared reader
# batches for all of them.
ASK_BATCH = 16


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=None))


def _read_text_arg(value: str) -> str:
    """`-` means: read it from standard input."""
    return sys.stdin.read().strip() if value == "-" else value


def _collection_options(p: argparse.ArgumentParser, embedder: bool = True) -> None:
    p.add_argument("--collection", help="collection directory, or PostgreSQL URL "
                                        "postgresql://user@host/db?collection=name (default: $SPANQA_COLLECTION, "
                                        "else the bundled default collection)")
    if embedder:
        p.add_argument("--embedder", help="embedding model id or path (default: bundled all-MiniLM-L6-v2, or "
                                          "$SPANQA_EMBEDDER)")


def _mode_option(p: argparse.ArgumentParser) -> None:
    # Checked by the service, not argparse, so that a bad mode is refused in the words every door uses.
    p.add_argument("--mode", metavar="{" + ",".join(SEARCH_MODES) + "}",
                   help=f"retrieval mode ({env_default('retrieval_mode')})")


def _answer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top-k", type=int, help=f"passages to read ({env_default('top_k')})")
    p.add_argument("--threshold", type=float,
                   help=f"answer confidence below which spanqa abstains ({env_default('answer_threshold')})")
    _mode_option(p)


def _service(args, **given) -> Service:
    """The service over the command's collection; settings from the environment and the typed options, once."""
    return Service.open(args.collection, embedder=getattr(args, "embedder", None), **given)


def _sync_roots(args) -> str | None:
    """The `sync` setting from repeated --sync options (None: not given, the environment decides)."""
    return os.pathsep.join(str(Path(p).resolve()) for p in args.sync) if getattr(args, "sync", None) else None


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


# --- collections ----------------------------------------------------------------------------------------------

def _ingest_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="files and folders to read")
    _collection_options(p)
    p.add_argument("--include", action="append", help="glob of files to take (repeatable)")
    p.add_argument("--exclude", action="append", help="glob of files to leave out (repeatable)")
    p.add_argument("--chunk-tokens", type=int, help=f"passage size in tokens, new collections "
                                                    f"({env_default('chunk_tokens')})")
    p.add_argument("--overlap-tokens", type=int, help=f"passage overlap in tokens, new collections "
                                                      f"({env_default('chunk_overlap_tokens')})")
    p.add_argument("--max-file-mb", type=float, help=f"skip larger files ({env_default('max_file_mb')})")
    p.add_argument("--max-passages-per-document", type=int,
                   help=f"refuse documents yielding more passages ({env_default('max_passages_per_document')})")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="read, chunk and embed on a Ray cluster (pip install 'spanqa[ray]'): ADDRESS is host:port, "
                        "ray://host:port or auto; without it, a Ray started on this machine for the run")
    p.add_argument("--ray-workers", type=int, help=f"embedding actors on the cluster ({env_default('ray_workers')}; "
                                                   "0 = one per GPU, else one per CPU)")
    p.add_argument("--device", choices=DEVICES, help=f"where the embedder runs ({env_default('device')})")
    p.add_argument("--json", action="store_true", help="print the ingest report as JSON")


@PRODUCT.command("ingest", "Add files and folders to a collection (created on the first document added).",
                 _ingest_options)
def _ingest(args) -> int:
    _quiet_parsers()
    settings = Settings.from_env(max_file_mb=args.max_file_mb, max_passages_per_document=args.max_passages_per_document,
                                 device=args.device, ray_workers=args.ray_workers, embedder=args.embedder,
                                 chunk_tokens=args.chunk_tokens, chunk_overlap_tokens=args.overlap_tokens)
    job = IngestJob(args.paths, args.collection, args.include, args.exclude, args.ray)
    outcome = administration.ingest(job, settings, progress=None if args.json else _tqdm_progress(),
                         skipped=lambda source, reason: print(f"spanqa ingest: skipped {source}: {reason}",
                                                              file=sys.stderr))
    report = outcome.report
    if report is None:
        print(f"spanqa ingest: nothing to add; no collection created at {outcome.location}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(outcome.to_json())
    else:
        print(f"{outcome.location}: {report.summary()}")
    return 0 if report.added or report.updated or report.unchanged or not report.skipped else 1


def _sync_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="the folders and files the collection mirrors")
    _collection_options(p)
    p.add_argument("--include", action="append", help="glob of files to take (repeatable)")
    p.add_argument("--exclude", action="append", help="glob of files to leave out (repeatable)")
    p.add_argument("--allow-empty-root", action="store_true",
                   help="let a folder that vanished or holds no files remove its documents (refused by default: "
                        "an unmounted drive must not empty the collection)")
    p.add_argument("--watch", action="store_true", help="keep following the folders: sync again after each burst "
                                                        "of changes, a line per sync that changed something")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="embed new and changed files on a Ray cluster, as `spanqa ingest --ray` does")
    p.add_argument("--json", action="store_true", help="print the sync report as JSON (one object per sync)")


@PRODUCT.command("sync", "Make a collection mirror folders: new files added, changed ones replaced, deleted ones "
                         "removed, moved ones re-pointed; documents from elsewhere are left alone.", _sync_options)
def _sync(args) -> int:
    _quiet_parsers()
    settings = Settings.from_env(embedder=args.embedder)
    job = SyncJob(args.paths, args.collection, args.include, args.exclude, args.allow_empty_root, args.ray)
    if not args.watch:
        return _print_sync(administration.sync(job, settings), args.json, always=True)
    print(f"spanqa sync: watching {', '.join(args.paths)} (Ctrl-C stops)", file=sys.stderr)
    seen: list = []  # the first sync always says where the collection stands; later ones only what changed

    def report(outcome) -> None:
        _print_sync(outcome, args.json, always=not seen)
        seen.append(outcome)

    administration.watch(job, settings, report)
    return 0


def _print_sync(outcome, as_json: bool, always: bool) -> int:
    """One sync's outcome (or the error that refused it): a JSON object or a line; a watcher's quiet syncs say
    nothing."""
    if isinstance(outcome, SpanqaError):
        print(f"spanqa sync: {outcome}", file=sys.stderr)
        return 1
    report = outcome.report
    for item in report.skipped:
        print(f"spanqa sync: skipped {item.source}: {item.reason}", file=sys.stderr)
    if as_json:
        _print_json(outcome.to_json())
    elif always or report.changed:
        print(f"{time.strftime('%H:%M:%S')} {outcome.location}: {report.summary()}")
        changes = [f"  + {s}" for s in report.added] + [f"  ~ {s}" for s in report.updated] + \
            [f"  - {s}" for s in report.removed] + [f"  > {old} -> {new}" for old, new in report.renamed]
        for line in changes[:_CHANGES_SHOWN]:
            print(line)
        if len(changes) > _CHANGES_SHOWN:
            print(f"  … and {len(changes) - _CHANGES_SHOWN} more")
        sys.stdout.flush()
    return 0


_CHANGES_SHOWN = 20  # a sync's changed files listed one per line; a checkout of hundreds is summed up


def _show_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("document_id", help="the document's id (an answer's or passage's document_id, or `spanqa docs`)")
    p.add_argument("--span", required=True, metavar="START:END", help="the characters to mark (an answer's start "
                                                                       "and end)")
    p.add_argument("--context", type=int, default=600, help="characters shown either side (default: 600)")
    p.add_argument("--json", action="store_true", help="print the view as JSON (before, span, after, page, ...)")
    p.add_argument("--page-image", metavar="FILE.png", help="a PDF: also write the span's page as a PNG, the span "
                                                            "boxed (--page: another page than the span's first)")
    p.add_argument("--page", type=int, help="the page --page-image renders (default: the one the span starts on)")
    _collection_options(p)


@PRODUCT.command("show", "Show a span of a document in its place (an answer checked at its source).", _show_options)
def _show(args) -> int:
    start, _, end = args.span.partition(":")
    if not (start.isdigit() and end.isdigit()):
        raise InputError(f"--span takes START:END, two character offsets such as 120:134; got {args.span!r}")
    service = _service(args)
    span = {"document_id": args.document_id, "start": int(start), "end": int(end)}
    view = service.call("view", {**span, "context": args.context}).data
    if args.page_image:
        image = service.call("page", {**span, "page": args.page or view["page"]})
        Path(args.page_image).write_bytes(image.value.png)
        view = {**view, "page_image_file": args.page_image, "page_image_boxes": image.data["boxes"]}
    if args.json:
        _print_json(view)
    else:
        print(span_view_text(view, color=sys.stdout.isatty()))
        if args.page_image:
            print(f"\nPage {image.data['page']} written to {args.page_image}, the span boxed.")
    return 0


def _search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="the query; - reads it from standard input")
    _collection_options(p)
    p.add_argument("-k", type=int, help=f"passages to return ({env_default('top_k')})")
    _mode_option(p)
    p.add_argument("--json", action="store_true", help="print the versioned response JSON (docs/response.md)")


@PRODUCT.command("search", "Print the best passages for a query, with their scores and sources.", _search_options)
def _search(args) -> int:
    service = _service(args)
    data = service.search(_read_text_arg(args.query), k=args.k, mode=args.mode).data
    if args.json:
        _print_json(data)
        return 0
    if not data["passages"]:
        print("No passages found." if service.passage_count() else "The collection is empty: add documents "
              "with `spanqa ingest PATH`.")
    for rank, p in enumerate(data["passages"], start=1):
        dense = f"{p['dense_score']:.3f}" if p["dense_score"] is not None else "-"
        bm25 = f"{p['bm25_score']:.2f}" if p["bm25_score"] is not None else "-"
        print(f"[{rank}] {p['source']} p.{p['page']} chars {p['start']}-{p['end']}  fused {p['score']:.4f}  "
              f"dense {dense}  bm25 {bm25}")
        print("    " + p["text"].replace("\n", " ")[:400])
    return 0


def _docs_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "remove"], help="what to do")
    p.add_argument("document", nargs="?", help="document id or source (for remove)")
    _collection_options(p)
    p.add_argument("--json", action="store_true", help="print the list as versioned JSON")


@PRODUCT.command("docs", "List or remove the documents of a collection.", _docs_options)
def _docs(args) -> int:
    service = _service(args)
    if args.action == "remove":
        if not args.document:
            raise InputError("give the document id or source to remove")
        service.remove(args.document)
        print(f"Removed {args.document}")
        return 0
    data = service.call("documents").data
    if args.json:
        _print_json(data)
        return 0
    for d in data["documents"]:
        print(f"{d['document_id']}  {d['passages']:5d} passages  {d['characters']:8d} chars  {d['source']}")
    print(f"{len(data['documents'])} documents in {service.location}")
    return 0


@PRODUCT.command("reindex", "Rebuild a collection's indexes, or re-embed it for another embedding model.",
                 _collection_options)
def _reindex(args) -> int:
    print(administration.reindex(args.collection, Settings.from_env(), embedder=args.embedder))  # None: rebuild
    return 0


@PRODUCT.command("migrate", "Upgrade a PostgreSQL collection's schema to this spanqa's version, in one transaction.",
                 lambda p: _collection_options(p, embedder=False))
def _migrate(args) -> int:
    print(administration.migrate(args.collection, Settings.from_env()))
    return 0


# --- answering ------------------------------------------------------------------------------------------------

def _ask_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("question", nargs="?", help="the question; - reads one question per line from standard input")
    p.add_argument("--questions", help="a file with one question per line (- for standard input)")
    _collection_options(p)
    p.add_argument("--reader", help="reader model directory or HF id that reads every question (default: the "
                                    "shipped general and technical readers, or $SPANQA_READER and "
                                    "$SPANQA_TECHNICAL_READER)")
    p.add_argument("--reader-domain", choices=READER_DOMAINS,
                   help=f"which shipped reader reads a question ({env_default('reader_domain')}: the technical one "
                        "when its passages read like technical documentation)")
    _answer_options(p)
    p.add_argument("--precision", choices=PRECISIONS, help=f"reader precision ({env_default('reader_precision')})")
    p.add_argument("--json", action="store_true", help="print one versioned response JSON per question")


def _questions(args) -> list[str]:
    if args.questions == "-" or args.question == "-":
        return [line.strip() for line in sys.stdin if line.strip()]
    if args.questions:
        try:
            text = Path(args.questions).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"Cannot read the questions file {args.questions}: {exc}") from exc
        return [line.strip() for line in text.splitlines() if line.strip()]
    if args.question is not None:  # an empty one is refused by the service, as at every door
        return [args.question]
    raise InputError("give a question, `-` to read questions from standard input, or --questions FILE")


@PRODUCT.command("ask", "Answer questions from a collection: routed, retrieved, extracted and cited.", _ask_options)
def _ask(args) -> int:
    questions = _questions(args)
    # A reader named here reads every question; without one, the shipped general and technical readers share them.
    reader = {"reader": args.reader, "reader_domain": "general"} if args.reader else \
        {"reader_domain": args.reader_domain}
    service = _service(args, reader_precision=args.precision, **reader)
    options = {"top_k": args.top_k, "min_score": args.threshold, "mode": args.mode}
    status = 0
    for start in range(0, len(questions), ASK_BATCH):
        valid = []
        for question in questions[start:start + ASK_BATCH]:  # a bad line is reported and skipped
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
            _print_json(result.data) if args.json else _print_response(result.data)
    return status


def _print_response(data: dict) -> None:
    intent = data["intent"]
    print(f"[{intent['label']} {intent['confidence']:.2f}] {data['message']}")
    print(f"  {data['reply']}")
    if not data["abstained"] and data["answers"]:
        best = data["answers"][0]
        print(f"  source: {best['source']}  ({best['citation']})  chars {best['start']}-{best['end']}")
    timings = data["timings"]
    print("  timings: " + "  ".join(f"{k[:-3]} {v:.0f} ms" for k, v in timings.items() if k.endswith("_ms")))


def _chat_options(p: argparse.ArgumentParser) -> None:
    _collection_options(p)
    _answer_options(p)


@PRODUCT.command("chat", "A conversation in the terminal: follow-up questions are read in the light of the chat; "
                         "/sources, /reset, /quit (or Ctrl-D).", _chat_options)
def _chat(args) -> int:
    from spanqa.plugin.doors.chat import run_chat

    service = _service(args).warm_up()  # the first question is not the one that waits for the models
    options = {"top_k": args.top_k, "min_score": args.threshold, "mode": args.mode}
    service.parse("ask", {"question": "options check", **options})  # a bad option is refused before the prompt
    return run_chat(service, service.settings.home_path / "chat-history", options)


def _classify_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="the message; - reads it from standard input")
    p.add_argument("--model", help="intent model directory (default: the default router)")
    p.add_argument("--json", action="store_true", help="print the intent as versioned JSON")


@PRODUCT.command("classify", "Classify one message with the intent router.", _classify_options)
def _classify(args) -> int:
    # The engine opens its collection on first use: classifying never does.
    result = Service.open(router=args.model).classify(_read_text_arg(args.text))
    if args.json:
        _print_json(result.data)
        return 0
    intent = result.data["intent"]
    print(f"{intent['label']}  {intent['confidence']:.3f}{'  (out of scope)' if intent['out_of_scope'] else ''}")
    for alternative in intent["alternatives"]:
        print(f"  {alternative['label']}  {alternative['confidence']:.3f}")
    return 0


def _calibrate_options(p: argparse.ArgumentParser) -> None:
    _collection_options(p)
    p.add_argument("--labels", help="JSONL of {\"question\", \"answers\": [...]} (empty: unanswerable), or SQuAD JSON")
    p.add_argument("--no-feedback", action="store_true", help="ignore the collection's thumbs-up/down")
    p.add_argument("--routing", action="store_true",
                   help="also turn thumbs-down on non-document replies into routing data for the router")
    p.add_argument("--json", action="store_true", help="print the fit as JSON")


@PRODUCT.command("calibrate", "Refit a collection's answer calibration from labelled questions and feedback.",
                 _calibrate_options)
def _calibrate(args) -> int:
    service = _service(args)
    outcome = administration.calibrate(service, args.labels, use_feedback=not args.no_feedback, routing=args.routing)
    if outcome.routing_added is not None:
        print(f"routing: {outcome.routing_added} new document question(s) from thumbs-down on replies; the router "
              "is refitted with them", file=sys.stderr)
    report = outcome.report
    if report is None:
        return 0
    if args.json:
        _print_json(report.to_json())
    else:
        print(f"calibration a={report.calibration.a:.3f} b={report.calibration.b:.3f} from {report.labelled} labelled "
              f"questions and {report.feedback} feedback ratings; ECE on them {report.ece_before:.3f} → "
              f"{report.ece_after:.3f}; stored with {service.location}")
    return 0


@PRODUCT.command("setup", "Build what spanqa needs before its first answer: the default router and collection.")
def _setup(args) -> int:
    for line in administration.setup(Settings.from_env()):
        print(line)
    return 0


# --- servers and the UI ---------------------------------------------------------------------------------------

def _ui_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8501, help="port to serve on")
    p.add_argument("--collection", help="also offer this collection (a directory or a PostgreSQL URL) and open it "
                                        "first (default: $SPANQA_COLLECTION)")
    p.add_argument("--sync", action="append", metavar="PATH", help="a folder the first collection follows while "
                   "the UI runs (repeatable; as `spanqa sync --watch`; the sidebar shows the last sync)")


@PRODUCT.command("ui", "Start the Streamlit chat UI.", _ui_options)
def _ui(args) -> int:
    import math

    import spanqa.ui

    app = Path(spanqa.ui.__file__).resolve().parent / "app.py"
    print(f"spanqa chat UI: http://localhost:{args.port}", flush=True)
    # The uploader refuses what ingestion would refuse anyway, before the bytes cross the network.
    upload_mb = max(1, math.ceil(Settings.from_env().max_file_mb))
    command_line = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
                    "--server.headless", "true", "--browser.gatherUsageStats", "false",
                    "--client.toolbarMode", "minimal", "--server.maxUploadSize", str(upload_mb)]
    if args.collection:
        os.environ["SPANQA_COLLECTION"] = args.collection  # the UI door resolves its settings like every door
    if args.sync:
        os.environ["SPANQA_SYNC"] = _sync_roots(args)
    # Become Streamlit rather than wait for it: a supervisor's SIGTERM to `spanqa ui` then stops the server
    # itself instead of orphaning it.
    sys.stdout.flush()
    os.execv(sys.executable, command_line)


@PRODUCT.command("mcp", "Serve the tools and documents over MCP on stdio (for Claude Desktop, Cursor, VS Code, …).",
                 _collection_options)
def _mcp(args) -> int:
    import anyio
    from spanqa.plugin.doors.mcp_server import serve_stdio

    service = _service(args).warm_up()  # before the client's first call; a first-use notice goes to stderr
    print(f"spanqa mcp: serving {service.location} over stdio", file=sys.stderr, flush=True)
    anyio.run(serve_stdio, service)
    return 0


def _serve_options(p: argparse.ArgumentParser) -> None:
    _collection_options(p)
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
    p.add_argument("--sync", action="append", metavar="PATH", help="a folder the collection follows while the "
                   "server runs (repeatable; as `spanqa sync --watch`; POST /v1/sync syncs at once)")
    p.add_argument("--config", metavar="spanqa.toml", help="serve several collections with scoped keys, as the file "
                   "says (instead of --collection, --api-key and --sync; docs: spanqa/docs/serving.md)")


@PRODUCT.command("serve", "Serve MCP (/mcp), OpenAI-compatible chat (/v1/chat/completions) and REST on one port.",
                 _serve_options)
def _serve(args) -> int:
    import uvicorn

    serving = ServerSettings.from_env(host=args.host, port=args.port, api_key=args.api_key,
                                      cors_origins=args.cors_origins, batch_window_ms=args.batch_window_ms,
                                      max_batch=args.max_batch, config=args.config)
    administration.limit_server_memory()  # before uvicorn starts its request threads
    app, what = _team_app(args, serving) if serving.config else _one_collection_app(args, serving)
    print(f"spanqa serve: http://{serving.host}:{serving.port} ({what})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=serving.host, port=serving.port, log_level="warning")
    return 0


def _one_collection_app(args, serving: ServerSettings):
    from spanqa.plugin.doors.http_server import create_app

    app = create_app(_service(args, serving=serving, sync=_sync_roots(args)), serving)
    key = "; API key required" if serving.api_key else ""
    return app, f"MCP at /mcp, OpenAI-compatible at /v1, API docs at /docs{key}"


def _team_app(args, serving: ServerSettings):
    from spanqa.plugin.doors.team_server import TeamServer, create_team_app

    from spanqa.server_config import load_config

    given = [flag for flag, value in (("--collection", args.collection), ("--sync", args.sync)) if value]
    if given:
        raise InputError(f"--config names the collections and what they follow; leave out {' and '.join(given)}")
    config = load_config(serving.config)
    server = TeamServer(config, Settings.from_env(embedder=getattr(args, "embedder", None)), serving)
    names = ", ".join(server.services)
    return create_team_app(server, serving), (f"{len(server.services)} collections ({names}) under "
                                              f"/v1/collections/NAME, {len(config.keys)} keys")


def _keys_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["new"], help="new: make a key")
    p.add_argument("name", help="the key's name, as the audit log will show it (e.g. hr-readers)")


@PRODUCT.command("keys", "Make an API key for a team server's configuration (spanqa serve --config).",
                 _keys_options)
def _keys(args) -> int:
    from spanqa.server_config import check_name, new_key

    check_name(args.name, "A key's name")
    key, digest = new_key()
    print(f"# The key for {args.name!r}, shown this once: give it to its users, keep it out of the file.\n"
          f"#   {key}\n"
          f"[[keys]]\nname = {json.dumps(args.name)}\nkey_sha256 = \"{digest}\"\nread = []\nwrite = []")
    return 0


# --- the program ----------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from spanqa.plugin.lab.cli import LAB

    parser = argparse.ArgumentParser(prog="spanqa", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"spanqa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    PRODUCT.add_to(sub)
    LAB.add_to(sub)
    sub.add_parser("bench", add_help=False, help="spanqa vs Haystack vs a baseline (from a source checkout; "
                                                 "spanqa bench --help)")
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

    from spanqa.plugin.lab.cli import LAB

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
    command = PRODUCT.commands.get(args.command) or LAB.commands[args.command]
    try:
        return command.run(args)
    except SpanqaError as exc:
        print(f"spanqa {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

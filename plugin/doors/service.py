"""The one layer under every door. The CLI, the chat UI, the MCP tools, the REST and OpenAI-compatible routes and
the LangChain tools are thin shims over `Service`: each operation has one request model, built from the engine's
`Settings` (so a limit has one value whichever door a request came through, and every refusal names it), one
versioned JSON result (plugin/engine/response.py) and one error contract (`error_json`, `http_status`).

    service = Service.open("my-collection")          # the Python door: settings from the environment, once
    service.ask("When does the office open?").data   # routed: a greeting gets a greeting
    service.answer("When does the office open?")     # unrouted: always from the documents

The verbs, the same at every door:
    ask        route the message, then answer from the documents or reply in kind (CLI `ask`, UI, POST /v1/ask,
               /v1/chat/completions)
    answer     answer from the documents without routing (the `document_qa` tool, POST /v1/answer)
    search     the best passages for a query (CLI `search`, `document_search`, POST /v1/search)
    classify   the message's intent (CLI `classify`, `classify_intent`, POST /v1/classify)
    documents, document, remove, ingest, feedback: the collection's documents and the users' ratings
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from spanqa.plugin.engine.history import exchange, interpretation, recent_history
from spanqa.plugin.engine.page_image import render_page
from spanqa.plugin.engine.protocol import Engine
from spanqa.plugin.engine.requests import invalid_request, parse, request_models
from spanqa.plugin.engine.response import (
    SCHEMA_VERSION,
    documents_json,
    hits_json,
    intent_json,
    response_json,
)
from spanqa.plugin.engine.router import INTENTS
from spanqa.plugin.engine.source_view import span_view, view_path
from spanqa.retriever.records import Feedback

from spanqa.errors import (
    CollectionError,
    Forbidden,
    InputError,
    InvalidRequest,
    ModelLoadError,
    NotFound,
    RateLimited,
    SpanqaError,
    Unauthorized,
)
from spanqa.settings import ServerSettings, Settings

__all__ = ["OPERATIONS", "SCHEMA_VERSION", "TOOLS", "Result", "Service", "error_json", "error_type", "exchange",
           "http_status", "interpretation", "invalid_request", "local_collections", "recent_history",
           "shown_location"]


# --- errors ---------------------------------------------------------------------------------------------------

_HTTP_STATUS = ((InvalidRequest, 422), (NotFound, 404), (InputError, 400), (CollectionError, 503),
                (ModelLoadError, 500), (Unauthorized, 401), (Forbidden, 403), (RateLimited, 429))


def error_type(exc: SpanqaError) -> str:
    """The `type` of an error: its class name in snake_case (InputError → input_error)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def error_json(exc: SpanqaError) -> dict[str, str]:
    """`{"type", "message"}`: what every door says about a refusal (HTTP as its body, MCP and the LangChain tools
    as the tool error's text, the CLI and the UI print the message)."""
    return {"type": error_type(exc), "message": str(exc)}


def http_status(exc: SpanqaError) -> int:
    return next((code for kind, code in _HTTP_STATUS if isinstance(exc, kind)), 400)


# --- operations -----------------------------------------------------------------------------------------------

_LINKS = ("view", "page_image")


def _rebased(data: Any, root: str) -> Any:
    """`data` with every `view` and `page_image` link ("/v1/documents/…") moved under `root`."""
    if isinstance(data, dict):
        return {key: root + value[3:] if key in _LINKS and isinstance(value, str) and value.startswith("/v1/")
                else _rebased(value, root) for key, value in data.items()}
    if isinstance(data, list):
        return [_rebased(item, root) for item in data]
    return data


@dataclass(frozen=True)
class Result:
    """What an operation gives: the versioned JSON every door returns, and the typed value behind it (a Response,
    the Hits, an Intent, ...) for doors that hand it on (the LangChain tools' artifact)."""

    data: dict[str, Any]
    value: Any = None


# The agent tools (MCP and LangChain): name → (operation, description).
TOOLS: dict[str, tuple[str, str]] = {
    "document_qa": ("answer", "Answer a factual question from the user's own document collection. Returns a verbatim "
                              "quote with its source document and page, or abstained=true when the documents do not "
                              "contain the answer. Use it for any question about the user's files."),
    "document_search": ("search", "Find the passages of the user's documents most relevant to a query, with their "
                                  "sources. Use it to browse or when document_qa finds no single answer."),
    "classify_intent": ("classify", f"Classify a user message as {', '.join(INTENTS[:-1])} or {INTENTS[-1]}, with a "
                                    "calibrated confidence."),
}
OPERATIONS = ("ask", "answer", "search", "classify", "documents", "document", "view", "page", "remove", "ingest",
              "feedback")


class Service:
    """The operations every door offers, on one engine (an `Assistant`, or a `BatchingAssistant` in a server)."""

    def __init__(self, engine: Engine, mounted_at: str = "") -> None:
        """`mounted_at`: where a server serves this collection's routes (a team server's
        "/v1/collections/NAME"): the `view` and `page_image` links of its responses point there."""
        self.engine = engine
        self.settings = engine.settings
        self.inputs = request_models(engine.settings)
        self.mounted_at = mounted_at

    @classmethod
    def open(cls, collection: str | Path | None = None, settings: Settings | None = None, *, create: bool = False,
             serving: ServerSettings | None = None, mounted_at: str = "", **given) -> Service:
        """The service over `collection` (a directory or PostgreSQL URL; None: the `collection` setting, else the
        bundled default collection, built on first use). `settings`: what the door resolved; without them, the
        defaults, the SPANQA_* environment and `given`, resolved here, once. `create` makes a missing local or
        PostgreSQL collection. `serving`: a server's settings; concurrent questions then share batches (unless
        its `max_batch` is 1). The collection opens when first used, so classifying never opens one."""
        from spanqa.plugin.engine.assistant import Assistant
        from spanqa.plugin.engine.batching import BatchingAssistant
        from spanqa.plugin.engine.collections import open_collection

        if settings is not None and given:
            raise InputError(f"give settings or settings' values ({', '.join(sorted(given))}), not both")
        settings = settings or Settings.from_env(**given)
        if create:
            collection = open_collection(collection, create=True, settings=settings)
        engine = Assistant(collection, settings=settings)
        if serving is not None and serving.max_batch > 1:
            engine = BatchingAssistant(engine, serving.batch_window_ms, serving.max_batch)
        return cls(engine, mounted_at)

    def warm_up(self) -> Service:
        """Open the collection and load the models every message may need, now rather than on the first message."""
        self.engine.warm_up()
        return self

    @property
    def location(self) -> str:
        """The collection's location as it may be shown (a PostgreSQL URL without its password)."""
        return self.engine.collection.location

    def passage_count(self) -> int:
        return len(self.engine.collection)

    def parse(self, operation: str, arguments: dict[str, Any] | None) -> BaseModel:
        """`arguments` checked against the operation's request model (None values mean "not given");
        InvalidRequest names each bad field."""
        return parse(self.settings, operation, arguments)

    def call(self, operation: str, arguments: dict[str, Any] | None = None) -> Result:
        """Run `operation` (one of OPERATIONS but ingest) with JSON-style arguments."""
        if operation not in OPERATIONS or operation == "ingest":
            raise NotFound(f"Unknown operation {operation!r}; spanqa's are {', '.join(OPERATIONS)}")
        handler = getattr(self, f"_{operation}")
        if operation == "documents":
            return handler()
        return self._linked(handler(self.parse(operation, {} if arguments is None else arguments)))

    def tool(self, name: str, arguments: dict[str, Any] | None) -> Result:
        """Run agent tool `name` (TOOLS) with its arguments."""
        if name not in TOOLS:
            raise NotFound(f"Unknown tool {name!r}; spanqa's tools are {', '.join(TOOLS)}")
        return self.call(TOOLS[name][0], arguments)

    def tool_schema(self, name: str) -> type[BaseModel]:
        return getattr(self.inputs, TOOLS[name][0])

    # Typed shortcuts for Python callers: the same checks as every door.
    def ask(self, question: str, **options) -> Result:
        return self.call("ask", {"question": question, **options})

    def answer(self, question: str, **options) -> Result:
        return self.call("answer", {"question": question, **options})

    def search(self, query: str, **options) -> Result:
        return self.call("search", {"query": query, **options})

    def ask_many(self, questions: list[str], **options) -> list[Result]:
        """`ask` for several questions at once: one router pass, one embedding call, shared reader batches."""
        requests = [self.parse("ask", {"question": q, **options}) for q in questions]
        return [self._linked(Result(response_json(r), r)) for r in self.engine.run_ask(requests)] if requests else []

    def classify(self, message: str) -> Result:
        return self.call("classify", {"message": message})

    def remove(self, document_id: str) -> Result:
        return self.call("remove", {"document_id": document_id})

    # --- the operations ---------------------------------------------------------------------------------------

    def _ask(self, request) -> Result:
        response = self.engine.run_ask([request])[0]
        return Result(response_json(response), response)

    def _answer(self, request) -> Result:
        response = self.engine.run_answer([request])[0]
        return Result(response_json(response), response)

    def _search(self, request) -> Result:
        hits = self.engine.run_search(request)
        return Result(hits_json(request.query, hits), hits)

    def _classify(self, request) -> Result:
        intent = self.engine.run_classify(request)
        return Result({"schema": SCHEMA_VERSION, "intent": intent_json(intent)}, intent)

    def _documents(self) -> Result:
        documents = self.engine.collection.documents()
        return Result(documents_json(documents), documents)

    def _document(self, args) -> Result:
        document = self.engine.collection.document(args.document_id)
        if document is None:
            raise self._no_document(args.document_id)
        return Result({"schema": SCHEMA_VERSION, "document_id": document.id, "source": document.source,
                       "title": document.title, "text": document.text}, document)

    def _view(self, args) -> Result:
        """A span of a document in its place: the text before it, the span, the text after (`context` characters
        either side, else the whole document)."""
        document = self.engine.collection.document(args.document_id)
        if document is None:
            raise self._no_document(args.document_id)
        view = span_view(document, args.start, args.end, args.context)
        data = view.to_json()
        if data["page_image"] and self.engine.collection.original(document.id) is None:
            data["page_image"] = None  # a PDF whose original was not kept: its text is all there is to show
        return Result({"schema": SCHEMA_VERSION, **data}, view)

    def _page(self, args) -> Result:
        """A PDF page rendered from the document's original file, the span's characters boxed; the PNG is the
        result's value, its size and boxes the data."""
        document = self.engine.collection.document(args.document_id)
        if document is None:
            raise self._no_document(args.document_id)
        text_view = view_path(document.id, args.start, args.end)
        if Path(document.source).suffix.lower() != ".pdf":
            raise InputError(f"Document {document.id} ({Path(document.source).name}) is not a PDF, so it has no "
                             f"page images; its text, the span marked: {text_view}")
        original = self.engine.collection.original(document.id)
        if original is None:
            raise NotFound(f"The original file of document {document.id} is not kept (its collection has "
                           "keep_originals off, or it was ingested before spanqa kept originals: ingest it again); "
                           f"its text, the span marked: {text_view}")
        image = render_page(original, document, args.page, args.start, args.end)
        return Result({"schema": SCHEMA_VERSION, **image.to_json()}, image)

    def _remove(self, args) -> Result:
        if not self.engine.collection.delete(args.document_id):
            raise self._no_document(args.document_id)
        return Result({"schema": SCHEMA_VERSION, "removed": args.document_id})

    def _feedback(self, args) -> Result:
        # A follow-up is kept as it was understood: what was answered, and what a thumbs-down disputes.
        record = Feedback(args.resolved or args.message, args.answer, args.source, args.rating, args.passage_id,
                          args.score, args.route)
        return Result({"schema": SCHEMA_VERSION, "id": self.engine.collection.add_feedback(record)}, record)

    # --- ingest ---------------------------------------------------------------------------------------------

    def ingest(self, files: list[tuple[str, bytes]], progress=None) -> Result:
        """Add uploaded files (name, bytes): names are labels only, nothing is written outside the collection. A
        file over `max_file_mb` is refused before anything is added."""
        limit = self.settings.collection_limits().max_file_bytes
        for name, data in files:
            if len(data) > limit:
                raise InputError(f"{name} is larger than {limit:,} bytes (the max_file_mb setting); nothing was "
                                 "added")
        report = self.engine.collection.ingest_bytes(files, progress=progress)
        return Result({"schema": SCHEMA_VERSION, **report.to_dict()}, report)

    def sync(self, roots: list[str], include: list[str] | None = None, exclude: list[str] | None = None,
             allow_empty_root: bool = False) -> Result:
        """Make the collection mirror `roots` (retriever/sync.py): the report's counts and files."""
        report = self.engine.collection.sync(roots, include, exclude, allow_empty_root)
        return Result({"schema": SCHEMA_VERSION, "collection": self.location, **report.to_dict()}, report)

    def _linked(self, result: Result) -> Result:
        """The result with its links under `mounted_at` (links are made relative to a one-collection server)."""
        if not self.mounted_at:
            return result
        return Result(_rebased(result.data, self.mounted_at), result.value)

    def _no_document(self, document_id: str) -> NotFound:
        return NotFound(f"No document {document_id!r} in this collection (list them with `spanqa docs list` or "
                        "GET /v1/documents)")


def shown_location(location: str | Path) -> str:
    """A collection's location as it may be shown: a PostgreSQL URL without its password."""
    from spanqa.retriever.postgres_location import PostgresLocation, is_postgres_location

    return PostgresLocation(str(location)).shown if is_postgres_location(str(location)) else str(location)


def local_collections(settings: Settings) -> list[str]:
    """The names of the local collections kept under the `home` setting (the chat UI offers them)."""
    root = settings.home_path / "collections"
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file()) if root.is_dir() else []

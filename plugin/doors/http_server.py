"""`spanqa serve`: one ASGI app with every network door on one engine.

    /mcp                      MCP over streamable HTTP (the same tools and resources as `spanqa mcp`)
    /v1/chat/completions      OpenAI-compatible chat (streaming and not): the routed reply, citations as data
    /v1/models                the one model, "spanqa"
    /v1/ask (routed) /v1/answer (unrouted) /v1/search /v1/classify, /v1/documents (list, read, upload, delete,
    /{id}/view: a span marked in the text, /{id}/pages/{n}.png: a PDF page with a span boxed),
    /v1/feedback              REST
    /healthz /readyz          liveness, and readiness (models loaded)
    /docs /openapi.json       the API, described

Every route is a few lines over the service layer (plugin/doors/service.py): the same argument models as the
tools (an unknown or misspelled field is refused by name), the same response JSON and the same errors. Every error
is JSON, `{"error": {"type", "message"}}`: `type` is a snake_case name (`invalid_request` 422, `input_error` 400,
`not_found` 404, `collection_error` 503, ...), the message every door gives, and an unexpected failure answers 500
with a reference that the server's log holds beside the trace. Before any of that: the bearer API key when one is
set (required off loopback) and the upload limit. Concurrent questions share reader passes
(plugin/engine/batching.py).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from spanqa.plugin.doors.administration import FolderFollower
from spanqa.plugin.doors.mcp_server import build_mcp_server
from spanqa.plugin.doors.metrics import Metrics, install_metrics, route_label
from spanqa.plugin.doors.service import SCHEMA_VERSION, Result, Service, error_json, http_status, invalid_request
from spanqa.ui.render import span_view_html
from starlette.exceptions import HTTPException

from spanqa import __version__
from spanqa.errors import InputError, NotFound, RateLimited, SpanqaError, Unauthorized
from spanqa.settings import ServerSettings

__all__ = ["MODEL_ID", "McpEndpoint", "add_collection_routes", "add_health", "add_openai_routes", "add_sync_routes",
           "create_app", "install_body_limit", "install_cors", "install_error_handlers", "refusal",
           "serving_lifespan", "sync_logger"]

MODEL_ID = "spanqa"
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around an upload's bytes


_LOG = logging.getLogger("spanqa.serve")


# A document's view runs nothing and loads nothing: its text is escaped, and a browser is told so as well.
_INERT = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                                     "base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
          "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


class ChatMessage(BaseModel):
    role: str = Field(description="system, user, assistant or tool")
    content: str | list[dict] | None = Field(default=None, description="text, or OpenAI content parts")


class ChatRequest(BaseModel):
    model: str = Field(default=MODEL_ID, max_length=64,
                       description=f"{MODEL_ID!r} on a one-collection server; on a team server (--config), the "
                                   "collection to answer from (/v1/models lists those the key can read)")
    messages: list[ChatMessage] = Field(min_length=1, description="the conversation; the last user message is "
                                                                  "answered in the light of the user and "
                                                                  "assistant messages before it")
    stream: bool = Field(default=False, description="server-sent events, as OpenAI streams")


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, list):
        return " ".join(str(part.get("text", "")) for part in message.content if part.get("type") == "text")
    return message.content or ""


_INSTRUCTIONS = ("system", "developer", "tool", "function")


def _question_and_history(messages: list[ChatMessage]) -> tuple[str, list[dict]]:
    """The last user message, and the messages before it as the conversation (stateless, as OpenAI's API is: the
    client sends the whole chat each time). System, developer and tool messages are instructions for a generative
    model, and an assistant greeting before the first user message answers nothing: spanqa quotes the documents
    whatever they say, so these are left out. Any other role goes on to be checked (and refused) as the history
    is at every door."""
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    if last is None:
        raise InputError("messages: no user message to answer")
    earlier = [m for m in messages[:last] if m.role not in _INSTRUCTIONS]
    start = next((i for i, m in enumerate(earlier) if m.role != "assistant"), len(earlier))
    return _text(messages[last]), [{"role": m.role, "content": _text(m)} for m in earlier[start:]]


def create_app(service: Service, settings: ServerSettings | None = None) -> FastAPI:
    """The app around `service` (`Service.open(..., serving=settings)` micro-batches concurrent questions). When
    the service's settings name folders to follow (`sync`), its collection follows them while the app runs, and
    POST /v1/sync syncs them at once."""
    settings = settings or ServerSettings()
    roots = service.settings.sync_roots
    follower = FolderFollower(roots, service, on_outcome=sync_logger()) if roots else None
    mcp = McpEndpoint(service)
    state: dict[str, Any] = {"ready": False}
    lifespan = serving_lifespan({"default": service}, [mcp], [follower], state)
    app = FastAPI(title="spanqa", version=__version__, lifespan=lifespan,
                  description="Extractive, cited question answering over your documents. Every response carries "
                              f"the versioned response JSON (schema {SCHEMA_VERSION}).")
    metrics = Metrics()
    install_error_handlers(app)
    _install_guards(app, settings, service.settings.collection_limits().max_file_bytes)
    install_metrics(app, metrics, lambda request: ("default", route_label(request.url.path)))  # outermost: all counted
    app.mount("/mcp", mcp)
    add_health(app, state, lambda: {"documents": service.passage_count()}, metrics)
    add_collection_routes(app, service, "/v1", metrics.observer("default"))
    add_sync_routes(app, follower, "/v1")
    add_openai_routes(app, lambda _request, _model: service, lambda _request: [MODEL_ID])
    metrics.watch_batches("default", service)
    return app


class McpEndpoint:
    """MCP over streamable HTTP for one service, as an ASGI app to mount; its session manager runs in the
    server's lifespan (`serving_lifespan`)."""

    def __init__(self, service: Service) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        self.sessions = StreamableHTTPSessionManager(app=build_mcp_server(service), stateless=True)

    async def __call__(self, scope, receive, send) -> None:
        await self.sessions.handle_request(scope, receive, send)


def serving_lifespan(services: dict[str, Service], endpoints: list[McpEndpoint], followers: list, state: dict,
                     tolerate_down: bool = False):
    """Warm every service's models, run every MCP session manager and folder follower while the app serves. With
    `tolerate_down`, a collection that cannot be opened (its database down, its directory gone) is reported and
    the others are served; its routes answer with the collection's error until it can be opened."""
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        for name, service in services.items():
            try:
                await anyio.to_thread.run_sync(service.warm_up)
            except SpanqaError as exc:
                if not tolerate_down:
                    raise
                print(f"spanqa serve: collection {name!r} is unavailable, serving the others: {exc}",
                      file=sys.stderr, flush=True)
        state["ready"] = True
        running = [f for f in followers if f is not None]
        for follower in running:
            follower.start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                for endpoint in endpoints:
                    await stack.enter_async_context(endpoint.sessions.run())
                yield
        finally:
            for follower in running:
                follower.stop()

    return lifespan


def sync_logger(collection: str = "") -> Callable:
    """A follower's `on_outcome`: a line on stderr for each sync that changed something or was refused."""
    where = f" of {collection!r}" if collection else ""

    def log(outcome) -> None:
        if isinstance(outcome, SpanqaError):
            print(f"spanqa serve: sync{where} refused: {outcome}", file=sys.stderr, flush=True)
        elif outcome.report.changed:
            print(f"spanqa serve: sync{where}: {outcome.report.summary()}", file=sys.stderr, flush=True)

    return log


def add_sync_routes(app: FastAPI, follower: FolderFollower | None, prefix: str) -> None:
    def configured() -> FolderFollower:
        if follower is None:
            raise NotFound("This server follows no folders for this collection: start it with `spanqa serve --sync "
                           "PATH` (or give the collection `sync` folders in its configuration) to sync them")
        return follower

    @app.post(f"{prefix}/sync", tags=["documents"])
    async def sync_now() -> dict:
        """Sync the folders the server follows now (they are also synced as they change)."""
        return (await anyio.to_thread.run_sync(configured().sync_now)).to_json()

    @app.get(f"{prefix}/sync", tags=["documents"])
    def last_sync() -> dict:
        """The folders the server follows and what their last sync did."""
        return configured().status()


def _install_guards(app: FastAPI, settings: ServerSettings, max_file_bytes: int) -> None:
    """The body limit, the server's one API key (when set) and CORS."""
    key = settings.api_key.encode()
    install_body_limit(app, max_file_bytes)

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if key:
            given = request.headers.get("authorization", "")
            token = given[7:].encode() if given.lower().startswith("bearer ") else b""
            if not hmac.compare_digest(token, key):
                return refusal(Unauthorized("Missing or wrong API key: send 'Authorization: Bearer <key>'"))
        return await call_next(request)

    install_cors(app, settings)


def install_body_limit(app: FastAPI, max_file_bytes: int) -> None:
    """Refuse a request body larger than one file of `max_file_bytes` and its form."""
    max_body = max_file_bytes + _FORM_OVERHEAD

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        # Refused before a byte of the body is read: an oversized upload never reaches the disk.
        if request.method in ("POST", "PUT", "PATCH") and "mcp" not in request.url.path.split("/"):  # MCP streams
            declared = request.headers.get("content-length")
            if declared is None and "chunked" in request.headers.get("transfer-encoding", ""):
                return _error(411, "length_required", "Send a Content-Length with the request body")
            if declared is not None and int(declared) > max_body:
                return _error(413, "too_large", f"The request body is {int(declared):,} bytes; the limit is "
                                                f"{max_body:,} (max_file_mb plus form overhead)")
        return await call_next(request)


def install_cors(app: FastAPI, settings: ServerSettings) -> None:
    if settings.origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.origins, allow_methods=["*"],
                           allow_headers=["*"])


def refusal(exc: SpanqaError) -> JSONResponse:
    """A spanqa error as every route answers it: its JSON and its status (429 with Retry-After)."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse({"error": error_json(exc)}, status_code=http_status(exc), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error as JSON `{"error": {"type", "message"}}`; never a traceback."""
    @app.exception_handler(SpanqaError)
    async def spanqa_error(_request, exc: SpanqaError):
        return refusal(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request, exc: RequestValidationError):
        # The body failed its model before the service saw it: the service's own refusal, word for word.
        return refusal(invalid_request([{**e, "loc": e["loc"][1:] or e["loc"]} for e in exc.errors()]))  # no "body"

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")  # as NotFound
        return _error(exc.status_code, kind, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        # Never a stack trace to the client: a reference it can quote, and the trace in the server's log.
        reference = uuid.uuid4().hex[:12]
        _LOG.error("unexpected error %s on %s %s", reference, request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", f"Something went wrong on the server (reference {reference}); "
                                             "its log has the details")


def _json_route(app: FastAPI, path: str, model: type[BaseModel], run: Callable[[dict], Result], doc: str,
                tags: list[str]) -> None:
    """POST `path`: a body of `model` (validated, and described at /docs), answered with `run`'s JSON."""
    def endpoint(body) -> dict:
        return run(body.model_dump(exclude_none=True)).data

    endpoint.__annotations__ = {"body": model, "return": dict}  # the model is built at run time from the settings
    endpoint.__doc__ = doc
    app.post(path, tags=tags, name=path.rsplit("/", 1)[-1])(endpoint)


def add_health(app: FastAPI, state: dict, details: Callable[[], dict], metrics: Metrics) -> None:
    """/healthz (the process answers), /readyz (models loaded; `details` beside the status) and /metrics."""
    @app.get("/healthz", tags=["service"])
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"])
    def ready():
        if not state["ready"]:
            return _error(503, "not_ready", "Models are still loading")
        return {"status": "ready", **details()}

    @app.get("/metrics", tags=["service"], response_class=Response)
    def exposition() -> Response:
        """Requests, latencies, abstentions, errors and batch sizes in Prometheus' text format."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)


def add_collection_routes(app: FastAPI, service: Service, prefix: str,
                          observe: Callable[[str, Result], None] | None = None) -> None:
    """One collection's REST routes under `prefix` ("/v1" on a one-collection server); `observe` sees each answer
    and search (the metrics count abstentions)."""
    limit = service.settings.collection_limits().max_file_bytes

    def run(operation: str, arguments: dict) -> Result:
        result = service.call(operation, arguments)
        if observe is not None:
            observe(operation, result)
        return result

    for operation, doc in (
            ("ask", "Route the message and answer it: from the documents, or in kind (a greeting gets a greeting)."),
            ("answer", "Answer from the documents without routing (what the document_qa tool does)."),
            ("search", "The passages most relevant to a query, with their sources."),
            ("classify", "The message's intent, with a calibrated confidence."),
            ("feedback", "Record a thumbs-up (1) or thumbs-down (0) on a response.")):
        tags = ["documents"] if operation == "feedback" else ["answers"]
        _json_route(app, f"{prefix}/{operation}", getattr(service.inputs, operation),
                    lambda arguments, operation=operation: run(operation, arguments), doc, tags)

    @app.get(f"{prefix}/documents", tags=["documents"])
    def documents() -> dict:
        return service.call("documents").data

    @app.get(prefix + "/documents/{document_id}", tags=["documents"])
    def document(document_id: str) -> dict:
        return service.call("document", {"document_id": document_id}).data

    @app.get(prefix + "/documents/{document_id}/view", tags=["documents"], response_class=HTMLResponse)
    def view(document_id: str, start: int, end: int, context: int | None = None) -> HTMLResponse:
        """The document with the span start…end marked (`<mark id="answer">`), as every answer's and passage's
        `view` link opens it."""
        data = service.call("view", {"document_id": document_id, "start": start, "end": end,
                                     "context": context}).data
        return HTMLResponse(span_view_html(data, data["page_image"]), headers=_INERT)

    @app.get(prefix + "/documents/{document_id}/pages/{page}.png", tags=["documents"], response_class=Response)
    def page_image(document_id: str, page: int, start: int, end: int) -> Response:
        """Page `page` of a PDF document, rendered from its original file, the span start…end boxed in a
        translucent highlight (every PDF answer's and passage's `page_image` link)."""
        image = service.call("page", {"document_id": document_id, "page": page, "start": start, "end": end}).value
        return Response(image.png, media_type="image/png", headers=_INERT)

    @app.post(f"{prefix}/documents", tags=["documents"])
    async def upload(files: Annotated[list[UploadFile], File(description="documents to add")]) -> dict:
        """Add documents (multipart, field `files`). Names are labels only: nothing is written outside the
        collection."""
        payload = [(f.filename or "upload", await f.read(limit + 1)) for f in files]
        return (await anyio.to_thread.run_sync(service.ingest, payload)).data

    @app.delete(prefix + "/documents/{document_id}", tags=["documents"])
    def delete(document_id: str):
        service.remove(document_id)
        return Response(status_code=204)


def add_openai_routes(app: FastAPI, service_for: Callable[[Request, str], Service],
                      model_ids: Callable[[Request], list[str]]) -> None:
    """/v1/models (`model_ids`: the models the caller may use) and /v1/chat/completions, answered by the service
    `service_for(request, model)` names (it refuses a model the caller may not use)."""
    @app.get("/v1/models", tags=["openai"])
    def models(request: Request) -> dict:
        return {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "spanqa"}
                                           for model in model_ids(request)]}

    @app.post("/v1/chat/completions", tags=["openai"])
    def chat(body: ChatRequest, request: Request):
        """The routed reply as the assistant message; the full response JSON (answers, citations, passages)
        travels beside it under `spanqa`."""
        service = service_for(request, body.model)
        question, history = _question_and_history(body.messages)
        response = service.ask(question, history=history or None).data
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not body.stream:
            return {"id": completion_id, "object": "chat.completion", "created": created, "model": body.model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": response["reply"]}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    "spanqa": response}
        return StreamingResponse(_chunks(completion_id, created, body.model, response),
                                 media_type="text/event-stream")


def _chunks(completion_id: str, created: int, model: str, response: dict):
    """OpenAI's chunk stream: the role, the reply, then the stop with the response JSON, then [DONE]."""
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    yield chunk({"content": response["reply"]})
    yield chunk({}, "stop", spanqa=response)
    yield "data: [DONE]\n\n"

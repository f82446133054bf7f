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
from spanqa.plugin.doors.service import SCHEMA_VERSION, Result, Service, error_json, http_status, invalid_request
from spanqa.ui.render import span_view_html
from starlette.exceptions import HTTPException

from spanqa import __version__
from spanqa.errors import InputError, NotFound, SpanqaError
from spanqa.settings import ServerSettings

__all__ = ["MODEL_ID", "create_app"]

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
    model: str = Field(default=MODEL_ID, description=f"always {MODEL_ID!r}")
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
    mcp = build_mcp_server(service)
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    sessions = StreamableHTTPSessionManager(app=mcp, stateless=True)
    state: dict[str, Any] = {"ready": False}
    roots = service.settings.sync_roots
    follower = FolderFollower(roots, service, on_outcome=_log_sync) if roots else None

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await anyio.to_thread.run_sync(service.warm_up)
        state["ready"] = True
        if follower is not None:
            follower.start()
        try:
            async with sessions.run():
                yield
        finally:
            if follower is not None:
                follower.stop()

    app = FastAPI(title="spanqa", version=__version__, lifespan=lifespan,
                  description="Extractive, cited question answering over your documents. Every response carries "
                              f"the versioned response JSON (schema {SCHEMA_VERSION}).")
    _install_guards(app, settings, service.settings.collection_limits().max_file_bytes + _FORM_OVERHEAD)

    async def mcp_endpoint(scope, receive, send):
        await sessions.handle_request(scope, receive, send)

    app.mount("/mcp", mcp_endpoint)
    _add_rest(app, service, state)
    _add_sync(app, follower)
    _add_openai(app, service)
    return app


def _log_sync(outcome) -> None:
    """A line on stderr for each sync that changed something or was refused."""
    if isinstance(outcome, SpanqaError):
        print(f"spanqa serve: sync refused: {outcome}", file=sys.stderr, flush=True)
    elif outcome.report.changed:
        print(f"spanqa serve: sync: {outcome.report.summary()}", file=sys.stderr, flush=True)


def _add_sync(app: FastAPI, follower: FolderFollower | None) -> None:
    def configured() -> FolderFollower:
        if follower is None:
            raise NotFound("This server follows no folders: start it with `spanqa serve --sync PATH` to sync them")
        return follower

    @app.post("/v1/sync", tags=["documents"])
    async def sync_now() -> dict:
        """Sync the folders the server follows now (they are also synced as they change)."""
        return (await anyio.to_thread.run_sync(configured().sync_now)).to_json()

    @app.get("/v1/sync", tags=["documents"])
    def last_sync() -> dict:
        """The folders the server follows and what their last sync did."""
        return configured().status()


def _install_guards(app: FastAPI, settings: ServerSettings, max_body: int) -> None:
    key = settings.api_key.encode()

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        # Refused before a byte of the body is read: an oversized upload never reaches the disk.
        if request.method in ("POST", "PUT", "PATCH") and not request.url.path.startswith("/mcp"):
            declared = request.headers.get("content-length")
            if declared is None and "chunked" in request.headers.get("transfer-encoding", ""):
                return _error(411, "length_required", "Send a Content-Length with the request body")
            if declared is not None and int(declared) > max_body:
                return _error(413, "too_large", f"The request body is {int(declared):,} bytes; the limit is "
                                                f"{max_body:,} (max_file_mb plus form overhead)")
        return await call_next(request)

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if key:
            given = request.headers.get("authorization", "")
            token = given[7:].encode() if given.lower().startswith("bearer ") else b""
            if not hmac.compare_digest(token, key):
                return _error(401, "unauthorized", "Missing or wrong API key: send 'Authorization: Bearer <key>'")
        return await call_next(request)

    @app.exception_handler(SpanqaError)
    async def spanqa_error(_request, exc: SpanqaError):
        return JSONResponse({"error": error_json(exc)}, status_code=http_status(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request, exc: RequestValidationError):
        # The body failed its model before the service saw it: the service's own refusal, word for word.
        refusal = invalid_request([{**e, "loc": e["loc"][1:] or e["loc"]} for e in exc.errors()])  # drop "body"
        return JSONResponse({"error": error_json(refusal)}, status_code=http_status(refusal))

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

    if settings.origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.origins, allow_methods=["*"],
                           allow_headers=["*"])


def _json_route(app: FastAPI, path: str, model: type[BaseModel], run: Callable[[dict], Result], doc: str,
                tags: list[str]) -> None:
    """POST `path`: a body of `model` (validated, and described at /docs), answered with `run`'s JSON."""
    def endpoint(body) -> dict:
        return run(body.model_dump(exclude_none=True)).data

    endpoint.__annotations__ = {"body": model, "return": dict}  # the model is built at run time from the settings
    endpoint.__doc__ = doc
    app.post(path, tags=tags, name=path.rsplit("/", 1)[-1])(endpoint)


def _add_rest(app: FastAPI, service: Service, state: dict) -> None:
    limit = service.settings.collection_limits().max_file_bytes

    @app.get("/healthz", tags=["service"])
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"])
    def ready():
        if not state["ready"]:
            return _error(503, "not_ready", "Models are still loading")
        return {"status": "ready", "documents": service.passage_count()}

    for operation, doc in (
            ("ask", "Route the message and answer it: from the documents, or in kind (a greeting gets a greeting)."),
            ("answer", "Answer from the documents without routing (what the document_qa tool does)."),
            ("search", "The passages most relevant to a query, with their sources."),
            ("classify", "The message's intent, with a calibrated confidence."),
            ("feedback", "Record a thumbs-up (1) or thumbs-down (0) on a response.")):
        tags = ["documents"] if operation == "feedback" else ["answers"]
        _json_route(app, f"/v1/{operation}", getattr(service.inputs, operation),
                    lambda arguments, operation=operation: service.call(operation, arguments), doc, tags)

    @app.get("/v1/documents", tags=["documents"])
    def documents() -> dict:
        return service.call("documents").data

    @app.get("/v1/documents/{document_id}", tags=["documents"])
    def document(document_id: str) -> dict:
        return service.call("document", {"document_id": document_id}).data

    @app.get("/v1/documents/{document_id}/view", tags=["documents"], response_class=HTMLResponse)
    def view(document_id: str, start: int, end: int, context: int | None = None) -> HTMLResponse:
        """The document with the span start…end marked (`<mark id="answer">`), as every answer's and passage's
        `view` link opens it."""
        data = service.call("view", {"document_id": document_id, "start": start, "end": end,
                                     "context": context}).data
        return HTMLResponse(span_view_html(data, data["page_image"]), headers=_INERT)

    @app.get("/v1/documents/{document_id}/pages/{page}.png", tags=["documents"], response_class=Response)
    def page_image(document_id: str, page: int, start: int, end: int) -> Response:
        """Page `page` of a PDF document, rendered from its original file, the span start…end boxed in a
        translucent highlight (every PDF answer's and passage's `page_image` link)."""
        image = service.call("page", {"document_id": document_id, "page": page, "start": start, "end": end}).value
        return Response(image.png, media_type="image/png", headers=_INERT)

    @app.post("/v1/documents", tags=["documents"])
    async def upload(files: Annotated[list[UploadFile], File(description="documents to add")]) -> dict:
        """Add documents (multipart, field `files`). Names are labels only: nothing is written outside the
        collection."""
        payload = [(f.filename or "upload", await f.read(limit + 1)) for f in files]
        return (await anyio.to_thread.run_sync(service.ingest, payload)).data

    @app.delete("/v1/documents/{document_id}", tags=["documents"])
    def delete(document_id: str):
        service.remove(document_id)
        return Response(status_code=204)


def _add_openai(app: FastAPI, service: Service) -> None:
    @app.get("/v1/models", tags=["openai"])
    def models() -> dict:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "spanqa"}]}

    @app.post("/v1/chat/completions", tags=["openai"])
    def chat(body: ChatRequest):
        """The routed reply as the assistant message; the full response JSON (answers, citations, passages)
        travels beside it under `spanqa`."""
        question, history = _question_and_history(body.messages)
        response = service.ask(question, history=history or None).data
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not body.stream:
            return {"id": completion_id, "object": "chat.completion", "created": created, "model": MODEL_ID,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": response["reply"]}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    "spanqa": response}
        return StreamingResponse(_chunks(completion_id, created, response), media_type="text/event-stream")


def _chunks(completion_id: str, created: int, response: dict):
    """OpenAI's chunk stream: the role, the reply, then the stop with the response JSON, then [DONE]."""
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    yield chunk({"content": response["reply"]})
    yield chunk({}, "stop", spanqa=response)
    yield "data: [DONE]\n\n"

"""`spanqa serve`: one ASGI app with every network door on one engine.

    /mcp                      MCP over streamable HTTP (the same tools and resources as `spanqa mcp`)
    /v1/chat/completions      OpenAI-compatible chat (streaming and not): the routed reply, citations as data
    /v1/models                the one model, "spanqa"
    /v1/ask /v1/search /v1/classify, /v1/documents (list, upload, delete), /v1/feedback     REST
    /healthz /readyz          liveness, and readiness (models loaded)
    /docs /openapi.json       the API, described

Every request passes the same checks: the bearer API key when one is set (required off loopback), the upload
limits of the settings, the argument models of plugin/doors/schemas.py (an unknown or misspelled field is refused
by name). Every error is JSON, `{"error": {"type", "message"}}`: `type` is a snake_case name (`input_error`,
`collection_error`, `invalid_request`, `not_found`, `internal_error`, ...), the message the CLI would print, and an
unexpected failure answers 500 with a reference that the server's log holds beside the trace. Concurrent questions
share reader passes (plugin/engine/batching.py).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import time
import uuid
from typing import Annotated, Literal

import anyio
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from spanqa.plugin.doors.mcp_server import build_mcp_server
from spanqa.plugin.doors.schemas import (
    MAX_QUESTION_CHARS,
    ClassifyIntentInput,
    DocumentQAInput,
    DocumentSearchInput,
    call_tool,
    field_problems,
)
from spanqa.plugin.engine.batching import BatchingAssistant
from spanqa.plugin.engine.response import SCHEMA_VERSION, documents_json, response_json
from spanqa.retriever.records import Feedback
from starlette.exceptions import HTTPException

from spanqa import __version__
from spanqa.errors import CollectionError, InputError, ModelLoadError, SpanqaError
from spanqa.settings import ServerSettings

__all__ = ["MODEL_ID", "create_app"]

MODEL_ID = "spanqa"
_STATUS = {InputError: 400, CollectionError: 503, ModelLoadError: 500}
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around an upload's bytes


_LOG = logging.getLogger("spanqa.serve")


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def error_type(exc: SpanqaError) -> str:
    """The `type` of an engine error: its class name in snake_case (InputError → input_error)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def _status_of(exc: SpanqaError) -> int:
    return next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)


class ChatMessage(BaseModel):
    role: str = Field(description="system, user, assistant or tool")
    content: str | list[dict] | None = Field(default=None, description="text, or OpenAI content parts")


class ChatRequest(BaseModel):
    model: str = Field(default=MODEL_ID, description=f"always {MODEL_ID!r}")
    messages: list[ChatMessage] = Field(min_length=1, description="the conversation; the last user message is "
                                                                  "answered")
    stream: bool = Field(default=False, description="server-sent events, as OpenAI streams")


class FeedbackInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="the message that was answered")
    rating: Literal[0, 1] = Field(description="1 = helpful, 0 = not helpful")
    route: str = Field(default="documents", description="the response's route (documents, fallback, help, reply), "
                                                        "or abstained")
    answer: str = Field(default="", description="the answer text rated")
    source: str = Field(default="", description="its source")
    passage_id: int | None = Field(default=None, description="its passage id")
    score: float | None = Field(default=None, ge=0.0, le=1.0, description="its score as shown")


def _last_user_text(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            if isinstance(message.content, list):
                return " ".join(str(part.get("text", "")) for part in message.content if part.get("type") == "text")
            return message.content or ""
    raise InputError("messages: no user message to answer")


def create_app(assistant, settings: ServerSettings | None = None) -> FastAPI:
    """The app around `assistant` (micro-batched across requests unless `settings.max_batch` is 1)."""
    settings = settings or ServerSettings.from_env()
    if settings.max_batch > 1 and not isinstance(assistant, BatchingAssistant):
        assistant = BatchingAssistant(assistant, settings.batch_window_ms, settings.max_batch)
    mcp = build_mcp_server(assistant)
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    sessions = StreamableHTTPSessionManager(app=mcp, stateless=True)
    state = {"ready": False}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await anyio.to_thread.run_sync(assistant.warm_up)
        state["ready"] = True
        async with sessions.run():
            yield

    app = FastAPI(title="spanqa", version=__version__, lifespan=lifespan,
                  description="Extractive, cited question answering over your documents. Every response carries "
                              f"the versioned response JSON (schema {SCHEMA_VERSION}).")
    _install_guards(app, settings, assistant.settings.collection_limits().max_file_bytes + _FORM_OVERHEAD)

    async def mcp_endpoint(scope, receive, send):
        await sessions.handle_request(scope, receive, send)

    app.mount("/mcp", mcp_endpoint)
    _add_rest(app, assistant, state)
    _add_openai(app, assistant)
    return app


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
        return _error(_status_of(exc), error_type(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request, exc: RequestValidationError):
        errors = [{**e, "loc": e["loc"][1:] or e["loc"]} for e in exc.errors()]  # drop the leading "body"
        return _error(422, "invalid_request", f"Invalid request body — {field_problems(errors)}. Fix these fields "
                                              "and send the request again (the API is described at /docs).")

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
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


def _add_rest(app: FastAPI, assistant, state: dict) -> None:
    limit = assistant.settings.collection_limits().max_file_bytes

    @app.get("/healthz", tags=["service"])
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"])
    def ready():
        if not state["ready"]:
            return _error(503, "not_ready", "Models are still loading")
        return {"status": "ready", "documents": len(assistant.collection)}

    @app.post("/v1/ask", tags=["answers"])
    def ask(body: DocumentQAInput) -> dict:
        """Route the message and answer it: from the documents, or in kind (a greeting gets a greeting)."""
        return response_json(assistant.respond(body.question, top_k=body.top_k, threshold=body.min_score))

    @app.post("/v1/search", tags=["answers"])
    def search(body: DocumentSearchInput) -> dict:
        return call_tool(assistant, "document_search", body.model_dump(exclude_none=True))[0]

    @app.post("/v1/classify", tags=["answers"])
    def classify(body: ClassifyIntentInput) -> dict:
        return call_tool(assistant, "classify_intent", body.model_dump())[0]

    @app.get("/v1/documents", tags=["documents"])
    def documents() -> dict:
        return documents_json(assistant.collection.documents())

    @app.post("/v1/documents", tags=["documents"])
    async def upload(files: Annotated[list[UploadFile], File(description="documents to add")]) -> dict:
        """Add documents (multipart, field `files`). Names are labels only: nothing is written outside the
        collection."""
        payload = []
        for f in files:
            data = await f.read(limit + 1)
            if len(data) > limit:
                raise InputError(f"{f.filename} is larger than {limit:,} bytes (max_file_mb); nothing was added")
            payload.append((f.filename or "upload", data))
        report = await anyio.to_thread.run_sync(assistant.collection.ingest_bytes, payload)
        return {"schema": SCHEMA_VERSION, **report.to_dict()}

    @app.delete("/v1/documents/{document_id}", tags=["documents"])
    def delete(document_id: str):
        if not assistant.collection.delete(document_id):
            return _error(404, "not_found", f"No document {document_id!r} in this collection")
        return Response(status_code=204)

    @app.post("/v1/feedback", tags=["answers"])
    def feedback(body: FeedbackInput) -> dict:
        record = Feedback(body.message, body.answer, body.source, body.rating, body.passage_id, body.score,
                          body.route)
        return {"schema": SCHEMA_VERSION, "id": assistant.collection.add_feedback(record)}


def _add_openai(app: FastAPI, assistant) -> None:
    @app.get("/v1/models", tags=["openai"])
    def models() -> dict:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "spanqa"}]}

    @app.post("/v1/chat/completions", tags=["openai"])
    def chat(body: ChatRequest):
        """The routed reply as the assistant message; the full response JSON (answers, citations, passages)
        travels beside it under `spanqa`."""
        message = _last_user_text(body.messages)
        response = response_json(assistant.respond(message))
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

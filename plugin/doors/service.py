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
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from spanqa.plugin.engine.conversation import history_problems
from spanqa.plugin.engine.protocol import Engine
from spanqa.plugin.engine.response import (
    SCHEMA_VERSION,
    documents_json,
    hits_json,
    intent_json,
    response_json,
)
from spanqa.plugin.engine.router import INTENTS
from spanqa.retriever.records import Feedback

from spanqa.errors import (
    CollectionError,
    InputError,
    InvalidRequest,
    ModelLoadError,
    NotFound,
    SpanqaError,
)
from spanqa.settings import SEARCH_MODES, Settings

__all__ = ["HistoryMessage", "OPERATIONS", "TOOLS", "RequestModels", "Result", "Service", "error_json",
           "error_type", "field_problems", "http_status", "request_models"]


# --- requests -------------------------------------------------------------------------------------------------

class _Arguments(BaseModel):
    # A misspelled or unknown argument is refused with its name, never silently ignored.
    model_config = ConfigDict(extra="forbid")


def _text(settings: Settings, description: str) -> Any:
    return (str, Field(description=description, min_length=1, max_length=settings.max_question_chars))


def _options(settings: Settings, count: str) -> dict[str, Any]:
    """What a question may tune: passages to read, the answer threshold, the retrieval mode."""
    return {
        count: (int | None, Field(default=None, ge=1, le=settings.max_top_k,
                                  description=f"How many passages to read (default {settings.top_k}, at most "
                                              f"{settings.max_top_k}). Raise it for broad questions.")),
        "min_score": (float | None, Field(default=None, ge=0.0, le=1.0,
                                          description="Lowest confidence to accept an answer (default "
                                                      f"{settings.answer_threshold}). Raise it when a wrong answer "
                                                      "would be costly.")),
        "mode": _mode(settings),
    }


def _mode(settings: Settings) -> Any:
    return (Literal[SEARCH_MODES] | None,  # type: ignore[valid-type]
            Field(default=None, description=f"{' | '.join(SEARCH_MODES)} (default {settings.retrieval_mode}): hybrid "
                                            "for most queries; bm25 for exact codes or names; dense for paraphrases."))


class HistoryMessage(_Arguments):
    """One earlier message of the conversation, in OpenAI's shape."""

    role: Literal["user", "assistant"] = Field(description="who said it: user or assistant")
    content: str = Field(description="what was said")
    response: dict[str, Any] | None = Field(default=None, description="the response JSON spanqa gave for an "
                                                                      "assistant message, when the client kept it")


def _history(settings: Settings) -> Any:
    return (list[HistoryMessage] | None,
            Field(default=None, max_length=settings.max_history_turns,
                  description="The conversation so far, oldest first, as OpenAI-style {role, content} messages (at "
                              f"most {settings.max_history_turns} and {settings.max_history_chars:,} characters). A "
                              "follow-up such as 'and its default?' is answered in its light; omit it when the "
                              "question already stands alone."))


@dataclass(frozen=True)
class RequestModels:
    """One argument model per operation that takes arguments, built from one `Settings`."""

    ask: type[BaseModel]
    answer: type[BaseModel]
    search: type[BaseModel]
    classify: type[BaseModel]
    remove: type[BaseModel]
    document: type[BaseModel]
    feedback: type[BaseModel]


@lru_cache(maxsize=16)
def request_models(settings: Settings) -> RequestModels:
    """The argument models for `settings`' limits (built once per distinct settings)."""
    question = _text(settings, "The user's question, in natural language, to answer from their documents.")
    document_id = (str, Field(min_length=1, max_length=512, description="A document's id (from the document list) "
                                                                        "or its source name."))
    return RequestModels(
        ask=create_model("AskInput", __base__=_Arguments, question=question, **_options(settings, "top_k"),
                         history=_history(settings)),
        answer=create_model("DocumentQAInput", __base__=_Arguments, question=question, **_options(settings, "top_k"),
                            history=_history(settings)),
        search=create_model(
            "DocumentSearchInput", __base__=_Arguments,
            query=_text(settings, "What to look for in the documents: keywords or a question."),
            k=(int | None, Field(default=None, ge=1, le=settings.max_results,
                                 description=f"How many passages to return (default {settings.top_k}, at most "
                                             f"{settings.max_results}).")),
            mode=_mode(settings)),
        classify=create_model("ClassifyIntentInput", __base__=_Arguments,
                              message=_text(settings, "A user message to classify.")),
        remove=create_model("RemoveDocumentInput", __base__=_Arguments, document_id=document_id),
        document=create_model("DocumentInput", __base__=_Arguments, document_id=document_id),
        feedback=create_model(
            "FeedbackInput", __base__=_Arguments,
            message=_text(settings, "The message that was answered."),
            rating=(Literal[0, 1], Field(description="1 = helpful, 0 = not helpful")),
            route=(str, Field(default="documents", max_length=32,
                              description="The response's route (documents, fallback, help, reply), or abstained.")),
            answer=(str, Field(default="", max_length=100_000, description="The answer text rated.")),
            resolved=(str | None, Field(default=None, max_length=100_000,
                                        description="The question as spanqa understood it (the response's "
                                                    "resolved.question), when the message was a follow-up: it is "
                                                    "what is kept, so a wrong interpretation is what a thumbs-down "
                                                    "records.")),
            source=(str, Field(default="", max_length=4096, description="Its source.")),
            passage_id=(int | None, Field(default=None, description="Its passage id.")),
            score=(float | None, Field(default=None, ge=0.0, le=1.0, description="Its score as shown."))),
    )


# Which setting each bounded field's limit comes from, so that a refusal names the setting to change.
_LIMIT_SETTINGS = {"question": "max_question_chars", "query": "max_question_chars", "message": "max_question_chars",
                   "top_k": "max_top_k", "k": "max_results", "history": "max_history_turns"}


def field_problems(errors: list[dict]) -> str:
    """Each bad field, what is wrong with it and the limit it broke, in one line: "top_k: Input should be less
    than or equal to 50 (le=50, the max_top_k setting); mode: Extra inputs are not permitted"."""
    problems = []
    for item in errors:
        location = [str(part) for part in item.get("loc", ())]
        where = ".".join(location) or "input"
        limits = [f"{k}={v}" for k, v in (item.get("ctx") or {}).items() if k != "error"]
        if limits and location and location[-1] in _LIMIT_SETTINGS and item.get("type") in (
                "less_than_equal", "string_too_long", "too_long"):
            limits.append(f"the {_LIMIT_SETTINGS[location[-1]]} setting")
        problems.append(f"{where}: {item.get('msg', 'invalid')}" + (f" ({', '.join(limits)})" if limits else ""))
    return "; ".join(problems)


def invalid_request(errors: list[dict]) -> InvalidRequest:
    """The one refusal of arguments that do not fit their model, whichever door they came through."""
    return InvalidRequest(f"Invalid arguments — {field_problems(errors)}. Fix these arguments and try again.")


# --- errors ---------------------------------------------------------------------------------------------------

_HTTP_STATUS = ((InvalidRequest, 422), (NotFound, 404), (InputError, 400), (CollectionError, 503),
                (ModelLoadError, 500))


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
OPERATIONS = ("ask", "answer", "search", "classify", "documents", "document", "remove", "ingest", "feedback")


class Service:
    """The operations every door offers, on one engine (an `Assistant`, or a `BatchingAssistant` in a server)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.inputs = request_models(engine.settings)

    @classmethod
    def open(cls, collection=None, **given) -> Service:
        """The Python door: settings from the defaults, the SPANQA_* environment and `given`, resolved once."""
        from spanqa.plugin.engine.assistant import Assistant

        return cls(Assistant(collection, settings=Settings.from_env(**given)))

    def parse(self, operation: str, arguments: dict[str, Any] | None) -> BaseModel:
        """`arguments` checked against the operation's model (None values mean "not given"); InvalidRequest names
        each bad field."""
        model = getattr(self.inputs, operation)
        if not isinstance(arguments, dict):
            raise InvalidRequest(f"Invalid arguments — expected an object of {', '.join(model.model_fields)}, got "
                                 f"{type(arguments).__name__}. Fix these arguments and try again.")
        try:
            parsed = model.model_validate({k: v for k, v in arguments.items() if v is not None})
        except ValidationError as exc:
            raise invalid_request(exc.errors()) from None
        problems = history_problems(getattr(parsed, "history", None) or [], self.settings)
        if problems:
            raise InvalidRequest(f"Invalid arguments — {'; '.join(problems)}. Fix these arguments and try again.")
        return parsed

    def call(self, operation: str, arguments: dict[str, Any] | None = None) -> Result:
        """Run `operation` (one of OPERATIONS but ingest) with JSON-style arguments."""
        if operation not in OPERATIONS or operation == "ingest":
            raise NotFound(f"Unknown operation {operation!r}; spanqa's are {', '.join(OPERATIONS)}")
        handler = getattr(self, f"_{operation}")
        if operation == "documents":
            return handler()
        return handler(self.parse(operation, {} if arguments is None else arguments))

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
        parsed = [self.parse("ask", {"question": q, **options}) for q in questions]
        if not parsed:
            return []
        first = parsed[0]
        responses = self.engine.respond_many([p.question for p in parsed], top_k=first.top_k,
                                             threshold=first.min_score, mode=first.mode,
                                             histories=[p.history for p in parsed])
        return [Result(response_json(r), r) for r in responses]

    def classify(self, message: str) -> Result:
        return self.call("classify", {"message": message})

    def remove(self, document_id: str) -> Result:
        return self.call("remove", {"document_id": document_id})

    # --- the operations ---------------------------------------------------------------------------------------

    def _ask(self, args) -> Result:
        response = self.engine.respond(args.question, top_k=args.top_k, threshold=args.min_score, mode=args.mode,
                                       history=args.history)
        return Result(response_json(response), response)

    def _answer(self, args) -> Result:
        response = self.engine.answer(args.question, top_k=args.top_k, threshold=args.min_score, mode=args.mode,
                                      history=args.history)
        return Result(response_json(response), response)

    def _search(self, args) -> Result:
        hits = self.engine.search(args.query, k=args.k, mode=args.mode)
        return Result(hits_json(args.query, hits), hits)

    def _classify(self, args) -> Result:
        intent = self.engine.classify(args.message)
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

    def _remove(self, args) -> Result:
        if not self.engine.collection.delete(args.document_id):
            raise self._no_document(args.document_id)
        return Result({"schema": SCHEMA_VERSION, "removed": args.document_id})

    def _feedback(self, args) -> Result:
        # A follow-up is kept as it was understood: what was answered, and what a thumbs-down disputes.
        record = Feedback(args.resolved or args.message, args.answer, args.source, args.rating, args.passage_id,
                          args.score, args.route)
        return Result({"schema": SCHEMA_VERSION, "id": self.engine.collection.add_feedback(record)}, record)

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

    def _no_document(self, document_id: str) -> NotFound:
        return NotFound(f"No document {document_id!r} in this collection (list them with `spanqa docs list` or "
                             "GET /v1/documents)")

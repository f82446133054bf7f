"""The arguments every door takes, defined once: the LangChain tools, the MCP tools and the HTTP API validate
with these models, so a field has one name, one description and one limit everywhere, and a refusal names them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spanqa.settings import SEARCH_MODES, SearchMode, Settings

__all__ = ["ClassifyIntentInput", "DocumentQAInput", "DocumentSearchInput", "PASSAGE_PREVIEW_CHARS",
           "TOOL_DESCRIPTIONS", "TOOL_INPUTS", "call_tool", "field_problems", "validation_message"]

_SETTINGS = Settings.from_env()
MAX_QUESTION_CHARS = _SETTINGS.max_question_chars


def field_problems(errors: list[dict]) -> str:
    """Each bad field, what is wrong with it and the limit it broke, in one line: "top_k: Input should be less
    than or equal to 50 (le=50); mode: Extra inputs are not permitted"."""
    problems = []
    for item in errors:
        where = ".".join(str(part) for part in item.get("loc", ())) or "input"
        limits = ", ".join(f"{k}={v}" for k, v in (item.get("ctx") or {}).items())
        problems.append(f"{where}: {item.get('msg', 'invalid')}" + (f" ({limits})" if limits else ""))
    return "; ".join(problems)


def validation_message(error: Exception) -> str:
    """A tool-argument error the agent can act on: each bad field, what is wrong and the limit."""
    if not isinstance(error, ValidationError):
        return f"Invalid tool input: {error}"
    return f"Invalid tool input — {field_problems(error.errors())}. Fix these arguments and call the tool again."


class _Arguments(BaseModel):
    # A misspelled or unknown argument is refused with its name, never silently ignored.
    model_config = ConfigDict(extra="forbid")


class DocumentQAInput(_Arguments):
    question: str = Field(description="The user's question, in natural language, to answer from their documents.",
                          min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int | None = Field(default=None, ge=1, le=50,
                              description=f"How many passages to read (default {_SETTINGS.top_k}). Raise it for "
                                          "broad questions.")
    min_score: float | None = Field(default=None, ge=0.0, le=1.0,
                                    description="Lowest confidence to accept an answer (default "
                                                f"{_SETTINGS.answer_threshold}). Raise it when a wrong answer "
                                                "would be costly.")


class DocumentSearchInput(_Arguments):
    query: str = Field(description="What to look for in the documents: keywords or a question.",
                       min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(default=None, ge=1, le=50,
                          description=f"How many passages to return (default {_SETTINGS.top_k}).")
    mode: SearchMode | None = Field(
        default=None, description=f"{' | '.join(SEARCH_MODES)} (default {_SETTINGS.retrieval_mode}): hybrid for most "
                                  "queries; bm25 for exact codes or names; dense for paraphrases.")


class ClassifyIntentInput(_Arguments):
    message: str = Field(description="A user message to classify.", min_length=1, max_length=MAX_QUESTION_CHARS)


TOOL_DESCRIPTIONS = {
    "document_qa": "Answer a factual question from the user's own document collection. Returns a verbatim quote "
                   "with its source document and page, or abstained=true when the documents do not contain the "
                   "answer. Use it for any question about the user's files.",
    "document_search": "Find the passages of the user's documents most relevant to a query, with their sources. "
                       "Use it to browse or when document_qa finds no single answer.",
    "classify_intent": "Classify a user message as document_question, greeting, thanks, goodbye, help, smalltalk "
                       "or out_of_scope, with a calibrated confidence.",
}
TOOL_INPUTS: dict[str, type[BaseModel]] = {"document_qa": DocumentQAInput, "document_search": DocumentSearchInput,
                                           "classify_intent": ClassifyIntentInput}

PASSAGE_PREVIEW_CHARS = 600  # passage text a tool result carries: enough to check a quote, not a whole chapter


def call_tool(assistant, name: str, arguments: dict) -> tuple[dict, object]:
    """Validate `arguments` for tool `name` and run it on `assistant`: (the versioned JSON, the typed result).

    Raises pydantic's ValidationError for bad arguments (`validation_message` words it), SpanqaError for what
    the engine refuses, and KeyError for an unknown tool.
    """
    from spanqa.plugin.engine.response import SCHEMA_VERSION, hits_json, intent_json, response_json

    args = TOOL_INPUTS[name].model_validate(arguments)
    if isinstance(args, DocumentQAInput):
        response = assistant.answer(args.question, top_k=args.top_k, threshold=args.min_score)
        return response_json(response, PASSAGE_PREVIEW_CHARS), response
    if isinstance(args, DocumentSearchInput):
        hits = assistant.search(args.query, k=args.k, mode=args.mode)
        return hits_json(args.query, hits, PASSAGE_PREVIEW_CHARS), hits
    intent = assistant.classify(args.message)
    return {"schema": SCHEMA_VERSION, "intent": intent_json(intent)}, intent

"""The request contract: what each verb takes, checked once, against one `Settings`.

Every limit has one check, here, and one wording: a question's length (`max_question_chars`), how many passages a
question reads (`max_top_k`) or a search returns (`max_results`), a conversation's messages and characters
(`max_history_turns`, `max_history_chars`). The service checks a door's arguments with these models and hands
the engine the checked request; the engine's own Python verbs (`Assistant.respond`, ...) check theirs with the
same models. A refusal is an `InvalidRequest` naming each bad field and the setting whose limit it broke.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from spanqa.plugin.engine.history import ROLES, Turn

from spanqa.errors import InvalidRequest
from spanqa.settings import SEARCH_MODES, Settings

__all__ = ["HistoryMessage", "RequestModels", "clean_text", "field_problems", "invalid_request", "parse",
           "request_models", "turns"]


class _Arguments(BaseModel):
    # A misspelled or unknown argument is refused with its name, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


def clean_text(value: Any) -> Any:
    """A message as it is read: control characters (other than newlines and tabs) dropped, the ends stripped.
    What is not text is left for the type check to refuse."""
    if not isinstance(value, str):
        return value
    return "".join(ch for ch in value if ch.isprintable() or ch in "\n\t").strip()


def _text(settings: Settings, description: str) -> Any:
    return (Annotated[str, BeforeValidator(clean_text)],
            Field(description=description, min_length=1, max_length=settings.max_question_chars, strict=True))


def _mode(settings: Settings) -> Any:
    return (Literal[SEARCH_MODES] | None,  # type: ignore[valid-type]
            Field(default=None, description=f"{' | '.join(SEARCH_MODES)} (default {settings.retrieval_mode}): hybrid "
                                            "for most queries; bm25 for exact codes or names; dense for paraphrases."))


def _options(settings: Settings) -> dict[str, Any]:
    """What a question may tune: passages to read, the answer threshold, the retrieval mode."""
    return {
        "top_k": (int | None, Field(default=None, ge=1, le=settings.max_top_k,
                                    description=f"How many passages to read (default {settings.top_k}, at most "
                                                f"{settings.max_top_k}). Raise it for broad questions.")),
        "min_score": (float | None, Field(default=None, ge=0.0, le=1.0,
                                          description="Lowest confidence to accept an answer (default "
                                                      f"{settings.answer_threshold}). Raise it when a wrong answer "
                                                      "would be costly.")),
        "mode": _mode(settings),
    }


class HistoryMessage(_Arguments):
    """One earlier message of the conversation, in OpenAI's shape."""

    role: Literal[ROLES] = Field(description="who said it: user or assistant")  # type: ignore[valid-type]
    content: str = Field(description="what was said")
    response: dict[str, Any] | None = Field(default=None, description="the response JSON spanqa gave for an "
                                                                      "assistant message, when the client kept it")


def _whole_history(settings: Settings):
    """The checks on a history as a whole (each message's own are HistoryMessage's)."""
    def check(history: list[HistoryMessage] | None) -> list[HistoryMessage] | None:
        if not history:
            return history
        characters = sum(len(message.content) for message in history)
        if characters > settings.max_history_chars:
            raise ValueError(f"history has {characters:,} characters; the limit is {settings.max_history_chars:,} "
                             "(the max_history_chars setting): send fewer or shorter messages")
        if not any(message.role == "user" for message in history):
            raise ValueError("history has no user message: a conversation's earlier turns include the user's "
                             "questions")
        return history

    return check


def _history(settings: Settings) -> Any:
    return (Annotated[list[HistoryMessage] | None, AfterValidator(_whole_history(settings))],
            Field(default=None, max_length=settings.max_history_turns,
                  description="The conversation so far, oldest first, as OpenAI-style {role, content} messages (at "
                              f"most {settings.max_history_turns} and {settings.max_history_chars:,} characters). A "
                              "follow-up such as 'and its default?' is answered in its light; omit it when the "
                              "question already stands alone."))


@dataclass(frozen=True)
class RequestModels:
    """One argument model per verb that takes arguments, built from one `Settings`."""

    ask: type[BaseModel]
    answer: type[BaseModel]
    search: type[BaseModel]
    classify: type[BaseModel]
    remove: type[BaseModel]
    document: type[BaseModel]
    view: type[BaseModel]
    page: type[BaseModel]
    feedback: type[BaseModel]


@lru_cache(maxsize=16)
def request_models(settings: Settings) -> RequestModels:
    """The argument models for `settings`' limits (built once per distinct settings)."""
    question = _text(settings, "The user's question, in natural language, to answer from their documents.")
    document_id = (str, Field(min_length=1, max_length=512, description="A document's id (from the document list) "
                                                                        "or its source name."))
    start = (int, Field(ge=0, description="The span's first character (an answer's or passage's start)."))
    end = (int, Field(ge=0, description="One past the span's last character (its end)."))
    return RequestModels(
        ask=create_model("AskInput", __base__=_Arguments, question=question, **_options(settings),
                         history=_history(settings)),
        answer=create_model("DocumentQAInput", __base__=_Arguments, question=question, **_options(settings),
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
        page=create_model("PageImageInput", __base__=_Arguments, document_id=document_id, start=start, end=end,
                          page=(int, Field(ge=1, le=100_000, description="The PDF page to render (1-based)."))),
        view=create_model(
            "SpanViewInput", __base__=_Arguments, document_id=document_id, start=start, end=end,
            context=(int | None, Field(default=None, ge=0, le=100_000,
                                       description="Characters shown either side (default: the whole document)."))),
        feedback=_feedback_model(settings),
    )


def _feedback_model(settings: Settings) -> type[BaseModel]:
    return create_model(
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
        score=(float | None, Field(default=None, ge=0.0, le=1.0, description="Its score as shown.")))


def parse(settings: Settings, operation: str, arguments: Any) -> BaseModel:
    """`arguments` (a JSON-style object; None values mean "not given") checked against `operation`'s model."""
    model = getattr(request_models(settings), operation)
    if not isinstance(arguments, dict):
        raise InvalidRequest(f"Invalid arguments — expected an object of {', '.join(model.model_fields)}, got "
                             f"{type(arguments).__name__}. Fix these arguments and try again.")
    try:
        return model.model_validate({k: v for k, v in arguments.items() if v is not None})
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from None


def turns(history: list[HistoryMessage] | None) -> tuple[Turn, ...]:
    """A checked history as the Turns resolution reads."""
    return tuple(Turn(m.role, m.content, m.response) for m in history or ())


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
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" + (f" ({', '.join(limits)})" if limits else ""))
    return "; ".join(problems)


def invalid_request(errors: list[dict]) -> InvalidRequest:
    """The one refusal of arguments that do not fit their model, whichever door they came through."""
    return InvalidRequest(f"Invalid arguments — {field_problems(errors)}. Fix these arguments and try again.")

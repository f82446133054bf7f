"""spanqa as a LangChain plugin: three tools, a toolkit that builds them from one engine, and a retriever.

    toolkit = SpanqaToolkit(assistant=Assistant("my-collection"))
    agent = create_agent(model, tools=toolkit.get_tools())

Tool output is data, never prose the model could mistake for instructions: the content is a JSON object whose
string values are verbatim spans and citations, so a document that says "ignore previous instructions" reaches
the agent only as a quoted value. The artifact is the full typed response for the application.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from spanqa.plugin.engine.response import SCHEMA_VERSION, Response, hit_json, hits_json, intent_json, response_json

from spanqa.errors import SpanqaError
from spanqa.settings import SEARCH_MODES, SearchMode, Settings

__all__ = ["DocumentQATool", "DocumentSearchTool", "ClassifyIntentTool", "SpanqaToolkit", "SpanqaRetriever"]

_SETTINGS = Settings.from_env()
MAX_QUESTION_CHARS = _SETTINGS.max_question_chars
PASSAGE_PREVIEW_CHARS = 600


def _guarded(call, *args, **kwargs):
    """Run an engine call; turn every expected failure into a ToolException the agent can act on."""
    try:
        return call(*args, **kwargs)
    except (SpanqaError, ValueError) as exc:
        raise ToolException(f"{exc} Rephrase the request or change the arguments, then try again.") from exc
    except FileNotFoundError as exc:
        raise ToolException(f"A model or collection file is missing ({exc}). Tell the user to check the "
                            "spanqa installation.") from exc


def _validation_message(error: Exception) -> str:
    """A tool-argument error the agent can act on: each bad field, what is wrong and the limit."""
    if not isinstance(error, ValidationError):
        return f"Invalid tool input: {error}"
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ())) or "input"
        limits = ", ".join(f"{k}={v}" for k, v in (item.get("ctx") or {}).items())
        problems.append(f"{where}: {item.get('msg', 'invalid')}" + (f" ({limits})" if limits else ""))
    return "Invalid tool input — " + "; ".join(problems) + ". Fix these arguments and call the tool again."


class _EngineTool(BaseTool):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    assistant: Any = Field(exclude=True)
    response_format: Literal["content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True
    handle_validation_error: Any = Field(default_factory=lambda: _validation_message)

    async def _arun(self, *args: Any, run_manager: Any = None, **kwargs: Any):
        # The engine is CPU-bound and releases the GIL inside torch/FAISS: a worker thread keeps the event
        # loop free, and both paths share one implementation.
        return await asyncio.to_thread(self._run, *args, **kwargs)


class DocumentQAInput(BaseModel):
    question: str = Field(description="The user's question, in natural language, to answer from their documents.",
                          min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int | None = Field(default=None, ge=1, le=50,
                              description=f"How many passages to read (default {_SETTINGS.top_k}). Raise it for "
                                          "broad questions.")
    min_score: float | None = Field(default=None, ge=0.0, le=1.0,
                                    description="Lowest confidence to accept an answer (default "
                                                f"{_SETTINGS.answer_threshold}). Raise it when a wrong answer "
                                                "would be costly.")


class DocumentQATool(_EngineTool):
    name: str = "document_qa"
    description: str = ("Answer a factual question from the user's own document collection. Returns a verbatim "
                        "quote with its source document and page, or answered=false when the documents do not "
                        "contain the answer. Use it for any question about the user's files.")
    args_schema: type[BaseModel] = DocumentQAInput

    def _run(self, question: str, top_k: int | None = None, min_score: float | None = None,
             run_manager: Any = None) -> tuple[str, Response]:
        response = _guarded(self.assistant.answer, question, top_k=top_k, threshold=min_score)
        return json.dumps(response_json(response, PASSAGE_PREVIEW_CHARS), ensure_ascii=False), response


class DocumentSearchInput(BaseModel):
    query: str = Field(description="What to look for in the documents: keywords or a question.",
                       min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(default=None, ge=1, le=50,
                          description=f"How many passages to return (default {_SETTINGS.top_k}).")
    mode: SearchMode | None = Field(
        default=None, description=f"{' | '.join(SEARCH_MODES)} (default {_SETTINGS.retrieval_mode}): hybrid for most "
                                  "queries; bm25 for exact codes or names; dense for paraphrases.")


class DocumentSearchTool(_EngineTool):
    name: str = "document_search"
    description: str = ("Find the passages of the user's documents most relevant to a query, with their sources. "
                        "Use it to browse or when document_qa finds no single answer.")
    args_schema: type[BaseModel] = DocumentSearchInput

    def _run(self, query: str, k: int | None = None, mode: str | None = None, run_manager: Any = None):
        hits = _guarded(self.assistant.search, query, k=k, mode=mode)
        return json.dumps(hits_json(query, hits, PASSAGE_PREVIEW_CHARS), ensure_ascii=False), hits


class ClassifyIntentInput(BaseModel):
    message: str = Field(description="A user message to classify.", min_length=1, max_length=MAX_QUESTION_CHARS)


class ClassifyIntentTool(_EngineTool):
    name: str = "classify_intent"
    description: str = ("Classify a user message as document_question, greeting, thanks, goodbye, help, smalltalk "
                        "or out_of_scope, with a calibrated confidence.")
    args_schema: type[BaseModel] = ClassifyIntentInput

    def _run(self, message: str, run_manager: Any = None):
        intent = _guarded(self.assistant.classify, message)
        return json.dumps({"schema": SCHEMA_VERSION, "intent": intent_json(intent)}), intent


class SpanqaToolkit(BaseToolkit):
    """The spanqa tools, all sharing one engine (one copy of each model)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    assistant: Any = Field(exclude=True)

    def get_tools(self) -> list[BaseTool]:
        return [DocumentQATool(assistant=self.assistant), DocumentSearchTool(assistant=self.assistant),
                ClassifyIntentTool(assistant=self.assistant)]


class SpanqaRetriever(BaseRetriever):
    """The collection as a LangChain retriever: passages as Documents with their citation in metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    assistant: Any = Field(exclude=True)
    k: int = Field(default_factory=lambda: Settings.from_env().top_k)
    mode: SearchMode = Field(default_factory=lambda: Settings.from_env().retrieval_mode)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None, mode: str | None = None) -> list[LCDocument]:
        """`invoke(query, k=1)` or `invoke(query, mode="bm25")` overrides the retriever's own k and mode."""
        hits = self.assistant.search(query, k=k or self.k, mode=mode or self.mode)
        return [LCDocument(page_content=h.passage.text, id=str(h.passage.id),
                           metadata={k: v for k, v in hit_json(h).items() if k != "text"}) for h in hits]

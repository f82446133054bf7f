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
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import BaseModel, ConfigDict, Field

from plugin.assistant import Response
from plugin.config import Settings
from plugin.errors import SpanqaError
from retriever.errors import CollectionError

__all__ = ["DocumentQATool", "DocumentSearchTool", "ClassifyIntentTool", "SpanqaToolkit", "SpanqaRetriever"]

MAX_QUESTION_CHARS = Settings.from_env().max_question_chars
PASSAGE_PREVIEW_CHARS = 600


def _guarded(call, *args, **kwargs):
    """Run an engine call; turn every expected failure into a ToolException the agent can act on."""
    try:
        return call(*args, **kwargs)
    except (SpanqaError, CollectionError, ValueError) as exc:
        raise ToolException(f"{exc} Rephrase the request or change the arguments, then try again.") from exc
    except FileNotFoundError as exc:
        raise ToolException(f"A model or collection file is missing ({exc}). Tell the user to check the "
                            "spanqa installation.") from exc


def _citation(answer) -> dict:
    return {"source": Path(answer.source).name or answer.source, "page": answer.page,
            "start": answer.document_start, "end": answer.document_end}


def answer_content(response: Response) -> str:
    if response.abstained:
        closest = [{"source": Path(h.passage.source).name, "page": h.passage.page} for h in response.passages[:3]]
        return json.dumps({"answered": False, "message": response.reply, "closest_passages": closest},
                          ensure_ascii=False)
    best = response.answers[0]
    return json.dumps({"answered": True, "answer": best.text, "confidence": round(best.score, 3), **_citation(best)},
                      ensure_ascii=False)


class _EngineTool(BaseTool):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    assistant: Any = Field(exclude=True)
    response_format: Literal["content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True
    handle_validation_error: bool = True

    async def _arun(self, *args: Any, run_manager: Any = None, **kwargs: Any):
        # The engine is CPU-bound and releases the GIL inside torch/FAISS: a worker thread keeps the event
        # loop free, and both paths share one implementation.
        return await asyncio.to_thread(self._run, *args, **kwargs)


class DocumentQAInput(BaseModel):
    question: str = Field(description="The user's question, in natural language, to answer from their documents.",
                          min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int | None = Field(default=None, ge=1, le=50,
                              description="How many passages to read (default 5). Raise it for broad questions.")
    min_score: float | None = Field(default=None, ge=0.0, le=1.0,
                                    description="Lowest confidence to accept an answer (default 0.3). Raise it when "
                                                "a wrong answer would be costly.")


class DocumentQATool(_EngineTool):
    name: str = "document_qa"
    description: str = ("Answer a factual question from the user's own document collection. Returns a verbatim "
                        "quote with its source document and page, or answered=false when the documents do not "
                        "contain the answer. Use it for any question about the user's files.")
    args_schema: type[BaseModel] = DocumentQAInput

    def _run(self, question: str, top_k: int | None = None, min_score: float | None = None,
             run_manager: Any = None) -> tuple[str, Response]:
        response = _guarded(self.assistant.answer, question, top_k=top_k, threshold=min_score)
        return answer_content(response), response


class DocumentSearchInput(BaseModel):
    query: str = Field(description="What to look for in the documents: keywords or a question.",
                       min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(default=5, ge=1, le=50, description="How many passages to return.")
    mode: Literal["hybrid", "dense", "bm25"] = Field(
        default="hybrid", description="hybrid (default) for most queries; bm25 for exact codes or names; dense "
                                      "for paraphrases.")


class DocumentSearchTool(_EngineTool):
    name: str = "document_search"
    description: str = ("Find the passages of the user's documents most relevant to a query, with their sources. "
                        "Use it to browse or when document_qa finds no single answer.")
    args_schema: type[BaseModel] = DocumentSearchInput

    def _run(self, query: str, k: int = 5, mode: str = "hybrid", run_manager: Any = None):
        hits = _guarded(self.assistant.search, query, k=k, mode=mode)
        content = [{"source": Path(h.passage.source).name, "page": h.passage.page,
                    "text": h.passage.text[:PASSAGE_PREVIEW_CHARS], "score": round(h.score, 4)} for h in hits]
        return json.dumps({"passages": content}, ensure_ascii=False), hits


class ClassifyIntentInput(BaseModel):
    message: str = Field(description="A user message to classify.", min_length=1, max_length=MAX_QUESTION_CHARS)


class ClassifyIntentTool(_EngineTool):
    name: str = "classify_intent"
    description: str = ("Classify a user message as document_question, greeting, thanks, goodbye, help, smalltalk "
                        "or out_of_scope, with a calibrated confidence.")
    args_schema: type[BaseModel] = ClassifyIntentInput

    def _run(self, message: str, run_manager: Any = None):
        intent = _guarded(self.assistant.classify, message)
        data = intent.to_dict()
        content = {k: data[k] for k in ("label", "confidence", "out_of_scope", "alternatives")}
        return json.dumps(content), intent


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
    k: int = 5
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        hits = self.assistant.search(query, k=self.k, mode=self.mode)
        return [LCDocument(page_content=h.passage.text, id=str(h.passage.id),
                           metadata={"source": h.passage.source, "page": h.passage.page, "start": h.passage.start,
                                     "end": h.passage.end, "passage_id": h.passage.id, "score": h.score,
                                     "dense_score": h.dense_score, "bm25_score": h.bm25_score})
                for h in hits]

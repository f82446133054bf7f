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
from pydantic import BaseModel, ConfigDict, Field
from spanqa.plugin.doors.schemas import (
    TOOL_DESCRIPTIONS,
    ClassifyIntentInput,
    DocumentQAInput,
    DocumentSearchInput,
    call_tool,
    validation_message,
)
from spanqa.plugin.engine.response import Response, hit_json

from spanqa.errors import SpanqaError
from spanqa.settings import SearchMode, Settings

__all__ = ["DocumentQATool", "DocumentSearchTool", "ClassifyIntentTool", "SpanqaToolkit", "SpanqaRetriever"]



def _call(assistant, name: str, **arguments) -> tuple[str, Any]:
    """Run tool `name` on the engine (the same code as the MCP and HTTP doors): (JSON content, typed artifact);
    every expected failure becomes a ToolException the agent can act on."""
    try:
        data, artifact = call_tool(assistant, name, {k: v for k, v in arguments.items() if v is not None})
        return json.dumps(data, ensure_ascii=False), artifact
    except (SpanqaError, ValueError) as exc:
        raise ToolException(f"{exc} Rephrase the request or change the arguments, then try again.") from exc
    except FileNotFoundError as exc:
        raise ToolException(f"A model or collection file is missing ({exc}). Tell the user to check the "
                            "spanqa installation.") from exc


class _EngineTool(BaseTool):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    assistant: Any = Field(exclude=True)
    response_format: Literal["content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True
    handle_validation_error: Any = Field(default_factory=lambda: validation_message)

    async def _arun(self, *args: Any, run_manager: Any = None, **kwargs: Any):
        # The engine is CPU-bound and releases the GIL inside torch/FAISS: a worker thread keeps the event
        # loop free, and both paths share one implementation.
        return await asyncio.to_thread(self._run, *args, **kwargs)


class DocumentQATool(_EngineTool):
    name: str = "document_qa"
    description: str = TOOL_DESCRIPTIONS["document_qa"]
    args_schema: type[BaseModel] = DocumentQAInput

    def _run(self, question: str, top_k: int | None = None, min_score: float | None = None,
             run_manager: Any = None) -> tuple[str, Response]:
        return _call(self.assistant, self.name, question=question, top_k=top_k, min_score=min_score)


class DocumentSearchTool(_EngineTool):
    name: str = "document_search"
    description: str = TOOL_DESCRIPTIONS["document_search"]
    args_schema: type[BaseModel] = DocumentSearchInput

    def _run(self, query: str, k: int | None = None, mode: str | None = None, run_manager: Any = None):
        return _call(self.assistant, self.name, query=query, k=k, mode=mode)


class ClassifyIntentTool(_EngineTool):
    name: str = "classify_intent"
    description: str = TOOL_DESCRIPTIONS["classify_intent"]
    args_schema: type[BaseModel] = ClassifyIntentInput

    def _run(self, message: str, run_manager: Any = None):
        return _call(self.assistant, self.name, message=message)


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

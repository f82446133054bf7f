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
from spanqa.plugin.doors.service import TOOLS, Service, invalid_request

from spanqa.errors import InputError, SpanqaError

__all__ = ["DocumentQATool", "DocumentSearchTool", "ClassifyIntentTool", "SpanqaToolkit", "SpanqaRetriever"]


def _refusal(error: ValidationError) -> str:
    """A bad tool call, in the words every door uses (the agent reads them and calls again)."""
    return str(invalid_request(error.errors()))


class _ServiceTool(BaseTool):
    """One of TOOLS, run through the service layer: the same arguments, JSON and refusals as MCP and HTTP."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    service: Any = Field(exclude=True)
    response_format: Literal["content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True
    handle_validation_error: Any = Field(default_factory=lambda: _refusal)

    def __init__(self, service: Service | None = None, *, assistant: Any = None, **kwargs: Any) -> None:
        """`DocumentQATool(service)`, or `DocumentQATool(assistant=engine)` for a tool on an engine of its own."""
        if service is None:
            if assistant is None:
                raise InputError("Give the tool a Service (service=...) or an engine (assistant=...)")
            service = Service(assistant)
        name = type(self).model_fields["name"].default
        super().__init__(service=service, description=TOOLS[name][1], args_schema=service.tool_schema(name), **kwargs)

    def _run(self, run_manager: Any = None, **arguments: Any) -> tuple[str, Any]:
        """(JSON content, typed artifact); a refusal becomes a ToolException the agent can act on."""
        try:
            result = self.service.tool(self.name, arguments)
        except SpanqaError as exc:
            raise ToolException(str(exc)) from exc
        return json.dumps(result.data, ensure_ascii=False), result.value

    async def _arun(self, run_manager: Any = None, **arguments: Any):
        # The engine is CPU-bound and releases the GIL inside torch/FAISS: a worker thread keeps the event
        # loop free, and both paths share one implementation.
        return await asyncio.to_thread(self._run, **arguments)


class DocumentQATool(_ServiceTool):
    name: str = "document_qa"
    description: str = TOOLS["document_qa"][1]
    args_schema: type[BaseModel] | None = None


class DocumentSearchTool(_ServiceTool):
    name: str = "document_search"
    description: str = TOOLS["document_search"][1]
    args_schema: type[BaseModel] | None = None


class ClassifyIntentTool(_ServiceTool):
    name: str = "classify_intent"
    description: str = TOOLS["classify_intent"][1]
    args_schema: type[BaseModel] | None = None


class SpanqaToolkit(BaseToolkit):
    """The spanqa tools, all sharing one engine (one copy of each model).

    `SpanqaToolkit(assistant=Assistant(collection, settings=Settings.from_env()))`, or `service=` a Service."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    assistant: Any = Field(default=None, exclude=True)
    service: Any = Field(default=None, exclude=True)

    def get_tools(self) -> list[BaseTool]:
        service = self.service or Service(self.assistant)
        return [DocumentQATool(service), DocumentSearchTool(service), ClassifyIntentTool(service)]


class SpanqaRetriever(BaseRetriever):
    """The collection as a LangChain retriever: passages as Documents with their citation in metadata. `k` and
    `mode` default to the engine's settings."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    assistant: Any = Field(exclude=True)
    k: int | None = None
    mode: str | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None, mode: str | None = None) -> list[LCDocument]:
        """`invoke(query, k=1)` or `invoke(query, mode="bm25")` overrides the retriever's own k and mode."""
        passages = Service(self.assistant).search(query, k=k or self.k, mode=mode or self.mode).data["passages"]
        return [LCDocument(page_content=p["text"], id=str(p["passage_id"]),
                           metadata={key: value for key, value in p.items() if key != "text"}) for p in passages]

"""LangChain's own standard test suites, run against spanqa's three tools and its retriever — the way LangChain
checks its integrations. The integration suites call the real engine over a small real collection."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests, ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests
from spanqa.plugin.doors.langchain_tools import ClassifyIntentTool, DocumentQATool, DocumentSearchTool
from spanqa.plugin.doors.service import Service

from spanqa import Assistant, LocalCollection, SpanqaRetriever

pytestmark = pytest.mark.integration


@functools.cache
def _assistant() -> Assistant:
    folder = Path(tempfile.mkdtemp(prefix="spanqa-lc-standard-"))
    (folder / "office.txt").write_text("Opening hours: the office opens at 8 am on weekdays. The cafeteria on the "
                                       "ground floor closes at 6 pm. Refunds are paid within 14 days.")
    (folder / "garden.txt").write_text("Water the fern every three days and keep it out of direct sun.")
    (folder / "travel.txt").write_text("Trains to the coast leave every hour from platform 4.")
    LocalCollection(folder / "collection").ingest([folder])
    return Assistant(folder / "collection")


class _Standard:
    tool_class: type

    @property
    def tool_constructor(self):
        return self.tool_class

    @property
    def tool_constructor_params(self) -> dict:
        return {"service": Service(_assistant())}


class _DocumentQA(_Standard):
    tool_class = DocumentQATool

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"question": "When does the office open?"}


class _DocumentSearch(_Standard):
    tool_class = DocumentSearchTool

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"query": "cafeteria hours", "k": 2, "mode": "hybrid"}


class _ClassifyIntent(_Standard):
    tool_class = ClassifyIntentTool

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"message": "good morning!"}


# One standard base per test class (langchain-tests refuses two); the tool's parameters come from the mixin.
class TestDocumentQAUnit(_DocumentQA, ToolsUnitTests):
    pass


class TestDocumentQAIntegration(_DocumentQA, ToolsIntegrationTests):
    pass


class TestDocumentSearchUnit(_DocumentSearch, ToolsUnitTests):
    pass


class TestDocumentSearchIntegration(_DocumentSearch, ToolsIntegrationTests):
    pass


class TestClassifyIntentUnit(_ClassifyIntent, ToolsUnitTests):
    pass


class TestClassifyIntentIntegration(_ClassifyIntent, ToolsIntegrationTests):
    pass


class TestSpanqaRetriever(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self):
        return SpanqaRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"assistant": _assistant()}

    @property
    def retriever_query_example(self) -> str:
        return "When does the cafeteria close?"

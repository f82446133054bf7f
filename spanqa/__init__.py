"""spanqa: intent-routed, extractive question answering over your own documents.

    from spanqa import Service
    service = Service.open("my-docs")                            # or "postgresql://db/spanqa?collection=docs"
    print(service.ask("What is the notice period?").data["reply"])   # the versioned response JSON

    from spanqa import Assistant, Settings                       # the engine, with settings the caller resolved
    print(Assistant(retriever=vector_store.as_retriever(), settings=Settings.from_env()).respond("...").reply)

The folders `plugin/`, `retriever/` and `ui/` of the source tree are the subpackages `spanqa.plugin`,
`spanqa.retriever` and `spanqa.ui`. Names resolve lazily so that `import spanqa` (and `spanqa --help`) does not
import torch or LangChain.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "Assistant": "spanqa.plugin.engine.assistant",
    "Response": "spanqa.plugin.engine.assistant",
    "Reader": "spanqa.plugin.engine.reader",
    "Answer": "spanqa.plugin.engine.reader",
    "IntentClassifier": "spanqa.plugin.engine.router",
    "Intent": "spanqa.plugin.engine.router",
    "Collection": "spanqa.retriever.protocol",
    "LocalCollection": "spanqa.retriever.collection",
    "PostgresCollection": "spanqa.retriever.postgres",
    "RetrieverCollection": "spanqa.retriever.langchain_source",
    "open_collection": "spanqa.plugin.engine.collections",
    "Settings": "spanqa.settings",
    "Service": "spanqa.plugin.doors.service",
    "Engine": "spanqa.plugin.engine.protocol",
    "SpanqaError": "spanqa.errors",
    "SpanqaToolkit": "spanqa.plugin.doors.langchain_tools",
    "SpanqaRetriever": "spanqa.plugin.doors.langchain_tools",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'spanqa' has no attribute {name!r}")

"""spanqa's engine: the reader, the intent router, the assistant that joins them, and the LangChain plugin.

Names resolve lazily so that `spanqa --help` does not import torch or LangChain.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Assistant": "plugin.assistant",
    "Response": "plugin.assistant",
    "Reader": "plugin.reader",
    "Answer": "plugin.reader",
    "IntentClassifier": "plugin.router",
    "Intent": "plugin.router",
    "Settings": "plugin.config",
    "SpanqaToolkit": "plugin.tools",
    "SpanqaRetriever": "plugin.tools",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'plugin' has no attribute {name!r}")

"""The engine seam. A door talks to an `Engine`: the `Assistant` (plugin/engine/assistant.py), or the
`BatchingAssistant` a server puts in front of it (plugin/engine/batching.py), which answers concurrent questions
in shared batches. Both implement every method below themselves; tests/test_engines.py holds them to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from spanqa.plugin.engine.response import Response
    from spanqa.plugin.engine.router import Intent
    from spanqa.retriever import Collection, Hit

    from spanqa.settings import Settings

__all__ = ["Engine"]


@runtime_checkable
class Engine(Protocol):
    """Route → retrieve → extract → cited answer, over one collection, with one `Settings`. Its verbs take requests
    the request contract has checked (plugin/engine/requests.py): the service checks, the engine runs."""

    settings: Settings

    @property
    def collection(self) -> Collection: ...

    def warm_up(self) -> None: ...

    def run_classify(self, request: Any) -> Intent: ...

    def run_search(self, request: Any) -> list[Hit]: ...

    def run_ask(self, requests: list) -> list[Response]: ...

    def run_answer(self, requests: list) -> list[Response]: ...

"""The engine seam. A door talks to an `Engine`: the `Assistant` (plugin/engine/assistant.py), or the
`BatchingAssistant` a server puts in front of it (plugin/engine/batching.py), which answers concurrent questions
in shared batches. Both implement every method below themselves; tests/test_engines.py holds them to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from spanqa.plugin.engine.response import Response
    from spanqa.plugin.engine.router import Intent
    from spanqa.retriever import Collection, Hit

    from spanqa.settings import Settings

__all__ = ["Engine"]


@runtime_checkable
class Engine(Protocol):
    """Route → retrieve → extract → cited answer, over one collection, with one `Settings`."""

    settings: Settings

    @property
    def collection(self) -> Collection: ...

    def warm_up(self) -> None: ...

    def check_message(self, message: str) -> str: ...

    def classify(self, message: str) -> Intent: ...

    def search(self, query: str, k: int | None = None, mode: str | None = None) -> list[Hit]: ...

    def respond(self, message: str, top_k: int | None = None, threshold: float | None = None,
                mode: str | None = None, history: Sequence[Any] | None = None) -> Response: ...

    def respond_many(self, messages: list[str], top_k: int | None = None, threshold: float | None = None,
                     mode: str | None = None, histories: Sequence[Sequence[Any] | None] | None = None
                     ) -> list[Response]: ...

    def answer(self, question: str, top_k: int | None = None, threshold: float | None = None,
               mode: str | None = None, history: Sequence[Any] | None = None) -> Response: ...

    def answer_many(self, questions: list[str], top_k: int | None = None, threshold: float | None = None,
                    mode: str | None = None, histories: Sequence[Sequence[Any] | None] | None = None
                    ) -> list[Response]: ...

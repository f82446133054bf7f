"""Every error spanqa raises on purpose, under one root, so that each door (CLI, LangChain tools, chat UI,
servers) catches `SpanqaError` and shows its message. Each message says what went wrong and what to do next."""

from __future__ import annotations

__all__ = [
    "SpanqaError", "ModelLoadError", "DataFileError", "InputError", "InvalidRequest", "NotFound",
    "CollectionError", "CollectionCorruptError", "EmbeddingMismatchError", "ConfigError", "Unauthorized",
    "Forbidden", "RateLimited",
]


class SpanqaError(Exception):
    """Base class: every error spanqa raises on purpose."""


class ModelLoadError(SpanqaError):
    """A model directory or id could not be loaded."""


class DataFileError(SpanqaError, ValueError):
    """A training or evaluation file is missing, empty or malformed."""


class InputError(SpanqaError, ValueError):
    """A question, a setting or a tool argument is out of bounds."""


class InvalidRequest(InputError):
    """A request's arguments do not fit its schema: a missing, unknown or out-of-range field (each is named)."""


class NotFound(InputError):
    """What was asked for (a document, a tool) does not exist."""


class CollectionError(SpanqaError):
    """A collection cannot be opened or used as asked."""


class CollectionCorruptError(CollectionError):
    """A collection's files are missing or unreadable."""


class EmbeddingMismatchError(CollectionError):
    """The collection was built with another embedding model."""


class ConfigError(InputError):
    """A server configuration file (`spanqa serve --config`) is malformed; the message names the entry."""


class Unauthorized(SpanqaError):
    """A request carried no API key, or one the server does not know."""


class Forbidden(SpanqaError):
    """The request's key may see the collection but not do this to it (e.g. write without write scope)."""


class RateLimited(SpanqaError):
    """A key sent more requests than its rate allows; `retry_after` is how many seconds until the next one."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

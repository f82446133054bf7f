"""Errors a collection raises on purpose; each message names the problem and the fix."""

from __future__ import annotations

__all__ = ["CollectionError", "CollectionCorruptError", "EmbeddingMismatchError"]


class CollectionError(Exception):
    """A collection cannot be opened or used as asked."""


class CollectionCorruptError(CollectionError):
    """A collection's files are missing or unreadable."""


class EmbeddingMismatchError(CollectionError):
    """The collection was built with another embedding model."""

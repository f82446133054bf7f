"""The errors spanqa raises on purpose. Each message says what went wrong and what to do next."""

from __future__ import annotations

__all__ = ["SpanqaError", "ModelLoadError", "DataFileError", "InputError"]


class SpanqaError(Exception):
    """Base class: every error spanqa raises on purpose."""


class ModelLoadError(SpanqaError):
    """A model directory or id could not be loaded."""


class DataFileError(SpanqaError, ValueError):
    """A training or evaluation file is missing, empty or malformed."""


class InputError(SpanqaError, ValueError):
    """A question, a setting or a tool argument is out of bounds."""

"""One copy of each model per process. The chat UI opens one engine per collection and a server may hold several;
all of them read with the same reader and route with the same router object (each reads one batch at a time under
its own lock), so a second collection costs its indexes, not another set of weights. The embedder's weights are
shared the same way inside retriever/embedding.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spanqa.errors import ModelLoadError
from spanqa.settings import Settings

__all__ = ["read_model_json", "shared_model", "shared_reader", "shared_router", "loaded_models"]

_MODELS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def read_model_json(path: Path, what: str) -> dict:
    """A small model stored as JSON (the answer ranker, the answer types); ModelLoadError naming `what` when it
    cannot be read."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Could not load the {what} {path}: {exc}") from exc


def shared_model(key: tuple, build: Callable[[], Any]) -> Any:
    """The object cached under `key`, built by `build()` the first time it is asked for."""
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = build()
        return _MODELS[key]


def shared_reader(location: str | Path, precision: str, device: str = "auto"):
    """One Reader per model, device and the precision it really runs at ("auto" and what it resolves to are one)."""
    from spanqa.plugin.engine.reader import Reader

    from spanqa.settings import resolve_device, resolve_precision

    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    return shared_model(("reader", str(location), precision, device),
                        lambda: Reader(location, precision=precision, device=device))


def shared_router(location: str | Path, settings: Settings):
    """One router per model, embedder, device and precisions (the router's and its embedder's, as `settings` say)."""
    from spanqa.plugin.engine.router import load_router
    from spanqa.retriever.embedding import Embedder

    from spanqa.settings import resolve_device, resolve_precision

    device = resolve_device(settings.device)
    precision = resolve_precision(settings.router_precision, device)
    embedder_precision = resolve_precision(settings.embedder_precision, device)
    embedder = settings.embedder_path
    # A router refitted with the user's corrections replaces its directory: its time stamp keys the new one.
    stamp = Path(location).stat().st_mtime_ns if Path(location).exists() else 0
    return shared_model(("router", str(location), stamp, precision, embedder, embedder_precision, device),
                        lambda: load_router(location, precision=precision, device=device,
                                            embedder=Embedder(embedder, precision=embedder_precision, device=device)))


def loaded_models() -> int:
    """How many models this process holds (a test checks that a second engine adds none)."""
    with _LOCK:
        return len(_MODELS)

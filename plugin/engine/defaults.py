"""The default models: the shipped reader, and the shipped intent router (a linear head over the shipped
embedder's vectors, fitted on the project's own routing data).

Why a head and not the fine-tuned router: it ships inside the wheel (tens of kB, where a fine-tuned MiniLM is
45 MB a version), so a fresh install answers its first question without training anything, and a message's one
embedder pass serves both routing and retrieval. It routes the project's data, CLINC150 and real document
questions as the fine-tuned router does (README, "Intent router"; `python -m bench.router_head`). A fine-tuned
router is still one command away (`spanqa train-intent`) and is used when SPANQA_ROUTER names it.

Users correct the router too: a thumbs-down on a reply that did not come from the documents marks the message as
a document question (`spanqa calibrate --routing`). Those messages are kept in `$SPANQA_HOME/routing-feedback.jsonl`;
once there are any, the head is refitted on the shipped data plus them (seconds), cached under $SPANQA_HOME and
keyed by a hash of both, so new corrections refit it on the next use.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from spanqa.settings import PACKAGE_ROOT, cache_dir

__all__ = ["ROUTING_DATA", "SHIPPED_ROUTER", "add_routing_feedback", "ensure_default_router", "router_fingerprint",
           "router_train_config", "routing_feedback_path"]

ROUTING_DATA = Path(__file__).parent / "data" / "intents.jsonl"
# Fitted by `spanqa train-intent plugin/engine/data/intents.jsonl --head --out spanqa/models/router` (a test checks
# that it is the fit of today's data).
SHIPPED_ROUTER = PACKAGE_ROOT / "models" / "router"


def routing_feedback_path() -> Path:
    return cache_dir() / "routing-feedback.jsonl"


def add_routing_feedback(messages: list[str]) -> int:
    """Record `messages` as document questions for the next router training; returns how many were new."""
    path = routing_feedback_path()
    known = {json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()} \
        if path.is_file() else set()
    new = [m for m in dict.fromkeys(messages) if m not in known]
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            for message in new:
                out.write(json.dumps({"text": message, "label": "document_question"}, ensure_ascii=False) + "\n")
    return len(new)


def _routing_data() -> bytes:
    """The shipped routing data plus the user's corrections, as one JSONL text."""
    data = ROUTING_DATA.read_bytes()
    extra = routing_feedback_path()
    if extra.is_file():
        data = data.rstrip(b"\n") + b"\n" + extra.read_bytes()
    return data
_LOCK = threading.Lock()


def router_train_config(out: Path, data: Path = ROUTING_DATA):
    """How the default router is fitted (the head uses the split, seed and threshold rule; a fine-tuned router on
    the same data, as bench.router_head compares, the rest)."""
    from spanqa.plugin.engine.router_training import IntentTrainConfig

    return IntentTrainConfig(data=str(data), out=str(out), val_fraction=0.2, epochs=12, patience=3,
                             batch_size=16, lr=1e-4)


def router_fingerprint() -> str:
    settings = asdict(router_train_config(Path(".")))
    settings.pop("out")
    settings.pop("data")
    digest = hashlib.sha256(_routing_data())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def ensure_default_router(progress: bool = False) -> Path:
    """The directory of the router to use: SPANQA_ROUTER when set; else the shipped router, or, once the user has
    corrected routing, the head refitted with the corrections (seconds; announced on stderr)."""
    from spanqa.plugin.engine.router_training import fit_router_head

    if os.environ.get("SPANQA_ROUTER"):
        return Path(os.environ["SPANQA_ROUTER"])
    if not routing_feedback_path().is_file():
        return SHIPPED_ROUTER
    directory = cache_dir() / "router"
    stamp = directory / "fingerprint.txt"
    fingerprint = router_fingerprint()
    with _LOCK:
        if stamp.is_file() and stamp.read_text().strip() == fingerprint:
            return directory
        staging = directory.with_name(directory.name + ".fitting")
        data = _routing_data()
        print(f"spanqa: refitting the intent router with your routing corrections ({len(data.splitlines())} "
              f"messages; seconds), cached in {directory}", file=sys.stderr, flush=True)
        staging.mkdir(parents=True, exist_ok=True)
        (staging / "routing-data.jsonl").write_bytes(data)
        fit_router_head(router_train_config(staging, staging / "routing-data.jsonl"), progress=progress)
        (staging / "fingerprint.txt").write_text(fingerprint)
        if directory.exists():
            import shutil

            shutil.rmtree(directory)
        staging.rename(directory)
    return directory

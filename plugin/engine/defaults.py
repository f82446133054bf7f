"""The default models: the shipped reader, and the shipped intent router (a linear head over the shipped
embedder's vectors, fitted on the project's own routing data).

Why a head and not the fine-tuned router: it ships inside the wheel (tens of kB, where a fine-tuned MiniLM is
45 MB a version), so a fresh install answers its first question without training anything, and a message's one
embedder pass serves both routing and retrieval. It routes the project's data, CLINC150 and real document
questions as the fine-tuned router does (README, "Intent router"; `python -m bench.router_head`). A fine-tuned
router is still one command away (`spanqa train-intent`) and is used when the `router` setting names it.

Users correct the router too: a thumbs-down on a reply that did not come from the documents marks the message as
a document question (`spanqa calibrate --routing`). Those messages are kept in `routing-feedback.jsonl` under the
`home` setting, and that command (or `spanqa setup`) refits the head on the shipped data plus them (seconds; the
fitting lives in router_fitting.py), under `home`, keyed by a hash of both. The engine only picks the
router.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from spanqa.settings import SHIPPED_ROUTER, Settings

__all__ = ["ROUTING_DATA", "ROUTER_RECIPE", "SHIPPED_ROUTER", "add_routing_feedback", "refitted_router_path",
           "router_fingerprint", "router_location", "routing_data", "routing_feedback_path"]

# SHIPPED_ROUTER is fitted by `spanqa train-intent plugin/engine/data/intents.jsonl --head --out
# spanqa/models/router` (a test checks that it is the fit of today's data).
ROUTING_DATA = Path(__file__).parent / "data" / "intents.jsonl"


def routing_feedback_path(home: Path) -> Path:
    return home / "routing-feedback.jsonl"


def add_routing_feedback(messages: list[str], home: Path) -> int:
    """Record `messages` as document questions for the next router training; returns how many were new."""
    path = routing_feedback_path(home)
    known = {json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()} \
        if path.is_file() else set()
    new = [m for m in dict.fromkeys(messages) if m not in known]
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            for message in new:
                out.write(json.dumps({"text": message, "label": "document_question"}, ensure_ascii=False) + "\n")
    return len(new)


def routing_data(home: Path) -> bytes:
    """The shipped routing data plus the user's corrections, as one JSONL text."""
    data = ROUTING_DATA.read_bytes()
    extra = routing_feedback_path(home)
    if extra.is_file():
        data = data.rstrip(b"\n") + b"\n" + extra.read_bytes()
    return data


# Raised when the way the head is fitted changes (router_fitting.py, `router_train_config`), so that a
# router refitted by an older recipe is fitted again.
ROUTER_RECIPE = "head-1"


def router_fingerprint(home: Path) -> str:
    """What a refitted router was fitted from: the routing data with the corrections, and the recipe."""
    return hashlib.sha256(ROUTER_RECIPE.encode() + b"\n" + routing_data(home)).hexdigest()[:16]


def refitted_router_path(home: Path) -> Path:
    return home / "router"


def router_location(settings: Settings) -> Path:
    """The directory of the router to use: the `router` setting when given; else, once the user has corrected
    routing, the head refitted with the corrections (`spanqa calibrate --routing` or `spanqa setup` fits it, in
    seconds); else the shipped router. Answering never trains anything: corrections not yet fitted are announced
    on stderr."""
    if settings.router:
        return Path(settings.router)
    home = settings.home_path
    if not routing_feedback_path(home).is_file():
        return SHIPPED_ROUTER
    directory = refitted_router_path(home)
    stamp = directory / "fingerprint.txt"
    if stamp.is_file() and stamp.read_text().strip() == router_fingerprint(home):
        return directory
    print("spanqa: routing corrections are waiting to be fitted; run `spanqa setup` to refit the intent router "
          "with them (seconds). Until then the shipped router answers.", file=sys.stderr, flush=True)
    return SHIPPED_ROUTER

"""The default models: the shipped reader, and the intent router trained on first use from the project's own
routing data.

Why the router is trained rather than shipped: it takes about a minute on a laptop CPU from
`plugin/engine/data/intents.jsonl` (shipped in the wheel), and every shipped version of a 45 MB weight file stays
in the git history forever. The cache is keyed by a hash of the data and the training settings, so editing the
data retrains it.

Users correct the router too: a thumbs-down on a reply that did not come from the documents marks the message as
a document question (`spanqa calibrate --routing`). Those messages are kept in `$SPANQA_HOME/routing-feedback.jsonl`,
trained on with the shipped data, and part of the fingerprint: the router retrains with them on its next use.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from spanqa.settings import cache_dir, default_router_path

__all__ = ["ROUTING_DATA", "add_routing_feedback", "ensure_default_router", "router_fingerprint",
           "routing_feedback_path"]

ROUTING_DATA = Path(__file__).parent / "data" / "intents.jsonl"


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


def _router_config(out: Path, data: Path = ROUTING_DATA):
    from spanqa.plugin.engine.router_training import IntentTrainConfig

    return IntentTrainConfig(data=str(data), out=str(out), val_fraction=0.2, epochs=12, patience=3,
                             batch_size=16, lr=1e-4)


def router_fingerprint() -> str:
    settings = asdict(_router_config(Path(".")))
    settings.pop("out")
    settings.pop("data")
    digest = hashlib.sha256(_routing_data())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def ensure_default_router(progress: bool = True) -> Path:
    """The directory of the default router, training it first if it is missing or out of date.

    Training is announced on stderr with what is happening, how long it takes and where it goes, and shows a
    progress bar: a first question never waits in silence. `spanqa setup` (run by `make run` and `make test`)
    does it ahead of time.
    """
    from spanqa.plugin.engine.router_training import train_intent_classifier

    directory = default_router_path()
    stamp = directory / "fingerprint.txt"
    fingerprint = router_fingerprint()
    with _LOCK:
        if stamp.is_file() and stamp.read_text().strip() == fingerprint:
            return directory
        staging = directory.with_name(directory.name + ".training")
        data = _routing_data()
        print(f"spanqa: training the default intent router once ({len(data.splitlines())} "
              f"messages; about 1-2 minutes on 2 CPU cores), cached in {directory}", file=sys.stderr, flush=True)
        staging.mkdir(parents=True, exist_ok=True)
        (staging / "routing-data.jsonl").write_bytes(data)
        train_intent_classifier(_router_config(staging, staging / "routing-data.jsonl"), progress=progress)
        (staging / "fingerprint.txt").write_text(fingerprint)
        if directory.exists():
            import shutil

            shutil.rmtree(directory)
        staging.rename(directory)
    return directory

"""The default models: the shipped reader, and the intent router trained on first use from the project's own
routing data.

Why the router is trained rather than shipped: it takes about a minute on a laptop CPU from
`plugin/engine/data/intents.jsonl` (shipped in the wheel), and every shipped version of a 45 MB weight file stays
in the git history forever. The cache is keyed by a hash of the data and the training settings, so editing the
data retrains it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from spanqa.settings import default_router_path

__all__ = ["ROUTING_DATA", "ensure_default_router", "router_fingerprint"]

ROUTING_DATA = Path(__file__).parent / "data" / "intents.jsonl"
_LOCK = threading.Lock()


def _router_config(out: Path):
    from spanqa.plugin.engine.router_training import IntentTrainConfig

    return IntentTrainConfig(data=str(ROUTING_DATA), out=str(out), val_fraction=0.2, epochs=12, patience=3,
                             batch_size=16, lr=1e-4)


def router_fingerprint() -> str:
    settings = asdict(_router_config(Path(".")))
    settings.pop("out")
    settings.pop("data")
    digest = hashlib.sha256(ROUTING_DATA.read_bytes())
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
        print(f"spanqa: training the default intent router once ({len(ROUTING_DATA.read_text().splitlines())} "
              f"messages; about 1-2 minutes on 2 CPU cores), cached in {directory}", file=sys.stderr, flush=True)
        train_intent_classifier(_router_config(staging), progress=progress)
        (staging / "fingerprint.txt").write_text(fingerprint)
        if directory.exists():
            import shutil

            shutil.rmtree(directory)
        staging.rename(directory)
    return directory

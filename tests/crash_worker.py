"""A writer for the crash test: ingests, replaces and deletes documents in a loop until it is killed.

    python tests/crash_worker.py COLLECTION SEED      (a directory or a PostgreSQL URL)

Prints "ready" once the collection is open, then writes forever. Document i at version v is
`document_text(i, v)`, so the test can tell a whole version from a half-written one.
"""

from __future__ import annotations

import itertools
import random
import sys

DOCUMENTS = 5


def document_text(index: int, version: int) -> str:
    rng = random.Random(index * 100_003 + version)
    words = ["harbor", "lantern", "copper", "kettle", "glacier", "orchard", "tram", "museum", "river", "meadow"]
    sentences = [f"Document {index} version {version}."]
    for s in range(40 + 10 * index):
        sentences.append(" ".join(rng.choice(words) for _ in range(8 + s % 7)).capitalize() + f" {version}.")
    return " ".join(sentences)


def parse_version(text: str) -> tuple[int, int] | None:
    head = text.split(".", 1)[0].split()
    if len(head) == 4 and head[0] == "Document" and head[2] == "version":
        return int(head[1]), int(head[3])
    return None


def main() -> None:
    from spanqa.plugin.engine.collections import open_collection

    location, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    collection = open_collection(location, create=True)
    collection.embedder.warm_up()
    print("ready", flush=True)
    for version in itertools.count(seed * 1000):
        index = rng.randrange(DOCUMENTS)
        if rng.random() < 0.25:
            collection.delete(f"doc{index}.txt")
        else:
            files = [(f"doc{i}.txt", document_text(i, version).encode()) for i in {index, rng.randrange(DOCUMENTS)}]
            collection.ingest_bytes(files)


if __name__ == "__main__":
    main()

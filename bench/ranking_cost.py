"""What ranking a technical question's candidates costs, isolated from the reader's forward pass:

    python -m bench.ranking_cost [--data bench/out/techdocs.json] [--questions 60] [--repeats 3]

End-to-end medians on this 2-core machine move by 20 % between runs of identical code (in one `spanqa bench` run
the unchanged dense search of two systems differed 1.33×), so the cost of the technical ranking model — its whole
units, answer types and 43 features — is timed on the same candidates, interleaved with the prose model's
ranking without units (the cost of ranking before issue 29), many times over.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.plugin.lab.ranker_training import open_domain_set

    parser = argparse.ArgumentParser(prog="python -m bench.ranking_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("bench/out/techdocs.json"))
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="spanqa-ranking-cost-") as tmp:
        collection, questions = open_domain_set(args.data, Path(tmp) / "collection", 0.0, 0)
        assistant = Assistant(collection)
        items = []
        for question, _ in questions[:args.questions]:
            hits = assistant.search(question)
            reader = assistant.reader_for(hits)
            candidates = assistant.read_candidates(question, hits)[0]
            items.append((question, candidates, hits, assistant.reader_name(reader)))
        timings: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeats):
            for question, candidates, hits, reader in items:
                for technical in (True, False):
                    started = time.perf_counter()
                    assistant.ranker.rank(question, candidates, hits, reader, technical)
                    timings[technical].append(1000 * (time.perf_counter() - started))
        collection.close()
    for technical, label in ((True, "technical model, whole units"), (False, "prose model, no units")):
        ms = np.asarray(timings[technical])
        print(f"{label:30s} p50 {np.median(ms):.2f} ms  p95 {np.percentile(ms, 95):.2f} ms")
    print(f"candidates per question: {np.mean([len(c) for _, c, _, _ in items]):.1f} (ranking runs once per round of "
          "adaptive reading)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
